package queuetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// TestLimits checks the rules of queue.LimitStore (see its doc) on the
// stores newPair returns: two stores sharing their limits, as two
// processes do (for pgstore, two stores on one schema). The rate checks
// compare the turns granted with what the time measured around them
// allows, which holds however slow the machine is: they are bounds, not
// timings.
func TestLimits(t *testing.T, newPair func(t *testing.T) (a, b queue.LimitStore)) {
	ctx := context.Background()

	t.Run("SlotsUnderCap", func(t *testing.T) {
		a, b := newPair(t)
		if _, err := a.AcquireSlot(ctx, "mx.example", 0); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("AcquireSlot with cap 0: %v, want ErrInvalid", err)
		}
		var held []string
		for i, s := range []queue.LimitStore{a, b, a} {
			sl, err := s.AcquireSlot(ctx, "mx.example", 3)
			if err != nil {
				t.Fatal(err)
			}
			if sl.ID == "" || sl.Held != i+1 {
				t.Fatalf("slot %d: %+v, want one taken with %d held", i+1, sl, i+1)
			}
			held = append(held, sl.ID)
		}
		for _, s := range []queue.LimitStore{a, b} {
			if sl, err := s.AcquireSlot(ctx, "mx.example", 3); err != nil || sl.ID != "" || sl.Held != 3 {
				t.Fatalf("slot beyond the cap: %+v, %v; want none, 3 held", sl, err)
			}
		}
		// Another key has slots of its own.
		if sl, err := b.AcquireSlot(ctx, "mx.other.example", 1); err != nil || sl.ID == "" {
			t.Fatalf("other key: %+v, %v", sl, err)
		}
		// A release by either store frees a slot for both; releasing
		// twice is no error.
		if err := a.ReleaseSlot(ctx, "mx.example", held[1]); err != nil {
			t.Fatal(err)
		}
		if err := a.ReleaseSlot(ctx, "mx.example", held[1]); err != nil {
			t.Errorf("second release: %v", err)
		}
		if sl, err := b.AcquireSlot(ctx, "mx.example", 3); err != nil || sl.ID == "" || sl.Held != 3 {
			t.Fatalf("after a release: %+v, %v; want a slot, 3 held", sl, err)
		}
		// A lower cap counts the slots already held.
		if sl, err := a.AcquireSlot(ctx, "mx.example", 2); err != nil || sl.ID != "" {
			t.Fatalf("cap 2 with 3 held: %+v, %v; want none", sl, err)
		}
	})

	t.Run("ReleaseAnnounced", func(t *testing.T) {
		a, b := newPair(t)
		ch := b.SlotReleased()
		sl, err := a.AcquireSlot(ctx, "mx.example", 1)
		if err != nil || sl.ID == "" {
			t.Fatalf("%+v, %v", sl, err)
		}
		// Drain what the listener sent on connecting.
		deadline := time.After(time.Minute)
		drain := time.NewTimer(time.Second)
	drained:
		for {
			select {
			case <-ch:
			case <-drain.C:
				break drained
			}
		}
		if err := a.ReleaseSlot(ctx, "mx.example", sl.ID); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatal("no SlotReleased signal within a minute of the release")
		}
	})

	t.Run("ConcurrentCap", func(t *testing.T) {
		a, b := newPair(t)
		const limit, workers, rounds = 4, 16, 20
		var mu sync.Mutex
		held, peak := 0, 0
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			s := a
			if w%2 == 1 {
				s = b
			}
			wg.Go(func() {
				for range rounds {
					sl, err := s.AcquireSlot(ctx, "mx.busy.example", limit)
					if err != nil {
						errs <- err
						return
					}
					if sl.ID == "" {
						continue
					}
					mu.Lock()
					held++
					peak = max(peak, held)
					mu.Unlock()
					time.Sleep(time.Millisecond)
					mu.Lock()
					held--
					mu.Unlock()
					if err := s.ReleaseSlot(ctx, "mx.busy.example", sl.ID); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if peak > limit || peak == 0 {
			t.Errorf("peak of slots held at once %d, want 1..%d", peak, limit)
		}
	})

	t.Run("Turns", func(t *testing.T) {
		a, b := newPair(t)
		r := queue.Rate{PerMinute: 600, Burst: 5} // one every 100 ms
		if _, _, err := a.TakeTurns(ctx, "mx.example", r, 0); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("TakeTurns of 0: %v, want ErrInvalid", err)
		}
		if _, _, err := a.TakeTurns(ctx, "mx.example", queue.Rate{}, 1); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("TakeTurns at no rate: %v, want ErrInvalid", err)
		}
		start := time.Now()
		got, _, err := a.TakeTurns(ctx, "mx.example", r, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got < 1 || got > 5 {
			t.Fatalf("first take: %d turns, want 1..5 (the burst)", got)
		}
		total := got
		// Take from both stores for a while; never more than the burst
		// plus the rate over the time elapsed.
		for i := 0; time.Since(start) < 700*time.Millisecond && i < 1000; i++ {
			s := []queue.LimitStore{a, b}[i%2]
			n, next, err := s.TakeTurns(ctx, "mx.example", r, 3)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 && !next.After(start) {
				t.Fatalf("no turn, next turn %v: not after the start %v", next, start)
			}
			total += n
			time.Sleep(10 * time.Millisecond)
		}
		elapsed := time.Since(start)
		if allowed := 5 + int(elapsed/(100*time.Millisecond)) + 1; total > allowed {
			t.Errorf("%d turns in %v at 600/min with bursts of 5: more than %d", total, elapsed, allowed)
		}
		if total < 6 {
			t.Errorf("%d turns in %v at 600/min: the rate was not granted", total, elapsed)
		}
	})

	t.Run("Backoff", func(t *testing.T) {
		a, b := newPair(t)
		if st, err := b.DestState(ctx, "mx.new.example"); err != nil || st != (queue.DestState{}) {
			t.Errorf("state of a key never noted: %+v, %v", st, err)
		}
		pause := time.Now().Add(time.Hour)
		st, err := a.NoteBackoff(ctx, "mx.example", queue.DestState{PausedUntil: pause})
		if err != nil {
			t.Fatal(err)
		}
		if !within(st.PausedUntil, pause) {
			t.Fatalf("paused until %v, want %v", st.PausedUntil, pause)
		}
		// Less strict does not relax it.
		if st, err = b.NoteBackoff(ctx, "mx.example", queue.DestState{PausedUntil: time.Now().Add(time.Minute)}); err != nil || !within(st.PausedUntil, pause) {
			t.Fatalf("after a shorter pause: %+v, %v; want still paused until %v", st, err, pause)
		}
		sl, err := b.AcquireSlot(ctx, "mx.example", 5)
		if err != nil || sl.ID != "" {
			t.Fatalf("slot while paused: %+v, %v; want none", sl, err)
		}
		if !within(sl.State.PausedUntil, pause) {
			t.Errorf("slot's state: %+v, want paused until %v", sl.State, pause)
		}

		// Fewer connections allowed: the cap is lowered for both.
		if st, err = a.NoteBackoff(ctx, "mx.slow.example", queue.DestState{Allowed: 1}); err != nil || st.Allowed != 1 {
			t.Fatalf("allowed 1: %+v, %v", st, err)
		}
		if sl, err = b.AcquireSlot(ctx, "mx.slow.example", 5); err != nil || sl.ID == "" {
			t.Fatalf("first slot under allowed 1: %+v, %v", sl, err)
		}
		if n := sl.State.AllowedNow(time.Now(), 5); n != 1 && time.Since(sl.State.AllowedAt) < queue.AllowedRecovery {
			t.Errorf("AllowedNow %d, want 1", n)
		}
		if sl2, err := a.AcquireSlot(ctx, "mx.slow.example", 5); err != nil {
			t.Fatal(err)
		} else if sl2.ID != "" && time.Since(sl.State.AllowedAt) < queue.AllowedRecovery {
			t.Errorf("second slot under allowed 1: %+v", sl2)
		}
		// A higher Allowed does not raise it.
		if st, err = b.NoteBackoff(ctx, "mx.slow.example", queue.DestState{Allowed: 4}); err != nil || st.Allowed != 1 {
			t.Errorf("allowed 4 after 1: %+v, %v; want 1 kept", st, err)
		}

		// A rule in force: the later end wins.
		until := time.Now().Add(2 * time.Hour)
		if st, err = a.NoteBackoff(ctx, "mx.rule.example", queue.DestState{Rule: "r1", RuleUntil: until}); err != nil ||
			st.Rule != "r1" || !within(st.RuleUntil, until) {
			t.Fatalf("rule: %+v, %v", st, err)
		}
		if st, err = b.NoteBackoff(ctx, "mx.rule.example", queue.DestState{Rule: "r2", RuleUntil: time.Now().Add(time.Hour)}); err != nil || st.Rule != "r1" {
			t.Errorf("a rule ending sooner replaced the one in force: %+v, %v", st, err)
		}
		if got, err := b.DestState(ctx, "mx.rule.example"); err != nil || got.Rule != "r1" {
			t.Errorf("DestState: %+v, %v", got, err)
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		a, _ := newPair(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := a.AcquireSlot(cctx, "mx.example", 1); !errors.Is(err, context.Canceled) {
			t.Errorf("AcquireSlot: %v", err)
		}
		if _, _, err := a.TakeTurns(cctx, "mx.example", queue.Rate{PerMinute: 60}, 1); !errors.Is(err, context.Canceled) {
			t.Errorf("TakeTurns: %v", err)
		}
		if _, err := a.NoteBackoff(cctx, "mx.example", queue.DestState{Allowed: 1}); !errors.Is(err, context.Canceled) {
			t.Errorf("NoteBackoff: %v", err)
		}
		if st, err := a.DestState(ctx, "mx.example"); err != nil || st.Allowed != 0 {
			t.Errorf("after a canceled NoteBackoff: %+v, %v", st, err)
		}
	})
}

// within reports whether a and b are the same time, to the microsecond a
// database keeps.
func within(a, b time.Time) bool {
	d := a.Sub(b)
	return d > -time.Millisecond && d < time.Millisecond
}
