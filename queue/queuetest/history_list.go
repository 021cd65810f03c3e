package queuetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mxrelay/mxrelay/queue"
)

// hListSet returns records whose IDs test byte order: one ID a prefix of
// another, upper before lower case, a non-ASCII letter after every ASCII
// one, digits that do not sort as numbers.
func hListSet() []queue.Record {
	ids := []string{"a", "a0", "aa", "a-", "B", "b", "ä", "9", "10", "z", "Z9", "job-0001", "job-0010", "job-001"}
	var out []queue.Record
	for i, id := range ids {
		r := hRec(i, fmt.Sprintf("u%d@x.example", i%3))
		r.ID = id
		out = append(out, r)
	}
	return out
}

// hKeepShuffled keeps recs in a random order, in three calls, and returns
// them newest first.
func hKeepShuffled(t testing.TB, s queue.HistoryStore, recs []queue.Record) []queue.Record {
	t.Helper()
	mixed := slices.Clone(recs)
	r := rand.New(rand.NewPCG(3, 4))
	r.Shuffle(len(mixed), func(i, j int) { mixed[i], mixed[j] = mixed[j], mixed[i] })
	third := len(mixed) / 3
	hKeep(t, s, mixed[:third]...)
	hKeep(t, s, mixed[third:2*third]...)
	hKeep(t, s, mixed[2*third:]...)
	return hNewestFirst(recs...)
}

func testHistOrder(t testing.TB, s queue.HistoryStore) {
	want := hKeepShuffled(t, s, hListSet())
	hCheck(t, "Records: newest first, in descending byte order of ID", hAll(t, s, queue.RecordFilter{}), want)
}

// testHistPaging: pages of any size, followed by their cursors, list
// every record once; a cursor that is no stored ID works too.
func testHistPaging(t testing.TB, s queue.HistoryStore) {
	want := hKeepShuffled(t, s, hListSet())
	for _, size := range []int{1, 2, 3, 5, len(want) - 1, len(want), len(want) + 1} {
		hCheck(t, fmt.Sprintf("pages of %d", size), hPages(t, s, queue.RecordFilter{}, size), want)
	}
	ctx := context.Background()
	for _, c := range []struct {
		before string
		want   []queue.Record
	}{
		{"a1", hOlder(want, "a1")}, // between "a0" and "aa"
		{"b", hOlder(want, "b")},
		{"\U0010ffff", want},
		{"0", nil},
		{"\x01", nil},
	} {
		got, next, err := s.Records(ctx, queue.RecordFilter{Before: c.before, Limit: 1000})
		if err != nil {
			t.Fatalf("Records(Before %q): %v", c.before, err)
		}
		hCheck(t, fmt.Sprintf("Records(Before %q)", c.before), got, c.want)
		if next != "" {
			t.Fatalf("Records(Before %q) of every record left: cursor %q, want \"\"", c.before, next)
		}
	}
}

// hOlder returns the records of recs whose IDs sort before id.
func hOlder(recs []queue.Record, id string) []queue.Record {
	var out []queue.Record
	for _, r := range recs {
		if r.ID < id {
			out = append(out, r)
		}
	}
	return out
}

// testHistLimit: Limit 0 gives pages of queue.DefaultRecordLimit; a
// negative Limit gives ErrInvalid.
func testHistLimit(t testing.TB, s queue.HistoryStore) {
	ctx := context.Background()
	var recs []queue.Record
	for i := range queue.DefaultRecordLimit + 50 {
		recs = append(recs, hRec(i, "all@x.example"))
	}
	want := hKeepShuffled(t, s, recs)
	for _, f := range []queue.RecordFilter{{}, {Recipient: "all@x.example"}} {
		page, next, err := s.Records(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		hCheck(t, fmt.Sprintf("Records(%+v) (Limit 0)", f), page, want[:queue.DefaultRecordLimit])
		if next != page[len(page)-1].ID {
			t.Fatalf("Records(%+v) (Limit 0): cursor %q, want %q", f, next, page[len(page)-1].ID)
		}
		f.Before = next
		page, next, err = s.Records(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		hCheck(t, fmt.Sprintf("the second page of Records(%+v)", f), page, want[queue.DefaultRecordLimit:])
		if next != "" {
			t.Fatalf("the last page of Records(%+v): cursor %q, want \"\"", f, next)
		}
	}
	for _, f := range []queue.RecordFilter{{Limit: -1}, {Limit: -1, Recipient: "all@x.example"}} {
		if _, _, err := s.Records(ctx, f); !errors.Is(err, queue.ErrInvalid) {
			t.Fatalf("Records(%+v): %v, want ErrInvalid", f, err)
		}
	}
}

// hRecipientSet returns 40 records whose recipients are drawn from five
// addresses, some in other case, with the records each address has.
func hRecipientSet() ([]queue.Record, map[string][]string) {
	addrs := []string{"ann@x.example", "Ann@X.Example", "bob@x.example", "ÄB@x.example", "Äb@x.example", "carl@x.example"}
	var recs []queue.Record
	has := map[string][]string{}
	for i := range 40 {
		var rs []string
		for j, a := range addrs {
			if (i*7+j*3)%5 < 2 {
				rs = append(rs, a)
			}
		}
		if len(rs) == 0 {
			rs = []string{"dave@x.example"}
		}
		r := hRec(i, rs...)
		seen := map[string]bool{}
		r.Recipients = slices.DeleteFunc(r.Recipients, func(o queue.RecipientRecord) bool {
			f := queue.FoldAddr(o.Addr)
			dup := seen[f]
			seen[f] = true
			return dup
		})
		for _, o := range r.Recipients {
			f := queue.FoldAddr(o.Addr)
			has[f] = append(has[f], r.ID)
		}
		recs = append(recs, r)
	}
	return recs, has
}

// testHistRecipient: Records with Recipient lists the records with an
// entry for that address, matched without regard to ASCII case, newest
// first, each holding only that entry.
func testHistRecipient(t testing.TB, s queue.HistoryStore) {
	recs, has := hRecipientSet()
	hKeepShuffled(t, s, recs)
	for _, q := range []string{"ann@x.example", "ANN@x.example", "bob@X.EXAMPLE", "ÄB@X.EXAMPLE", "Äb@x.example",
		"carl@x.example", "dave@x.example", "nobody@x.example", "ann@x", "nn@x.example", "ann@x.example.org", "ann@x.example\x00"} {
		var want []queue.Record
		for _, r := range hNewestFirst(recs...) {
			if slices.Contains(has[queue.FoldAddr(q)], r.ID) {
				want = append(want, hOnly(r, q))
			}
		}
		hCheck(t, fmt.Sprintf("Records(Recipient %q)", q), hAll(t, s, queue.RecordFilter{Recipient: q}), want)
	}
}

// testHistRecipientPaging: pages of one address's records, among many
// records of other addresses, follow one another without gaps or
// repeats; Before need not be one of its records.
func testHistRecipientPaging(t testing.TB, s queue.HistoryStore) {
	var recs, heavy []queue.Record
	for i := range 300 {
		r := hRec(i, fmt.Sprintf("u%d@x.example", i%17), fmt.Sprintf("v%d@x.example", i%5))
		if i%3 == 0 {
			r.Recipients = append(r.Recipients, hEntry("Heavy@X.example"))
			heavy = append(heavy, hOnly(r, "heavy@x.example"))
		}
		recs = append(recs, r)
	}
	hKeepShuffled(t, s, recs)
	heavy = hNewestFirst(heavy...)
	for _, size := range []int{1, 7, 50, len(heavy), 500} {
		hCheck(t, fmt.Sprintf("pages of %d of heavy@'s records", size),
			hPages(t, s, queue.RecordFilter{Recipient: "heavy@x.example"}, size), heavy)
	}
	before := hID(151) // not one of heavy@'s records
	got, _, err := s.Records(context.Background(), queue.RecordFilter{Recipient: "HEAVY@x.example", Before: before, Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	hCheck(t, fmt.Sprintf("Records(Recipient heavy@, Before %q, Limit 5)", before), got, hOlder(heavy, before)[:5])
}

// testHistFilters: Campaign, Since (inclusive) and Until (exclusive), on
// their own, together, with Recipient and across pages.
func testHistFilters(t testing.TB, s queue.HistoryStore) {
	var recs []queue.Record
	for i := range 60 {
		r := hRec(i, fmt.Sprintf("u%d@x.example", i%4))
		r.Campaign = []string{"", "spring", "summer"}[i%3]
		r.Created = hAt(i % 20) // Created does not follow ID order
		recs = append(recs, r)
	}
	hKeepShuffled(t, s, recs)
	for _, f := range []queue.RecordFilter{
		{Campaign: "spring"},
		{Campaign: "none"},
		{Since: hAt(5)},
		{Until: hAt(5)},
		{Since: hAt(5), Until: hAt(9)},
		{Since: hAt(5), Until: hAt(5)},
		{Since: hAt(5).Add(1000), Until: hAt(6)},
		{Campaign: "summer", Since: hAt(3), Until: hAt(17)},
		{Recipient: "u1@x.example", Campaign: "spring"},
		{Recipient: "U2@x.example", Since: hAt(4), Until: hAt(12)},
		{Recipient: "u3@x.example", Campaign: "summer", Since: hAt(10)},
	} {
		var want []queue.Record
		for _, r := range hNewestFirst(recs...) {
			if f.Match(&r) && (f.Recipient == "" || queue.FoldAddr(r.Recipients[0].Addr) == queue.FoldAddr(f.Recipient)) {
				want = append(want, r)
			}
		}
		for _, size := range []int{3, 1000} {
			hCheck(t, fmt.Sprintf("Records(%+v) in pages of %d", f, size), hPages(t, s, f, size), want)
		}
	}
}
