package queuetest

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// HistoryOptions tune TestHistory.
type HistoryOptions struct {
	// Reopen, when set, closes old and returns a store on the same data,
	// as a restarted process would open it. The suite then checks that
	// every record, note and index entry survives; without it, that
	// subtest is skipped. Leave it nil for a store that keeps nothing
	// once closed, such as queue.MemoryStore.
	Reopen func(t *testing.T, old queue.HistoryStore) queue.HistoryStore
}

// TestHistory runs the conformance suite for queue.HistoryStore against
// stores made by newStore, one new empty store per subtest. Give at most
// one HistoryOptions.
//
// The suite's times are whole microseconds, which every store must keep;
// one subtest gives nanoseconds, and accepts them back exact, truncated or
// rounded to the microsecond. Times are compared as instants, so a store
// may read them back in any time zone. A nil and an empty Metadata,
// Recipients or Notes are taken as equal. The suite never sleeps.
func TestHistory(t *testing.T, newStore func(t *testing.T) queue.HistoryStore, opts ...HistoryOptions) {
	var o HistoryOptions
	if len(opts) > 0 {
		o = opts[len(opts)-1]
	}
	tests := []struct {
		name string
		fn   func(t testing.TB, s queue.HistoryStore)
	}{
		{"RoundTrip", testHistRoundTrip},
		{"Merge", testHistMerge},
		{"MergeInOneCall", testHistMergeInOneCall},
		{"Invalid", testHistInvalid},
		{"NotFound", testHistNotFound},
		{"Copies", testHistCopies},
		{"Precision", testHistPrecision},
		{"Note", testHistNote},
		{"Order", testHistOrder},
		{"Paging", testHistPaging},
		{"Limit", testHistLimit},
		{"Recipient", testHistRecipient},
		{"RecipientPaging", testHistRecipientPaging},
		{"Filters", testHistFilters},
		{"Expire", testHistExpire},
		{"ExpireMerged", testHistExpireMerged},
		{"Forget", testHistForget},
		{"CanceledContext", testHistCanceled},
		{"Concurrent", testHistConcurrent},
		{"Reopen", func(t testing.TB, s queue.HistoryStore) {
			if o.Reopen == nil {
				t.Skip("no HistoryOptions.Reopen: durability across close and reopen is not checked")
			}
			tt := t.(*testing.T)
			testHistReopen(t, s, func(old queue.HistoryStore) queue.HistoryStore { return o.Reopen(tt, old) })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

// hT0 is the history tests' clock origin: whole microseconds.
var hT0 = time.Date(2030, 3, 4, 5, 6, 7, 8_009_000, time.UTC)

// hAt returns hT0 plus d hours.
func hAt(d int) time.Time { return hT0.Add(time.Duration(d) * time.Hour) }

// hID returns the ID of record i: IDs sort by i.
func hID(i int) string { return fmt.Sprintf("rec-%05d", i) }

// hEntry returns a delivered entry for addr, final at hT0.
func hEntry(addr string) queue.RecipientRecord {
	return queue.RecipientRecord{Addr: addr, Status: "delivered", Code: 250, Enhanced: "2.0.0",
		Reply: "250 2.0.0 ok " + addr, MX: "mx.x.example", Time: hT0, Attempts: 1}
}

// hRec returns record i, created and updated at hAt(i), with a delivered
// entry for each of addrs.
func hRec(i int, addrs ...string) queue.Record {
	r := queue.Record{ID: hID(i), MessageID: fmt.Sprintf("m%d@x.example", i), From: "sender@x.example",
		Subject: fmt.Sprintf("message %d", i), Created: hAt(i), Updated: hAt(i)}
	for _, a := range addrs {
		r.Recipients = append(r.Recipients, hEntry(a))
	}
	return r
}

// hFull returns a record with every field set, two recipients, and notes.
func hFull(id string) queue.Record {
	return queue.Record{
		ID: id, MessageID: "full." + id + "@x.example", From: "bounces+x@x.example", Subject: "Grüße, and ✓",
		Campaign: "spring", List: "news", Metadata: map[string]string{"user": "42", "ü": "ß", "empty": ""},
		Created: hT0, Updated: hT0.Add(90 * time.Second),
		Recipients: []queue.RecipientRecord{
			{Addr: "Ann@X.example", Status: "delivered", Code: 250, Enhanced: "2.0.0", Category: "",
				Reply: "250 2.0.0 queued as 1234", MX: "mx1.x.example", Source: "192.0.2.1",
				TLSVersion: "TLS 1.3", TLSVerified: true, TLSPolicy: "mta-sts", Time: hT0.Add(time.Second), Attempts: 2,
				Notes: []queue.Note{
					{Type: "opened", Time: hT0.Add(time.Hour), Machine: true, UserAgent: "Proxy/1.0", Client: "198.51.100.7"},
					{Type: "clicked", Time: hT0.Add(2 * time.Hour), Detail: "https://x.example/a?b=c", UserAgent: "Mozilla/5.0", Client: "2001:db8::1"},
				}},
			{Addr: "bob@y.example", Status: "bounced", Code: 550, Enhanced: "5.1.1", Category: "bad-mailbox",
				Reply: "550 5.1.1 no such user", MX: "mx.y.example", Source: "2001:db8::25",
				TLSVersion: "TLS 1.2", TLSPolicy: "opportunistic", Time: hT0.Add(3 * time.Second), Attempts: 1},
		},
	}
}

func hKeep(t testing.TB, s queue.HistoryStore, recs ...queue.Record) {
	t.Helper()
	if err := s.Keep(context.Background(), recs...); err != nil {
		t.Fatalf("Keep(%d records): %v", len(recs), err)
	}
}

func hGet(t testing.TB, s queue.HistoryStore, id string) *queue.Record {
	t.Helper()
	r, err := s.Record(context.Background(), id)
	if err != nil {
		t.Fatalf("Record(%q): %v", id, err)
	}
	if r == nil {
		t.Fatalf("Record(%q) returned nil and no error", id)
	}
	return r
}

func hNote(t testing.TB, s queue.HistoryStore, id, addr string, n queue.Note) {
	t.Helper()
	if err := s.Note(context.Background(), id, addr, n); err != nil {
		t.Fatalf("Note(%q, %q, %s): %v", id, addr, n.Type, err)
	}
}

// hPages lists every record f selects, in pages of size, checking each
// page's size and cursor: the cursor is the last ID of a page, and "" for
// the last page only.
func hPages(t testing.TB, s queue.HistoryStore, f queue.RecordFilter, size int) []queue.Record {
	t.Helper()
	f.Limit = size
	var all []queue.Record
	followed := false // f.Before is a cursor the store gave
	for range 100_000 {
		page, next, err := s.Records(context.Background(), f)
		if err != nil {
			t.Fatalf("Records(%+v): %v", f, err)
		}
		if len(page) > size {
			t.Fatalf("Records with Limit %d returned %d records", size, len(page))
		}
		for i, r := range page {
			if f.Before != "" && r.ID >= f.Before {
				t.Fatalf("Records(%+v): record %q is not before the cursor", f, r.ID)
			}
			if i > 0 && r.ID >= page[i-1].ID {
				t.Fatalf("Records(%+v): record %q after %q: not newest first", f, r.ID, page[i-1].ID)
			}
		}
		if len(page) == 0 && followed {
			t.Fatalf("Records(%+v): an empty page after a cursor (want \"\" from the page before: nothing was left)", f)
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		if len(page) < size {
			t.Fatalf("Records(%+v): a page of %d records, fewer than the limit, with the cursor %q (want \"\": nothing is left)",
				f, len(page), next)
		}
		if last := page[len(page)-1].ID; next != last {
			t.Fatalf("Records(%+v): cursor %q, want the last ID of the page, %q", f, next, last)
		}
		f.Before, followed = next, true
	}
	t.Fatalf("Records(%+v): paging does not end", f)
	return nil
}

// hAll lists every record f selects, 1000 a page.
func hAll(t testing.TB, s queue.HistoryStore, f queue.RecordFilter) []queue.Record {
	t.Helper()
	return hPages(t, s, f, 1000)
}

// hIDs returns the IDs of recs.
func hIDs(recs []queue.Record) []string {
	out := make([]string, len(recs))
	for i := range recs {
		out[i] = recs[i].ID
	}
	return out
}

// hNewestFirst returns copies of recs in descending ID order.
func hNewestFirst(recs ...queue.Record) []queue.Record {
	out := slices.Clone(recs)
	slices.SortFunc(out, func(a, b queue.Record) int { return strings.Compare(b.ID, a.ID) })
	return out
}

// hOnly returns a copy of r holding only the entries for addr (compared
// with queue.FoldAddr).
func hOnly(r queue.Record, addr string) queue.Record {
	c := hClone(r)
	c.Recipients = slices.DeleteFunc(c.Recipients, func(o queue.RecipientRecord) bool {
		return queue.FoldAddr(o.Addr) != queue.FoldAddr(addr)
	})
	return c
}

// hClone returns a deep copy of r.
func hClone(r queue.Record) queue.Record {
	r.Metadata = maps.Clone(r.Metadata)
	r.Recipients = slices.Clone(r.Recipients)
	for i := range r.Recipients {
		r.Recipients[i].Notes = slices.Clone(r.Recipients[i].Notes)
	}
	return r
}

// hNorm returns a copy of r in the form the suite compares: times in UTC
// without a monotonic reading, and nil for an empty Metadata, Recipients
// or Notes.
func hNorm(r queue.Record) queue.Record {
	c := hClone(r)
	if len(c.Metadata) == 0 {
		c.Metadata = nil
	}
	if len(c.Recipients) == 0 {
		c.Recipients = nil
	}
	c.Created, c.Updated = c.Created.UTC(), c.Updated.UTC()
	for i := range c.Recipients {
		o := &c.Recipients[i]
		o.Time = o.Time.UTC()
		if len(o.Notes) == 0 {
			o.Notes = nil
		}
		for j := range o.Notes {
			o.Notes[j].Time = o.Notes[j].Time.UTC()
		}
	}
	return c
}

// hDiff returns the differences between two records, one a line, or ""
// if they are equal as the suite compares them.
func hDiff(got, want queue.Record) string {
	g, w := hNorm(got), hNorm(want)
	if reflect.DeepEqual(g, w) {
		return ""
	}
	var b strings.Builder
	diffValue(&b, "", reflect.ValueOf(g), reflect.ValueOf(w))
	return b.String()
}

var timeType = reflect.TypeFor[time.Time]()

// diffValue writes a line for each difference between got and want,
// which have the same type, naming it by path.
func diffValue(b *strings.Builder, path string, got, want reflect.Value) {
	switch {
	case got.Type() == timeType:
		g, w := got.Interface().(time.Time), want.Interface().(time.Time)
		if !g.Equal(w) {
			fmt.Fprintf(b, "\n\t%s: %s, want %s", path, g.Format(time.RFC3339Nano), w.Format(time.RFC3339Nano))
		}
	case got.Kind() == reflect.Struct:
		for i := range got.NumField() {
			diffValue(b, path+"."+got.Type().Field(i).Name, got.Field(i), want.Field(i))
		}
	case got.Kind() == reflect.Slice:
		for i := range max(got.Len(), want.Len()) {
			p := fmt.Sprintf("%s[%d]", path, i)
			switch {
			case i >= got.Len():
				fmt.Fprintf(b, "\n\t%s: missing, want %+v", p, want.Index(i).Interface())
			case i >= want.Len():
				fmt.Fprintf(b, "\n\t%s: %+v, want none", p, got.Index(i).Interface())
			default:
				diffValue(b, p, got.Index(i), want.Index(i))
			}
		}
	case !reflect.DeepEqual(got.Interface(), want.Interface()):
		fmt.Fprintf(b, "\n\t%s: %#v, want %#v", path, got.Interface(), want.Interface())
	}
}

// hCheck fails the test unless got equals want, record for record.
func hCheck(t testing.TB, what string, got, want []queue.Record) {
	t.Helper()
	if !slices.Equal(hIDs(got), hIDs(want)) {
		t.Fatalf("%s: records %q, want %q", what, hIDs(got), hIDs(want))
	}
	for i := range got {
		if d := hDiff(got[i], want[i]); d != "" {
			t.Fatalf("%s: record %q differs:%s", what, want[i].ID, d)
		}
	}
}

// hCheckOne fails the test unless got equals want.
func hCheckOne(t testing.TB, what string, got *queue.Record, want queue.Record) {
	t.Helper()
	if d := hDiff(*got, want); d != "" {
		t.Fatalf("%s: record %q differs:%s", what, want.ID, d)
	}
}
