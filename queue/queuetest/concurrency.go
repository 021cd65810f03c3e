package queuetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

func testPerKeyLimit(t *testing.T, s queue.Store) {
	for i := range 5 {
		put(t, s, job(i, "a.example"))
	}
	for i := 5; i < 8; i++ {
		put(t, s, job(i, "b.example"))
	}
	got := claim(t, s, queue.ClaimRequest{Owner: "w1", Max: 10, PerKey: 2, Now: t0})
	count := map[string]int{}
	for _, j := range got {
		count[j.RoutingKey]++
	}
	if count["a.example"] != 2 || count["b.example"] != 2 {
		t.Fatalf("Claim with PerKey 2: %v", count)
	}
	// Another owner sees the same leases.
	if more := claim(t, s, queue.ClaimRequest{Owner: "w2", Max: 10, PerKey: 2, Now: t0}); len(more) != 0 {
		t.Fatalf("Claim beyond the per-key limit: %v", ids(more))
	}
	var a *queue.Job
	for _, j := range got {
		if j.RoutingKey == "a.example" {
			a = j
		}
	}
	a.Recipients[0].State, a.Recipients[1].State = queue.Delivered, queue.Delivered
	finish(t, s, a)
	more := claim(t, s, queue.ClaimRequest{Owner: "w2", Max: 10, PerKey: 2, Now: t0})
	if len(more) != 1 || more[0].RoutingKey != "a.example" {
		t.Fatalf("Claim after one finished: %v, want one job of a.example", ids(more))
	}
	// Expired leases do not count.
	late := claim(t, s, queue.ClaimRequest{Owner: "w3", Max: 10, PerKey: 2, Now: t0.Add(time.Hour)})
	if len(late) != 4 {
		t.Fatalf("Claim after the leases ended: %d jobs, want 4", len(late))
	}
}

func testNoStarvation(t *testing.T, s queue.Store) {
	// 50 jobs of a busy key are due before one of a quiet key.
	for i := range 50 {
		put(t, s, job(i, "busy.example"))
	}
	quiet := job(50, "quiet.example")
	quiet.NextAttempt = t0.Add(time.Second)
	put(t, s, quiet)
	got := claim(t, s, queue.ClaimRequest{Max: 3, PerKey: 2, Now: t0.Add(time.Minute)})
	count := map[string]int{}
	for _, j := range got {
		count[j.RoutingKey]++
	}
	if count["busy.example"] != 2 || count["quiet.example"] != 1 {
		t.Fatalf("Claim: %v, want 2 busy and the quiet one", count)
	}
}

func testConcurrentClaim(t *testing.T, s queue.Store) {
	const n, workers = 120, 8
	for i := range n {
		put(t, s, job(i, fmt.Sprintf("k%d.example", i%5)))
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("w%d", w)
			for range n { // bounded
				jobs, err := s.Claim(context.Background(), queue.ClaimRequest{Owner: owner, Max: 3, Now: t0, Lease: time.Minute})
				if err != nil {
					errc <- err
					return
				}
				if len(jobs) == 0 {
					return
				}
				mu.Lock()
				for _, j := range jobs {
					if prev, dup := seen[j.ID]; dup {
						mu.Unlock()
						errc <- fmt.Errorf("job %s claimed by %s and %s within one lease", j.ID, prev, owner)
						return
					}
					seen[j.ID] = owner
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("claimed %d distinct jobs, want %d", len(seen), n)
	}
}

func testConcurrentPut(t *testing.T, s queue.Store) {
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Put(context.Background(), job(i, "example.com"))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, s); st.Queued != n {
		t.Fatalf("Stats: %+v, want %d queued", st, n)
	}
	for i := range n {
		get(t, s, job(i, "example.com").ID)
	}
}

// testCanceledContext calls every Store method with a context that has
// already ended, cancelled or past its deadline: each must return an error
// that wraps the context's error and change nothing.
func testCanceledContext(t testing.TB, s queue.Store) {
	queued, leased, held := job(1, "example.com"), job(2, "example.com"), job(3, "example.com")
	queued.NextAttempt = t0.Add(time.Hour)
	held.Held = true
	put(t, s, queued, leased, held)
	lease := claim(t, s, queue.ClaimRequest{Owner: "w1", Max: 5, Now: t0})
	if len(lease) != 1 || lease[0].ID != leased.ID {
		t.Fatalf("Claim: %v, want %s", ids(lease), leased.ID)
	}
	done := lease[0].Clone()
	for i := range done.Recipients {
		done.Recipients[i].State = queue.Delivered
	}
	before := map[string]*queue.Job{}
	for _, id := range []string{queued.ID, leased.ID, held.ID} {
		before[id] = get(t, s, id)
	}
	stBefore := stats(t, s)

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	extra := job(4, "example.com")
	// Due at this Now: queued, and leased (its lease has ended).
	later := t0.Add(2 * time.Hour)
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Put", func(ctx context.Context) error { return s.Put(ctx, extra) }},
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, queued.ID); return err }},
		{"Claim", func(ctx context.Context) error {
			_, err := s.Claim(ctx, queue.ClaimRequest{Owner: "w2", Max: 5, Now: later, Lease: time.Minute})
			return err
		}},
		{"Claim with PerKey", func(ctx context.Context) error {
			_, err := s.Claim(ctx, queue.ClaimRequest{Owner: "w2", Max: 5, PerKey: 2, Now: later, Lease: time.Minute})
			return err
		}},
		{"Claim with Max 0", func(ctx context.Context) error {
			_, err := s.Claim(ctx, queue.ClaimRequest{Owner: "w2", Now: later, Lease: time.Minute})
			return err
		}},
		{"Finish", func(ctx context.Context) error { return s.Finish(ctx, done) }},
		{"Set(ActionHold)", func(ctx context.Context) error { return s.Set(ctx, queued.ID, queue.ActionHold) }},
		{"Set(ActionRelease)", func(ctx context.Context) error { return s.Set(ctx, held.ID, queue.ActionRelease) }},
		{"Set(ActionCancel)", func(ctx context.Context) error { return s.Set(ctx, leased.ID, queue.ActionCancel) }},
		{"Set(ActionRetry)", func(ctx context.Context) error { return s.Set(ctx, queued.ID, queue.ActionRetry) }},
		{"List", func(ctx context.Context) error { _, _, err := s.List(ctx, queue.ListRequest{}); return err }},
		{"Stats", func(ctx context.Context) error { _, err := s.Stats(ctx); return err }},
	}
	for _, c := range []struct {
		what string
		ctx  context.Context
		want error
	}{
		{"a cancelled context", canceled, context.Canceled},
		{"a context past its deadline", expired, context.DeadlineExceeded},
	} {
		for _, call := range calls {
			if err := call.call(c.ctx); !errors.Is(err, c.want) {
				t.Errorf("%s with %s: %v, want an error that wraps %v", call.name, c.what, err, c.want)
			}
		}
	}

	// Nothing changed.
	if _, err := s.Get(context.Background(), extra.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Get of the job given to Put with an ended context: %v, want ErrNotFound", err)
	}
	for id, want := range before {
		got := get(t, s, id)
		if err := sameJob(got, want, false); err != nil {
			t.Errorf("job %s after calls with an ended context: %v", id, err)
		}
		if !sameLease(got.Lease, want.Lease) {
			t.Errorf("job %s after calls with an ended context: lease %+v, want %+v", id, got.Lease, want.Lease)
		}
	}
	if st := stats(t, s); st != stBefore {
		t.Errorf("Stats after calls with an ended context: %+v, want %+v", st, stBefore)
	}
	// The lease is still the job's: Finish with it works.
	finish(t, s, done)
}
