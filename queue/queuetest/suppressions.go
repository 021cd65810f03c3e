package queuetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// SuppressionOptions tune TestSuppressions.
type SuppressionOptions struct {
	// Reopen, when set, closes old and returns a store on the same data,
	// as a restarted process would open it. The suite then checks that
	// every entry survives; without it, that subtest is skipped.
	Reopen func(t *testing.T, old queue.SuppressionStore) queue.SuppressionStore
}

// TestSuppressions runs the conformance suite for queue.SuppressionStore
// against stores made by newStore, one new empty store per subtest. Give
// at most one SuppressionOptions.
//
// The suite's times are whole microseconds, which every store must keep;
// one subtest gives nanoseconds, and accepts them back exact or truncated
// to the microsecond. The suite passes the time explicitly, so it never
// sleeps.
func TestSuppressions(t *testing.T, newStore func(t *testing.T) queue.SuppressionStore, opts ...SuppressionOptions) {
	var o SuppressionOptions
	if len(opts) > 0 {
		o = opts[len(opts)-1]
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s queue.SuppressionStore)
	}{
		{"AddReplace", testSupAddReplace},
		{"Scope", testSupScope},
		{"Expiry", testSupExpiry},
		{"Unsuppress", testSupUnsuppress},
		{"Invalid", testSupInvalid},
		{"ListOrder", testSupListOrder},
		{"ListPaging", testSupListPaging},
		{"ListDefaultLimit", testSupListDefaultLimit},
		{"ListFilters", testSupListFilters},
		{"Batch", testSupBatch},
		{"Concurrent", testSupConcurrent},
		{"CanceledContext", testSupCanceled},
		{"Precision", testSupPrecision},
		{"OddStrings", testSupOddStrings},
		{"Reopen", func(t *testing.T, s queue.SuppressionStore) { testSupReopen(t, s, o.Reopen) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

// supT0 is the suppression tests' clock origin: whole microseconds.
var supT0 = time.Date(2030, 1, 2, 3, 4, 5, 6_007_000, time.UTC)

// supEntry returns an entry made at supT0 that never expires.
func supEntry(address, scope string, r queue.SuppressReason) queue.Suppression {
	return queue.Suppression{Address: address, Scope: scope, Reason: r, Source: "test:" + address + "/" + scope, Created: supT0}
}

func supAdd(t *testing.T, s queue.SuppressionStore, entries ...queue.Suppression) {
	t.Helper()
	if err := s.Suppress(context.Background(), entries...); err != nil {
		t.Fatalf("Suppress(%d entries): %v", len(entries), err)
	}
}

// supLookup calls Suppressed and returns its entries in listing order.
func supLookup(t *testing.T, s queue.SuppressionStore, scope string, addrs []string, now time.Time) []queue.Suppression {
	t.Helper()
	got, err := s.Suppressed(context.Background(), scope, addrs, now)
	if err != nil {
		t.Fatalf("Suppressed(%q, %d addresses): %v", scope, len(addrs), err)
	}
	supSort(got)
	return got
}

// supAll lists every entry, a page of 500 at a time.
func supAll(t *testing.T, s queue.SuppressionStore) []queue.Suppression {
	t.Helper()
	return supPages(t, s, queue.SuppressionFilter{}, 500)
}

// supPages lists every entry f selects, in pages of size, checking that
// each page is at most size long.
func supPages(t *testing.T, s queue.SuppressionStore, f queue.SuppressionFilter, size int) []queue.Suppression {
	t.Helper()
	f.Limit = size
	var all []queue.Suppression
	for range 100_000 {
		page, err := s.Suppressions(context.Background(), f)
		if err != nil {
			t.Fatalf("Suppressions(%+v): %v", f, err)
		}
		if len(page) > size {
			t.Fatalf("Suppressions with Limit %d returned %d entries", size, len(page))
		}
		all = append(all, page...)
		if len(page) < size {
			return all
		}
		last := page[len(page)-1]
		f.AfterAddress, f.AfterScope = last.Address, last.Scope
	}
	t.Fatalf("Suppressions(%+v): paging does not end", f)
	return nil
}

func supCompare(a, b queue.Suppression) int {
	return cmp.Or(strings.Compare(a.Address, b.Address), strings.Compare(a.Scope, b.Scope))
}

func supSort(es []queue.Suppression) { slices.SortFunc(es, supCompare) }

// supSame reports whether two entries are equal, times compared as
// instants.
func supSame(a, b queue.Suppression) bool {
	return a.Address == b.Address && a.Scope == b.Scope && a.Reason == b.Reason && a.Source == b.Source &&
		a.Created.Equal(b.Created) && a.Expires.Equal(b.Expires)
}

func supString(e queue.Suppression) string {
	exp := "never"
	if !e.Expires.IsZero() {
		exp = e.Expires.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("{%q %q %s %q created %s expires %s}", e.Address, e.Scope, e.Reason, e.Source,
		e.Created.UTC().Format(time.RFC3339Nano), exp)
}

// supCheck fails the test unless got equals want, entry for entry.
func supCheck(t *testing.T, what string, got, want []queue.Suppression) {
	t.Helper()
	if slices.EqualFunc(got, want, supSame) {
		return
	}
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = supString(got[i])
		}
		if i < len(want) {
			w = supString(want[i])
		}
		mark := " "
		if g != w {
			mark = "!"
		}
		fmt.Fprintf(&b, "\n %s %3d got  %s\n       want %s", mark, i, g, w)
	}
	t.Fatalf("%s: %d entries, want %d:%s", what, len(got), len(want), b.String())
}

func testSupAddReplace(t *testing.T, s queue.SuppressionStore) {
	a := supEntry("a@x.example", "", queue.Unsubscribed)
	an := supEntry("a@x.example", "news", queue.Manual)
	supAdd(t, s, a, an)
	supCheck(t, "after adding two scopes of one address", supAll(t, s), []queue.Suppression{a, an})

	an2 := queue.Suppression{Address: an.Address, Scope: an.Scope, Reason: queue.Complained, Source: "second",
		Created: supT0.Add(time.Hour), Expires: supT0.Add(48 * time.Hour)}
	supAdd(t, s, an2)
	supCheck(t, "after replacing the news entry", supAll(t, s), []queue.Suppression{a, an2})

	b1 := supEntry("b@x.example", "", queue.HardBounced)
	b2 := supEntry("b@x.example", "", queue.Manual)
	b2.Source = "later in the same call"
	supAdd(t, s, b1, b2)
	supCheck(t, "after one call with two entries of one key (the later wins)", supAll(t, s), []queue.Suppression{a, an2, b2})

	if err := s.Suppress(context.Background()); err != nil {
		t.Fatalf("Suppress with no entries: %v", err)
	}
	supCheck(t, "after Suppress with no entries", supAll(t, s), []queue.Suppression{a, an2, b2})
}

func testSupScope(t *testing.T, s queue.SuppressionStore) {
	all := supEntry("all@x.example", "", queue.Unsubscribed)
	news := supEntry("news@x.example", "news", queue.Unsubscribed)
	both0 := supEntry("both@x.example", "", queue.Complained)
	bothN := supEntry("both@x.example", "news", queue.Unsubscribed)
	offers := supEntry("offers@x.example", "offers", queue.Manual)
	supAdd(t, s, all, news, both0, bothN, offers)
	addrs := []string{"all@x.example", "news@x.example", "both@x.example", "offers@x.example", "none@x.example"}
	now := supT0.Add(time.Hour)

	supCheck(t, `Suppressed("news")`, supLookup(t, s, "news", addrs, now), []queue.Suppression{all, both0, bothN, news})
	supCheck(t, `Suppressed("offers")`, supLookup(t, s, "offers", addrs, now), []queue.Suppression{all, both0, offers})
	supCheck(t, `Suppressed("") (all mail)`, supLookup(t, s, "", addrs, now), []queue.Suppression{all, both0})
	supCheck(t, `Suppressed("other") of the news entry`, supLookup(t, s, "other", []string{"news@x.example"}, now), nil)
	supCheck(t, `Suppressed("news") of no addresses`, supLookup(t, s, "news", nil, now), nil)
}

func testSupExpiry(t *testing.T, s queue.SuppressionStore) {
	now := supT0.Add(24 * time.Hour)
	us := time.Microsecond
	atNow := supEntry("at-now@x.example", "", queue.HardBounced)
	atNow.Expires = now
	later := supEntry("later@x.example", "", queue.HardBounced)
	later.Expires = now.Add(us)
	past := supEntry("past@x.example", "news", queue.Manual)
	past.Expires = now.Add(-time.Hour)
	never := supEntry("never@x.example", "news", queue.Unsubscribed)
	supAdd(t, s, atNow, later, past, never)
	addrs := []string{"at-now@x.example", "later@x.example", "past@x.example", "never@x.example"}

	supCheck(t, "Suppressed at now", supLookup(t, s, "news", addrs, now), []queue.Suppression{later, never})
	supCheck(t, "Suppressed a microsecond before now", supLookup(t, s, "news", addrs, now.Add(-us)),
		[]queue.Suppression{atNow, later, never})
	supCheck(t, "Suppressed a century later", supLookup(t, s, "news", addrs, now.AddDate(100, 0, 0)),
		[]queue.Suppression{never})
	supCheck(t, "Suppressions (expired entries are listed)", supAll(t, s), []queue.Suppression{atNow, later, never, past})
}

func testSupUnsuppress(t *testing.T, s queue.SuppressionStore) {
	ctx := context.Background()
	x0 := supEntry("x@x.example", "", queue.Unsubscribed)
	xn := supEntry("x@x.example", "news", queue.Unsubscribed)
	yn := supEntry("y@x.example", "news", queue.Complained)
	supAdd(t, s, x0, xn, yn)
	un := func(address, scope string, want bool) {
		t.Helper()
		got, err := s.Unsuppress(ctx, address, scope)
		if err != nil || got != want {
			t.Fatalf("Unsuppress(%q, %q) = %v, %v; want %v, nil", address, scope, got, err, want)
		}
	}
	un("x@x.example", "news", true)
	un("x@x.example", "news", false)
	supCheck(t, "after removing x's news entry", supAll(t, s), []queue.Suppression{x0, yn})
	un("x@x.example", "offers", false)
	un("y@x.example", "", false) // "" names the all-mail entry only
	un("nobody@x.example", "", false)
	supCheck(t, "after removing entries that are not there", supAll(t, s), []queue.Suppression{x0, yn})
	un("x@x.example", "", true)
	supCheck(t, "after removing x's all-mail entry", supAll(t, s), []queue.Suppression{yn})
	supCheck(t, "Suppressed after the removals",
		supLookup(t, s, "news", []string{"x@x.example", "y@x.example"}, supT0), []queue.Suppression{yn})
	if _, err := s.Unsuppress(ctx, "", "news"); !errors.Is(err, queue.ErrInvalid) {
		t.Fatalf("Unsuppress without an address: %v, want ErrInvalid", err)
	}
}

func testSupInvalid(t *testing.T, s queue.SuppressionStore) {
	ctx := context.Background()
	good := supEntry("good@x.example", "", queue.Manual)
	noAddr := supEntry("", "news", queue.Manual)
	noReason := supEntry("r0@x.example", "", 0)
	badReason := supEntry("r99@x.example", "", 99)
	for _, batch := range [][]queue.Suppression{
		{good, noAddr}, {noAddr, good}, {good, noReason}, {badReason, good}, {noReason},
	} {
		if err := s.Suppress(ctx, batch...); !errors.Is(err, queue.ErrInvalid) {
			t.Fatalf("Suppress(%s, %s): %v, want ErrInvalid", supString(batch[0]), supString(batch[len(batch)-1]), err)
		}
	}
	supCheck(t, "after refused calls (nothing may be stored)", supAll(t, s), nil)
	supCheck(t, "Suppressed after refused calls",
		supLookup(t, s, "", []string{"good@x.example", "r0@x.example", "r99@x.example", ""}, supT0), nil)
	for _, f := range []queue.SuppressionFilter{{Limit: -1}, {Reason: 99}, {Reason: -1}} {
		if _, err := s.Suppressions(ctx, f); !errors.Is(err, queue.ErrInvalid) {
			t.Fatalf("Suppressions(%+v): %v, want ErrInvalid", f, err)
		}
	}
}

func testSupCanceled(t *testing.T, s queue.SuppressionStore) {
	x := supEntry("x@x.example", "", queue.Manual)
	supAdd(t, s, x)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Suppress(ctx, supEntry("y@x.example", "", queue.Manual)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Suppress with a canceled context: %v", err)
	}
	if _, err := s.Unsuppress(ctx, "x@x.example", ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("Unsuppress with a canceled context: %v", err)
	}
	if _, err := s.Suppressed(ctx, "", []string{"x@x.example"}, supT0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Suppressed with a canceled context: %v", err)
	}
	if _, err := s.Suppressions(ctx, queue.SuppressionFilter{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Suppressions with a canceled context: %v", err)
	}
	supCheck(t, "after calls with a canceled context (nothing may change)", supAll(t, s), []queue.Suppression{x})
}
