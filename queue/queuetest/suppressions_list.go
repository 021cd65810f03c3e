package queuetest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// supListSet returns entries whose order tests byte comparison: one
// address a prefix of another, upper before lower case, a non-ASCII
// letter after every ASCII one. About a third of them have expired.
func supListSet() []queue.Suppression {
	addrs := []string{"a@x", "a@x.example", "a@x-", "ab@x", "A@x", "Z@x", "z@x", "ä@x", "a-b@x", "0@x"}
	scopes := []string{"", "news", "news.daily", "A", "offers"}
	var out []queue.Suppression
	for i, a := range addrs {
		for j, sc := range scopes {
			if (i+j)%3 == 1 {
				continue
			}
			e := supEntry(a, sc, queue.SuppressReason((i*5+j)%4+1))
			if (i+j)%4 == 0 {
				e.Expires = supT0.Add(-time.Duration(i+1) * time.Hour)
			}
			out = append(out, e)
		}
	}
	return out
}

// supAddShuffled stores entries in a random order, in three calls, and
// returns them in listing order.
func supAddShuffled(t *testing.T, s queue.SuppressionStore, entries []queue.Suppression) []queue.Suppression {
	t.Helper()
	mixed := append([]queue.Suppression(nil), entries...)
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(mixed), func(i, j int) { mixed[i], mixed[j] = mixed[j], mixed[i] })
	third := len(mixed) / 3
	supAdd(t, s, mixed[:third]...)
	supAdd(t, s, mixed[third:2*third]...)
	supAdd(t, s, mixed[2*third:]...)
	sorted := append([]queue.Suppression(nil), entries...)
	supSort(sorted)
	return sorted
}

func testSupListOrder(t *testing.T, s queue.SuppressionStore) {
	want := supAddShuffled(t, s, supListSet())
	got := supPages(t, s, queue.SuppressionFilter{}, 1000)
	supCheck(t, "Suppressions: order of (Address, Scope), byte by byte", got, want)
}

func testSupListPaging(t *testing.T, s queue.SuppressionStore) {
	want := supAddShuffled(t, s, supListSet())
	for _, size := range []int{1, 2, 3, 7, len(want) - 1, len(want), len(want) + 1} {
		supCheck(t, fmt.Sprintf("pages of %d", size), supPages(t, s, queue.SuppressionFilter{}, size), want)
	}
}

func testSupListDefaultLimit(t *testing.T, s queue.SuppressionStore) {
	var entries []queue.Suppression
	for i := range 150 {
		entries = append(entries, supEntry(fmt.Sprintf("d%03d@x.example", i), "", queue.Manual))
	}
	want := supAddShuffled(t, s, entries)
	page, err := s.Suppressions(t.Context(), queue.SuppressionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	supCheck(t, "Suppressions with Limit 0 (100)", page, want[:100])
	last := page[len(page)-1]
	page, err = s.Suppressions(t.Context(), queue.SuppressionFilter{AfterAddress: last.Address, AfterScope: last.Scope})
	if err != nil {
		t.Fatal(err)
	}
	supCheck(t, "the second page with Limit 0", page, want[100:])
}

// supMatch is the suite's own reading of the filters of f.
func supMatch(f queue.SuppressionFilter, e queue.Suppression) bool {
	switch {
	case f.Address != "" && e.Address != f.Address:
		return false
	case f.AllMail && e.Scope != "":
		return false
	case !f.AllMail && f.Scope != "" && e.Scope != f.Scope:
		return false
	case f.Reason != 0 && e.Reason != f.Reason:
		return false
	}
	return true
}

func testSupListFilters(t *testing.T, s queue.SuppressionStore) {
	all := supAddShuffled(t, s, supListSet())
	filters := []queue.SuppressionFilter{
		{Address: "a@x"},
		{Address: "a@x.example"},
		{Address: "nobody@x"},
		{Scope: "news"},
		{Scope: "A"},
		{Scope: "none"},
		{AllMail: true},
		{AllMail: true, Scope: "news"}, // Scope is ignored
		{Reason: queue.Complained},
		{Reason: queue.Unsubscribed},
		{Address: "a@x", Reason: queue.HardBounced},
		{Address: "z@x", Scope: "offers"},
		{Address: "ab@x", AllMail: true},
		{Scope: "news", Reason: queue.Manual},
	}
	cursors := [][2]string{{"", ""}, {"a@x", "m"}, {"a@x.example", ""}, {"b", ""}, {"", "news"}, {"a@x", "news"}, {"zz", ""}}
	for _, f := range filters {
		for _, c := range cursors {
			f.AfterAddress, f.AfterScope = c[0], c[1]
			var want []queue.Suppression
			for _, e := range all {
				if supMatch(f, e) && supCompare(e, queue.Suppression{Address: c[0], Scope: c[1]}) > 0 {
					want = append(want, e)
				}
			}
			what := fmt.Sprintf("Suppressions(%s)", supFilterString(f))
			supCheck(t, what+" in pages of 2", supPages(t, s, f, 2), want)
			supCheck(t, what+" in one page", supPages(t, s, f, 1000), want)
		}
	}
}

func supFilterString(f queue.SuppressionFilter) string {
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, fmt.Sprintf("%s %q", name, v))
		}
	}
	add("after address", f.AfterAddress)
	add("after scope", f.AfterScope)
	add("address", f.Address)
	add("scope", f.Scope)
	if f.AllMail {
		parts = append(parts, "all mail")
	}
	if f.Reason != 0 {
		parts = append(parts, "reason "+f.Reason.String())
	}
	return strings.Join(parts, ", ")
}
