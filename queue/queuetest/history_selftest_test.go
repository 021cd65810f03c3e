package queuetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// These tests check the history checks: each runs a check against a
// MemoryStore with a known fault and expects it to fail, and against one
// without and expects it to pass.

// histFault is a way of getting the history wrong.
type histFault int

const (
	noFault            histFault = iota
	caseSensitiveRcpt            // Records matches Recipient byte for byte
	inclusiveBefore              // Records lists the record at the cursor again
	cursorAtEnd                  // Records gives a cursor after a full last page
	expireIgnoresLimit           // Expire removes every old record at once
	expireAtCutoff               // Expire removes a record updated at the cutoff too
	forgetSaysNothing            // Forget erases but returns nothing
	listDropsNotes               // Records returns entries without their notes
	forgetIgnoresCtx             // Forget goes ahead with an ended context
)

// faultyHistory is a MemoryStore with one fault.
type faultyHistory struct {
	queue.HistoryStore
	fault histFault
}

func newFaulty(f histFault) *faultyHistory {
	return &faultyHistory{HistoryStore: &queue.MemoryStore{}, fault: f}
}

func (s *faultyHistory) Records(ctx context.Context, f queue.RecordFilter) ([]queue.Record, string, error) {
	limit := f.Limit
	if limit == 0 {
		limit = queue.DefaultRecordLimit
	}
	if s.fault == inclusiveBefore && f.Before != "" {
		f.Before += "\x00"
	}
	recs, next, err := s.HistoryStore.Records(ctx, f)
	switch s.fault {
	case caseSensitiveRcpt:
		if f.Recipient != "" {
			recs = slices.DeleteFunc(recs, func(r queue.Record) bool { return r.Recipients[0].Addr != f.Recipient })
		}
	case cursorAtEnd:
		if len(recs) == limit && next == "" {
			next = recs[len(recs)-1].ID
		}
	case listDropsNotes:
		for i := range recs {
			for j := range recs[i].Recipients {
				recs[i].Recipients[j].Notes = nil
			}
		}
	}
	return recs, next, err
}

func (s *faultyHistory) Expire(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	switch s.fault {
	case expireIgnoresLimit:
		limit = 1 << 30
	case expireAtCutoff:
		cutoff = cutoff.Add(time.Nanosecond)
	}
	return s.HistoryStore.Expire(ctx, cutoff, limit)
}

func (s *faultyHistory) Forget(ctx context.Context, addr string) ([]queue.Record, error) {
	switch s.fault {
	case forgetSaysNothing:
		_, err := s.HistoryStore.Forget(ctx, addr)
		return nil, err
	case forgetIgnoresCtx:
		return s.HistoryStore.Forget(context.Background(), addr)
	}
	return s.HistoryStore.Forget(ctx, addr)
}

// copyHistory returns a new MemoryStore with every record of old: a
// reopening that keeps everything.
func copyHistory(t testing.TB, old queue.HistoryStore) queue.HistoryStore {
	s := &queue.MemoryStore{}
	recs := hAll(t, old, queue.RecordFilter{})
	if err := s.Keep(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHistoryChecks(t *testing.T) {
	checks := map[string]func(t testing.TB, s queue.HistoryStore){
		"RoundTrip": testHistRoundTrip, "Note": testHistNote, "Paging": testHistPaging, "Limit": testHistLimit,
		"Recipient": testHistRecipient, "RecipientPaging": testHistRecipientPaging, "Filters": testHistFilters,
		"Expire": testHistExpire, "ExpireMerged": testHistExpireMerged, "Forget": testHistForget,
		"CanceledContext": testHistCanceled, "Concurrent": testHistConcurrent, "Merge": testHistMerge,
		"Invalid": testHistInvalid, "NotFound": testHistNotFound, "Copies": testHistCopies, "Precision": testHistPrecision,
	}
	for name, check := range checks {
		expect(t, "queue.MemoryStore, "+name, runCheck(func(t testing.TB) { check(t, newFaulty(noFault)) }), false)
	}
	for _, c := range []struct {
		what  string
		fault histFault
		check string
	}{
		{"a store that matches Recipient with case", caseSensitiveRcpt, "Recipient"},
		{"a store whose cursor repeats a record", inclusiveBefore, "Paging"},
		{"a store whose cursor repeats a recipient's record", inclusiveBefore, "RecipientPaging"},
		{"a store that gives a cursor after the last page", cursorAtEnd, "Paging"},
		{"a store that expires past the limit", expireIgnoresLimit, "Expire"},
		{"a store that expires at the cutoff", expireAtCutoff, "ExpireMerged"},
		{"a store whose Forget returns nothing", forgetSaysNothing, "Forget"},
		{"a store that lists entries without notes", listDropsNotes, "RoundTrip"},
		{"a store that lists entries without notes", listDropsNotes, "Note"},
		{"a store whose Forget ignores an ended context", forgetIgnoresCtx, "CanceledContext"},
	} {
		s := newFaulty(c.fault)
		expect(t, c.what+", "+c.check, runCheck(func(t testing.TB) { checks[c.check](t, s) }), true)
	}
}

func TestHistoryReopenCheck(t *testing.T) {
	expect(t, "a store that keeps every record",
		runCheck(func(t testing.TB) {
			testHistReopen(t, &queue.MemoryStore{}, func(old queue.HistoryStore) queue.HistoryStore { return copyHistory(t, old) })
		}), false)
	expect(t, "a store that loses every record",
		runCheck(func(t testing.TB) {
			testHistReopen(t, &queue.MemoryStore{}, func(queue.HistoryStore) queue.HistoryStore { return &queue.MemoryStore{} })
		}), true)
	expect(t, "a store that loses notes",
		runCheck(func(t testing.TB) {
			testHistReopen(t, &queue.MemoryStore{}, func(old queue.HistoryStore) queue.HistoryStore {
				return copyHistory(t, &faultyHistory{HistoryStore: old, fault: listDropsNotes})
			})
		}), true)
}
