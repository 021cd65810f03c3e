package queuetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

func testSupBatch(t *testing.T, s queue.SuppressionStore) {
	now := supT0.Add(time.Hour)
	addr := func(i int) string { return fmt.Sprintf("user%05d@batch.example", i) }
	// Of 10,000 addresses, the even ones are on the list (5,000 entries,
	// stored in one call): i%8 == 0 for all mail, 2 for news, 4 for
	// offers, 6 for news but expired at now.
	var entries []queue.Suppression
	for i := 0; i < 10_000; i += 2 {
		e := supEntry(addr(i), "", queue.SuppressReason(i/2%4+1))
		switch i % 8 {
		case 2:
			e.Scope = "news"
		case 4:
			e.Scope = "offers"
		case 6:
			e.Scope, e.Expires = "news", now
		}
		entries = append(entries, e)
	}
	supAdd(t, s, entries...)
	if n := len(supAll(t, s)); n != len(entries) {
		t.Fatalf("%d entries listed after storing %d", n, len(entries))
	}

	// 1,000 addresses from the middle: half of them are on the list.
	var batch []string
	for i := 3000; i < 4000; i++ {
		batch = append(batch, addr(i))
	}
	expect := func(scope string) []queue.Suppression {
		var want []queue.Suppression
		for _, e := range entries {
			n := 0
			fmt.Sscanf(e.Address, "user%05d@", &n)
			if n >= 3000 && n < 4000 && (e.Scope == "" || e.Scope == scope) && e.Active(now) {
				want = append(want, e)
			}
		}
		return want
	}
	for _, scope := range []string{"news", "offers", "", "other"} {
		want := expect(scope)
		supCheck(t, fmt.Sprintf("Suppressed(%q) of 1,000 addresses", scope), supLookup(t, s, scope, batch, now), want)
	}
	// Repeated addresses give their entries once.
	twice := append(slices.Clone(batch), batch[:100]...)
	supCheck(t, "Suppressed of 1,100 addresses, 100 of them twice", supLookup(t, s, "news", twice, now), expect("news"))

	var misses []string
	for i := range 1000 {
		misses = append(misses, fmt.Sprintf("nobody%04d@batch.example", i))
	}
	supCheck(t, "Suppressed of 1,000 addresses not on the list", supLookup(t, s, "news", misses, now), nil)
}

// testSupConcurrent runs Suppress, Suppressed and Unsuppress from 8
// goroutines at once (run it with -race).
func testSupConcurrent(t *testing.T, s queue.SuppressionStore) {
	const workers, rounds = 8, 60
	shared := supEntry("shared@x.example", "", queue.Manual)
	supAdd(t, s, shared)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				a := fmt.Sprintf("c%d-%03d@x.example", w, i)
				if err := s.Suppress(ctx, supEntry(a, "news", queue.Unsubscribed)); err != nil {
					t.Errorf("Suppress(%s): %v", a, err)
					return
				}
				got, err := s.Suppressed(ctx, "news", []string{a, shared.Address, "none@x.example"}, supT0)
				if err != nil || len(got) != 2 {
					t.Errorf("Suppressed(%s and shared): %d entries, %v; want 2", a, len(got), err)
					return
				}
				if i%3 != 0 {
					continue
				}
				if ok, err := s.Unsuppress(ctx, a, "news"); !ok || err != nil {
					t.Errorf("Unsuppress(%s) = %v, %v", a, ok, err)
					return
				}
				got, err = s.Suppressed(ctx, "news", []string{a}, supT0)
				if err != nil || len(got) != 0 {
					t.Errorf("Suppressed(%s) after Unsuppress: %d entries, %v; want none", a, len(got), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	want := []queue.Suppression{shared}
	for w := range workers {
		for i := range rounds {
			if i%3 != 0 {
				want = append(want, supEntry(fmt.Sprintf("c%d-%03d@x.example", w, i), "news", queue.Unsubscribed))
			}
		}
	}
	supSort(want)
	supCheck(t, "after the concurrent calls", supAll(t, s), want)
}
