package queuetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

func hExpire(t testing.TB, s queue.HistoryStore, cutoff time.Time, limit int) int {
	t.Helper()
	n, err := s.Expire(context.Background(), cutoff, limit)
	if err != nil {
		t.Fatalf("Expire(%s, %d): %v", cutoff.Format(time.RFC3339Nano), limit, err)
	}
	return n
}

// testHistExpire: Expire removes the records updated before the cutoff
// (a zero Updated is before any), oldest first, at most limit a call, and
// says how many; a record updated at the cutoff stays. What it removed
// is gone from Record, Note and the recipient index, and an ID kept
// again starts a new record.
func testHistExpire(t testing.TB, s queue.HistoryStore) {
	ctx := context.Background()
	// Records 0..19, updated at hAt(19-i): the newest IDs are the oldest
	// updates, so that ID order is no help. Record 20 was never updated.
	var recs []queue.Record
	for i := range 20 {
		r := hRec(i, "all@x.example", fmt.Sprintf("u%d@x.example", i))
		r.Updated = hAt(19 - i)
		recs = append(recs, r)
	}
	never := hRec(20, "all@x.example")
	never.Updated = time.Time{}
	recs = append(recs, never)
	hKeepShuffled(t, s, recs)
	for _, limit := range []int{0, -1} {
		if _, err := s.Expire(ctx, hAt(100), limit); !errors.Is(err, queue.ErrInvalid) {
			t.Fatalf("Expire with limit %d: %v, want ErrInvalid", limit, err)
		}
	}
	if n := hExpire(t, s, time.Time{}, 10); n != 0 {
		t.Fatalf("Expire before the zero time removed %d records", n)
	}

	// Cutoff hAt(10): records 10..19 (updated hAt(9)..hAt(0)) and the
	// never-updated one are older; record 9, updated at hAt(10), stays.
	cutoff := hAt(10)
	steps := []struct {
		limit int
		gone  []string // in the order they go
	}{
		{3, []string{hID(20), hID(19), hID(18)}},
		{1, []string{hID(17)}},
		{4, []string{hID(16), hID(15), hID(14), hID(13)}},
		{100, []string{hID(12), hID(11), hID(10)}},
		{100, nil},
	}
	left := hNewestFirst(recs...)
	for _, st := range steps {
		if n := hExpire(t, s, cutoff, st.limit); n != len(st.gone) {
			t.Fatalf("Expire(hAt(10), %d) removed %d records, want %d (%q)", st.limit, n, len(st.gone), st.gone)
		}
		left = slices.DeleteFunc(left, func(r queue.Record) bool { return slices.Contains(st.gone, r.ID) })
		hCheck(t, fmt.Sprintf("Records after Expire(hAt(10), %d)", st.limit), hAll(t, s, queue.RecordFilter{}), left)
	}
	var all []queue.Record
	for _, r := range left {
		all = append(all, hOnly(r, "all@x.example"))
	}
	hCheck(t, "Records of a recipient of every record, after expiring", hAll(t, s, queue.RecordFilter{Recipient: "all@x.example"}), all)
	for _, id := range []string{hID(10), hID(20)} {
		if _, err := s.Record(ctx, id); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("Record(%q) after Expire removed it: %v, want ErrNotFound", id, err)
		}
		if err := s.Note(ctx, id, "all@x.example", queue.Note{Type: "late"}); !errors.Is(err, queue.ErrNotFound) {
			t.Fatalf("Note(%q) after Expire removed it: %v, want ErrNotFound", id, err)
		}
	}
	u9 := hOnly(recs[9], "u9@x.example")
	hCheck(t, "Records of u9@, kept", hAll(t, s, queue.RecordFilter{Recipient: "u9@x.example"}), []queue.Record{u9})
	hCheck(t, "Records of u12@, expired", hAll(t, s, queue.RecordFilter{Recipient: "u12@x.example"}), nil)

	// A new record under an expired ID has only its own entries.
	again := queue.Record{ID: hID(12), Subject: "again", Updated: hAt(50), Recipients: []queue.RecipientRecord{hEntry("new@x.example")}}
	hKeep(t, s, again)
	hCheckOne(t, "a record kept again after it expired", hGet(t, s, again.ID), again)
	hCheck(t, "Records of u12@ after its ID was kept again", hAll(t, s, queue.RecordFilter{Recipient: "u12@x.example"}), nil)
	if n := hExpire(t, s, hAt(20), 100); n != 10 {
		t.Fatalf("Expire(hAt(20)) removed %d records, want 10", n)
	}
	hCheck(t, "Records after expiring all but the new one", hAll(t, s, queue.RecordFilter{}), []queue.Record{again})
}

// testHistExpireMerged: Expire goes by the Updated of the merged record:
// one updated by a later Keep stays, one whose later Keep had no Updated
// goes.
func testHistExpireMerged(t testing.TB, s queue.HistoryStore) {
	a, b := hRec(1, "a@x.example"), hRec(2, "b@x.example")
	a.Updated, b.Updated = hAt(1), hAt(1)
	hKeep(t, s, a, b)
	hKeep(t, s, queue.Record{ID: a.ID, Updated: hAt(30), Recipients: []queue.RecipientRecord{hEntry("a2@x.example")}},
		queue.Record{ID: b.ID, Recipients: []queue.RecipientRecord{hEntry("b2@x.example")}})
	hNote(t, s, b.ID, "b@x.example", queue.Note{Type: "opened", Time: hAt(40)})
	if n := hExpire(t, s, hAt(20), 10); n != 1 {
		t.Fatalf("Expire(hAt(20)) removed %d records, want 1 (%s, updated at hAt(1))", n, b.ID)
	}
	if got := hIDs(hAll(t, s, queue.RecordFilter{})); !slices.Equal(got, []string{a.ID}) {
		t.Fatalf("Records after Expire: %q, want only %q (updated at hAt(30) by a merge)", got, a.ID)
	}
	for _, addr := range []string{"b@x.example", "b2@x.example"} {
		hCheck(t, "Records of "+addr, hAll(t, s, queue.RecordFilter{Recipient: addr}), nil)
	}
	if n := hExpire(t, s, hAt(30), 10); n != 0 {
		t.Fatalf("Expire(hAt(30)) of a record updated at hAt(30) removed %d", n)
	}
	if n := hExpire(t, s, hAt(30).Add(time.Microsecond), 10); n != 1 {
		t.Fatalf("Expire a microsecond after hAt(30) removed %d records, want 1", n)
	}
}

// testHistForget: Forget erases an address, matched without regard to
// ASCII case, from every record; a record left without recipients goes;
// the others keep their other entries. It returns the records as they
// were, each holding only the erased entry, with its notes.
func testHistForget(t testing.TB, s queue.HistoryStore) {
	ctx := context.Background()
	r1 := hRec(1, "ann@x.example", "bob@x.example")
	r2 := hRec(2, "ANN@X.example")
	r3 := hRec(3, "bob@x.example")
	r4 := hRec(4, "carl@x.example", "Ann@x.Example")
	r4.Recipients[1].Notes = []queue.Note{{Type: "clicked", Time: hAt(5), Detail: "https://x.example/"}}
	r4.Campaign, r4.Metadata = "spring", map[string]string{"k": "v"}
	hKeep(t, s, r1, r2, r3, r4)
	hNote(t, s, r1.ID, "ANN@x.example", queue.Note{Type: "opened", Time: hAt(6)})
	r1.Recipients[0].Notes = []queue.Note{{Type: "opened", Time: hAt(6)}}

	got, err := s.Forget(ctx, "aNN@x.EXAMPLE")
	if err != nil {
		t.Fatalf("Forget: %v", err)
	}
	got = hNewestFirst(got...)
	hCheck(t, "what Forget returned", got,
		[]queue.Record{hOnly(r4, "ann@x.example"), hOnly(r2, "ann@x.example"), hOnly(r1, "ann@x.example")})

	w1, w4 := hOnly(r1, "bob@x.example"), hOnly(r4, "carl@x.example")
	hCheck(t, "Records after Forget", hAll(t, s, queue.RecordFilter{}), []queue.Record{w4, r3, w1})
	if _, err := s.Record(ctx, r2.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Record(%q), whose only recipient was forgotten: %v, want ErrNotFound", r2.ID, err)
	}
	hCheckOne(t, "Record of a record that kept another entry", hGet(t, s, r4.ID), w4)
	for _, q := range []string{"ann@x.example", "ANN@X.EXAMPLE"} {
		hCheck(t, "Records of "+q+" after Forget", hAll(t, s, queue.RecordFilter{Recipient: q}), nil)
	}
	hCheck(t, "Records of bob@ after Forget", hAll(t, s, queue.RecordFilter{Recipient: "bob@x.example"}), []queue.Record{r3, w1})
	if err := s.Note(ctx, r1.ID, "ann@x.example", queue.Note{Type: "late"}); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Note for a forgotten recipient: %v, want ErrNotFound", err)
	}
	for _, addr := range []string{"ann@x.example", "nobody@x.example"} {
		if got, err := s.Forget(ctx, addr); err != nil || len(got) != 0 {
			t.Fatalf("Forget(%q) of an address not in the history: %d records, %v; want none, nil", addr, len(got), err)
		}
	}
	// The address may come back with new mail, and only that is found.
	r5 := hRec(5, "ann@x.example")
	hKeep(t, s, r5)
	hCheck(t, "Records of ann@ after new mail", hAll(t, s, queue.RecordFilter{Recipient: "ann@x.example"}), []queue.Record{r5})
	// Expire still finds a record Forget rewrote, and no longer the one
	// it removed.
	if n := hExpire(t, s, hAt(5), 10); n != 3 {
		t.Fatalf("Expire(hAt(5)) after Forget removed %d records, want 3 (%s, %s, %s)", n, r1.ID, r3.ID, r4.ID)
	}
	hCheck(t, "Records after Forget and Expire", hAll(t, s, queue.RecordFilter{}), []queue.Record{r5})
}

// testHistCanceled: every method given an ended context returns an error
// that wraps its cause, and changes nothing.
func testHistCanceled(t testing.TB, s queue.HistoryStore) {
	r := hRec(1, "ann@x.example")
	hKeep(t, s, r)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, c := range []struct {
		ctx  context.Context
		want error
	}{{canceled, context.Canceled}, {expired, context.DeadlineExceeded}} {
		check := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, c.want) {
				t.Fatalf("%s with an ended context: %v, want an error wrapping %v", what, err, c.want)
			}
		}
		check("Keep", s.Keep(c.ctx, hRec(2, "bob@x.example"), queue.Record{ID: r.ID, Subject: "changed"}))
		_, err := s.Record(c.ctx, r.ID)
		check("Record", err)
		_, _, err = s.Records(c.ctx, queue.RecordFilter{})
		check("Records", err)
		_, _, err = s.Records(c.ctx, queue.RecordFilter{Recipient: "ann@x.example"})
		check("Records with Recipient", err)
		check("Note", s.Note(c.ctx, r.ID, "ann@x.example", queue.Note{Type: "opened"}))
		_, err = s.Expire(c.ctx, hAt(100), 10)
		check("Expire", err)
		_, err = s.Forget(c.ctx, "ann@x.example")
		check("Forget", err)
	}
	hCheck(t, "Records after calls with ended contexts (nothing may change)", hAll(t, s, queue.RecordFilter{}), []queue.Record{r})
}

// testHistConcurrent: Keep and Note from many goroutines on one record
// lose nothing, and each goroutine's notes keep its order (run it with
// -race). Other goroutines read meanwhile.
func testHistConcurrent(t testing.TB, s queue.HistoryStore) {
	const workers, rounds = 8, 40
	ctx := context.Background()
	id := hID(1)
	hKeep(t, s, queue.Record{ID: id, Recipients: []queue.RecipientRecord{hEntry("shared@x.example")}})
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range rounds {
				var err error
				switch i % 3 {
				case 0: // a new entry of this worker's
					err = s.Keep(ctx, queue.Record{ID: id, Recipients: []queue.RecipientRecord{hEntry(fmt.Sprintf("w%d-%02d@x.example", w, i))}})
				case 1: // the shared entry, replaced: its notes stay
					e := hEntry("shared@x.example")
					e.Status, e.Attempts = "bounced", i
					err = s.Keep(ctx, queue.Record{ID: id, Recipients: []queue.RecipientRecord{e}})
				}
				if err != nil {
					t.Errorf("Keep: %v", err)
					return
				}
				if err := s.Note(ctx, id, "SHARED@x.example", queue.Note{Type: "n", Detail: fmt.Sprintf("%d/%02d", w, i)}); err != nil {
					t.Errorf("Note: %v", err)
					return
				}
				if _, err := s.Record(ctx, id); err != nil {
					t.Errorf("Record: %v", err)
					return
				}
				if _, _, err := s.Records(ctx, queue.RecordFilter{Recipient: "shared@x.example"}); err != nil {
					t.Errorf("Records: %v", err)
					return
				}
			}
		}()
	}
	for range workers {
		<-done
	}
	if t.Failed() {
		return
	}
	r := hGet(t, s, id)
	var want []string
	for w := range workers {
		for i := 0; i < rounds; i += 3 {
			want = append(want, fmt.Sprintf("w%d-%02d@x.example", w, i))
		}
	}
	var addrs []string
	var shared *queue.RecipientRecord
	for i := range r.Recipients {
		if a := r.Recipients[i].Addr; a == "shared@x.example" {
			shared = &r.Recipients[i]
		} else {
			addrs = append(addrs, a)
		}
	}
	slices.Sort(addrs)
	if !slices.Equal(addrs, want) {
		t.Fatalf("after the concurrent calls: %d entries besides shared@, want %d:\n%q\nwant %q", len(addrs), len(want), addrs, want)
	}
	if shared == nil || shared.Status != "bounced" {
		t.Fatalf("after the concurrent calls: the shared entry is %+v, want one a later Keep replaced", shared)
	}
	last := make([]int, workers)
	for i := range last {
		last[i] = -1
	}
	for _, n := range shared.Notes {
		var w, i int
		if _, err := fmt.Sscanf(n.Detail, "%d/%d", &w, &i); err != nil || w < 0 || w >= workers {
			t.Fatalf("a note %q that no worker made", n.Detail)
		}
		if i <= last[w] {
			t.Fatalf("worker %d's note %d after its note %d (or twice)", w, i, last[w])
		}
		last[w] = i
	}
	if len(shared.Notes) != workers*rounds {
		t.Fatalf("the shared entry has %d notes, want %d (one per Note)", len(shared.Notes), workers*rounds)
	}
}

// testHistReopen: records, notes, merges and what Forget and Expire did
// survive closing the store and opening it again, and the reopened store
// still finds records by recipient and expires them.
func testHistReopen(t testing.TB, s queue.HistoryStore, reopen func(queue.HistoryStore) queue.HistoryStore) {
	ctx := context.Background()
	var recs []queue.Record
	for i := range 500 {
		recs = append(recs, hRec(i, fmt.Sprintf("u%d@x.example", i%23), "All@x.example"))
	}
	full := hFull("full")
	full.Updated = hAt(2000)
	recs = append(recs, full)
	hKeep(t, s, recs...)
	hKeep(t, s, queue.Record{ID: hID(7), Updated: hAt(1000), Recipients: []queue.RecipientRecord{hEntry("late@x.example")}})
	hNote(t, s, hID(7), "all@x.example", queue.Note{Type: "clicked", Time: hAt(2), Detail: "https://x.example/"})
	if _, err := s.Forget(ctx, "u3@x.example"); err != nil {
		t.Fatal(err)
	}
	if n := hExpire(t, s, hAt(10), 5); n != 5 {
		t.Fatalf("Expire removed %d records, want 5", n)
	}
	before := hAll(t, s, queue.RecordFilter{})
	byAddr := map[string][]queue.Record{}
	for _, a := range []string{"all@x.example", "u5@x.example", "late@x.example", "ann@x.example"} {
		byAddr[a] = hAll(t, s, queue.RecordFilter{Recipient: a})
	}
	s = reopen(s)
	hCheck(t, "Records after reopening", hAll(t, s, queue.RecordFilter{}), before)
	for a, want := range byAddr {
		hCheck(t, "Records of "+a+" after reopening", hAll(t, s, queue.RecordFilter{Recipient: a}), want)
	}
	hCheckOne(t, "Record after reopening", hGet(t, s, full.ID), full)
	if got := hAll(t, s, queue.RecordFilter{Recipient: "u3@x.example"}); len(got) != 0 {
		t.Fatalf("a forgotten address is back after reopening: %q", hIDs(got))
	}

	// The reopened store expires by the same order, and goes on.
	if n := hExpire(t, s, hAt(16), 1000); n != 10 {
		t.Fatalf("Expire after reopening removed %d records, want 10", n)
	}
	hNote(t, s, full.ID, "ann@x.example", queue.Note{Type: "complained", Time: hAt(3)})
	hKeep(t, s, queue.Record{ID: "new", Recipients: []queue.RecipientRecord{hEntry("ann@x.example")}})
	after := hAll(t, s, queue.RecordFilter{})
	ann := hAll(t, s, queue.RecordFilter{Recipient: "ann@x.example"})
	if len(ann) != 2 || !strings.HasPrefix(ann[1].ID, "full") {
		t.Fatalf("Records of ann@ after changes: %q, want new and full", hIDs(ann))
	}
	s = reopen(s)
	hCheck(t, "Records after changes and a second reopening", hAll(t, s, queue.RecordFilter{}), after)
	hCheck(t, "Records of ann@ after a second reopening", hAll(t, s, queue.RecordFilter{Recipient: "ann@x.example"}), ann)
}
