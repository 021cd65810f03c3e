package queuetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// testSupPrecision: times with nanoseconds come back exact or truncated to
// the microsecond; zero times stay zero; times far from now keep their
// value; a time zone other than UTC changes nothing.
func testSupPrecision(t *testing.T, s queue.SuppressionStore) {
	ns := supEntry("ns@x.example", "", queue.Manual)
	ns.Created = supT0.Add(123_456_789 * time.Nanosecond)
	ns.Expires = time.Date(9999, 12, 31, 23, 59, 59, 987_654_321, time.UTC)
	zero := supEntry("zero@x.example", "", queue.Manual)
	zero.Created, zero.Source = time.Time{}, ""
	zone := supEntry("zone@x.example", "news", queue.Unsubscribed)
	zone.Created = supT0.In(time.FixedZone("UTC-7", -7*3600))
	zone.Expires = time.Date(1999, 1, 1, 0, 0, 0, 1000, time.FixedZone("UTC+13", 13*3600))
	long := supEntry("long@x.example", "", queue.HardBounced)
	long.Source = strings.Repeat("source ", 2000)
	supAdd(t, s, ns, zero, zone, long)

	got := supAll(t, s)
	want := []queue.Suppression{long, ns, zero, zone}
	if len(got) != len(want) {
		supCheck(t, "Suppressions", got, want)
	}
	for i, g := range got {
		w := want[i]
		for _, tm := range []struct {
			name      string
			got, want time.Time
		}{{"Created", g.Created, w.Created}, {"Expires", g.Expires, w.Expires}} {
			if !tm.got.Equal(tm.want) && !tm.got.Equal(tm.want.Truncate(time.Microsecond)) {
				t.Errorf("%s: %s %s read back as %s", w.Address, tm.name,
					tm.want.Format(time.RFC3339Nano), tm.got.Format(time.RFC3339Nano))
			}
			if tm.want.IsZero() != tm.got.IsZero() {
				t.Errorf("%s: %s is zero: %v, want %v", w.Address, tm.name, tm.got.IsZero(), tm.want.IsZero())
			}
		}
		g.Created, g.Expires = w.Created, w.Expires
		if !supSame(g, w) {
			t.Errorf("read back %s, want %s", supString(g), supString(w))
		}
	}
	active := supLookup(t, s, "news", []string{"ns@x.example", "zone@x.example"}, supT0)
	if len(active) != 1 || active[0].Address != "ns@x.example" {
		t.Errorf("Suppressed at %s: %d entries, want only ns@x.example (zone@ expired in 1999)", supT0, len(active))
	}
}

// testSupOddStrings: addresses and scopes of any valid UTF-8 text are
// stored and found; a NUL byte or bytes that are not UTF-8 are either
// stored and found too, or refused with ErrInvalid and nothing stored.
// Looking up such an address never fails.
func testSupOddStrings(t *testing.T, s queue.SuppressionStore) {
	ctx := context.Background()
	type sample struct {
		name                   string
		address, scope, source string
		mayRefuse              bool
	}
	samples := []sample{
		{"non-ASCII", "jörg@bücher.example", "nachrichten-ü", "quelle ✓", false},
		{"long address", strings.Repeat("a", 900) + "@x.example", "news", "", false},
		{"keyed hash", "h1:3q2-7wAAAAAAAAAAAAAAAA", "", "", false},
		{"NUL in the address", "nul\x00@x.example", "", "", true},
		{"NUL in the scope", "nulscope@x.example", "ne\x00ws", "", true},
		{"NUL in the source", "nulsource@x.example", "", "s\x00", true},
		{"address not UTF-8", "bad\xff@x.example", "", "", true},
		{"source not UTF-8", "badsource@x.example", "", "\xc3", true},
	}
	for _, c := range samples {
		e := supEntry(c.address, c.scope, queue.Manual)
		e.Source = c.source
		before := len(supAll(t, s))
		err := s.Suppress(ctx, e)
		switch {
		case err != nil && c.mayRefuse && errors.Is(err, queue.ErrInvalid):
			if n := len(supAll(t, s)); n != before {
				t.Errorf("%s: refused, but %d entries listed after it, %d before", c.name, n, before)
			}
			hits, err := s.Suppressed(ctx, c.scope, []string{c.address, "other@x.example"}, supT0)
			if err != nil || len(hits) != 0 {
				t.Errorf("%s: Suppressed of a refused entry: %d entries, %v; want none, nil", c.name, len(hits), err)
			}
			if ok, err := s.Unsuppress(ctx, c.address, c.scope); ok || err != nil {
				t.Errorf("%s: Unsuppress of a refused entry: %v, %v; want false, nil", c.name, ok, err)
			}
		case err != nil:
			t.Errorf("%s: Suppress: %v", c.name, err)
		default:
			supCheck(t, c.name+": Suppressed", supLookup(t, s, c.scope, []string{c.address}, supT0), []queue.Suppression{e})
			list, err := s.Suppressions(ctx, queue.SuppressionFilter{Address: c.address})
			if err != nil {
				t.Fatalf("%s: Suppressions: %v", c.name, err)
			}
			supCheck(t, c.name+": Suppressions of the address", list, []queue.Suppression{e})
			if ok, err := s.Unsuppress(ctx, c.address, c.scope); !ok || err != nil {
				t.Errorf("%s: Unsuppress: %v, %v; want true, nil", c.name, ok, err)
			}
		}
	}
	odd := []string{"a\x00b", "\xff\xfe", "", "x@x.example\x00"}
	if hits, err := s.Suppressed(ctx, "ne\x00ws", odd, supT0); err != nil || len(hits) != 0 {
		t.Errorf("Suppressed of odd addresses never stored: %d entries, %v; want none, nil", len(hits), err)
	}
}

// testSupReopen: every entry, and every change, survives closing the
// store and opening it again.
func testSupReopen(t *testing.T, s queue.SuppressionStore, reopen func(*testing.T, queue.SuppressionStore) queue.SuppressionStore) {
	if reopen == nil {
		t.Skip("no SuppressionOptions.Reopen: the store is not durable")
	}
	entries := supListSet()
	ns := supEntry("ns@x.example", "", queue.Manual)
	ns.Created = supT0.Add(123_456_789 * time.Nanosecond)
	ns.Expires = supT0.Add(time.Hour + 987_654_321*time.Nanosecond)
	entries = append(entries, ns)
	for i := range 2000 {
		entries = append(entries, supEntry(fmt.Sprintf("many%04d@x.example", i), "news", queue.SuppressReason(i%4+1)))
	}
	supAdd(t, s, entries...)
	before := supAll(t, s)
	if len(before) != len(entries) {
		t.Fatalf("%d entries listed after storing %d", len(before), len(entries))
	}
	s = reopen(t, s)
	supCheck(t, "Suppressions after reopening", supAll(t, s), before)
	supCheck(t, "Suppressed after reopening",
		supLookup(t, s, "news", []string{"many0007@x.example", "ns@x.example", "nobody@x.example"}, supT0),
		[]queue.Suppression{before[supIndex(before, "many0007@x.example")], before[supIndex(before, "ns@x.example")]})

	if ok, err := s.Unsuppress(context.Background(), "many0007@x.example", "news"); !ok || err != nil {
		t.Fatalf("Unsuppress after reopening: %v, %v", ok, err)
	}
	added := supEntry("added@x.example", "offers", queue.Complained)
	supAdd(t, s, added)
	after := supAll(t, s)
	s = reopen(t, s)
	supCheck(t, "Suppressions after changes and a second reopening", supAll(t, s), after)
	if got := supLookup(t, s, "news", []string{"many0007@x.example"}, supT0); len(got) != 0 {
		t.Fatalf("an entry removed before reopening is back: %s", supString(got[0]))
	}
}

// supIndex returns the index of the first entry of es for address.
func supIndex(es []queue.Suppression, address string) int {
	for i, e := range es {
		if e.Address == address {
			return i
		}
	}
	panic("queuetest: no entry for " + address)
}
