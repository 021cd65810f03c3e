package queuetest

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// testOutboxConcurrent: appenders (each call to several endpoints) and
// senders (claiming, then acking or retrying) run at once. Every claim is
// at oT0 for an hour, so no lease ends: no two senders may hold one
// endpoint at once, and every AckOutbox and RetryOutbox must succeed. At
// the end every item has been acked exactly once, in Seq order, and each
// appender's items in the order it appended them.
func testOutboxConcurrent(t testing.TB, s queue.OutboxStore) {
	const appenders, calls, senders = 4, 15, 4
	ctx := context.Background()
	eps := []string{"e0", "e1", "e2"}
	// What the appenders append, each call in full.
	plan := make([][][]queue.OutboxEntry, appenders)
	endpointOf := map[string]string{} // Data → endpoint
	for w := range appenders {
		for c := range calls {
			var call []queue.OutboxEntry
			for k := range c%5 + 1 { // up to two entries for each endpoint
				e := queue.OutboxEntry{Endpoint: eps[(w+c+k/2)%len(eps)], Time: oAt(time.Duration(c) * time.Second),
					Data: []byte(fmt.Sprintf("w%d c%02d k%d", w, c, k))}
				call = append(call, e)
				endpointOf[string(e.Data)] = e.Endpoint
			}
			plan[w] = append(plan[w], call)
		}
	}

	var (
		mu       sync.Mutex
		acked    = map[string][]queue.OutboxItem{} // by endpoint, in the order claimed
		held     = make([]atomic.Bool, len(eps))   // a sender holds the endpoint's lease
		left     atomic.Int32                      // appenders still appending
		appended atomic.Int64
		wg       sync.WaitGroup
	)
	left.Store(appenders)
	for w := range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer left.Add(-1)
			for _, call := range plan[w] {
				if err := s.AppendOutbox(ctx, call...); err != nil {
					t.Errorf("AppendOutbox: %v", err)
					return
				}
				appended.Add(int64(len(call)))
			}
		}()
	}
	for c := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("sender-%d", c)
			n := 0
			for range 1_000_000 {
				got := false
				for i, ep := range eps {
					b, err := s.ClaimOutbox(ctx, queue.OutboxClaim{Endpoint: ep, Owner: owner, Max: 3, Now: oT0, Lease: time.Hour})
					if err != nil {
						t.Errorf("ClaimOutbox(%q): %v", ep, err)
						return
					}
					if b == nil {
						continue
					}
					got = true
					if !held[i].CompareAndSwap(false, true) {
						t.Errorf("ClaimOutbox(%q) gave %s a batch while another sender held the endpoint's unexpired lease", ep, owner)
					}
					for range 3 {
						runtime.Gosched() // as if delivering, for a claim by another sender to come in
					}
					n++
					retry := n%4 == 0
					if !retry {
						mu.Lock()
						acked[ep] = append(acked[ep], b.Items...)
						mu.Unlock()
					}
					held[i].Store(false)
					if retry {
						err = s.RetryOutbox(ctx, b, oT0, "try again")
					} else {
						err = s.AckOutbox(ctx, b)
					}
					if err != nil {
						t.Errorf("%s of %q by %s: %v (no lease can have ended: every claim is at oT0 for an hour)",
							map[bool]string{true: "RetryOutbox", false: "AckOutbox"}[retry], ep, owner, err)
					}
				}
				if got {
					continue
				}
				if left.Load() > 0 {
					runtime.Gosched()
					continue
				}
				// The appends are over: stop once nothing is pending.
				sts, err := s.Outboxes(ctx)
				if err != nil {
					t.Errorf("Outboxes: %v", err)
					return
				}
				pending := 0
				for _, st := range sts {
					pending += st.Pending
				}
				if pending == 0 {
					return
				}
				runtime.Gosched()
			}
			t.Errorf("%s: claiming does not end", owner)
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	seen := map[string]bool{}
	total := 0
	for _, ep := range eps {
		items := acked[ep]
		total += len(items)
		last := map[string]string{} // appender → its last item acked here
		for j, it := range items {
			d := string(it.Data)
			switch {
			case seen[d]:
				t.Fatalf("endpoint %q: item %q acked twice", ep, d)
			case endpointOf[d] != ep:
				t.Fatalf("endpoint %q: item %q was appended to %q", ep, d, endpointOf[d])
			case j > 0 && it.Seq <= items[j-1].Seq:
				t.Fatalf("endpoint %q: Seq %d acked after %d", ep, it.Seq, items[j-1].Seq)
			case d <= last[d[:2]]:
				t.Fatalf("endpoint %q: item %q acked after %q of the same appender, which appended it later", ep, d, last[d[:2]])
			}
			seen[d], last[d[:2]] = true, d
		}
	}
	if int64(total) != appended.Load() {
		var lost []string
		for d := range endpointOf {
			if !seen[d] {
				lost = append(lost, d)
			}
		}
		slices.Sort(lost)
		t.Fatalf("%d items acked, %d appended; never claimed: %q", total, appended.Load(), lost)
	}
	oCheckStates(t, "Outboxes after the concurrent calls", s)
}
