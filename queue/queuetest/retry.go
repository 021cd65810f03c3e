package queuetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// The checks of Set(ActionRetry). The store must report the cleared
// NextAttempt as the zero time.Time (compared as an instant), as it reports
// every field Set changed: a store whose storage cannot hold that instant
// keeps a marker for it and reads it back as zero.

// testRetryDue checks that a retried job is due at once, ahead of a job
// that was due already, with its attempts, last error and recipients as
// they were.
func testRetryDue(t testing.TB, s queue.Store) {
	later := job(1, "example.com")
	later.NextAttempt = t0.Add(time.Hour)
	later.Attempts = 2
	later.LastError = "451 4.7.1 try later"
	later.Recipients[0].State = queue.Deferred
	later.Recipients[0].Reply = "451 4.7.1 try later"
	later.Recipients[1].State = queue.Delivered
	later.Recipients[1].Reply = "250 ok"
	later.Metadata = map[string]string{"k": "v"}
	due := job(2, "example.com") // due at t0
	put(t, s, later, due)
	if got := claim(t, s, queue.ClaimRequest{Max: 5, Now: t0.Add(-time.Minute)}); len(got) != 0 {
		t.Fatalf("Claim before anything is due: %v", ids(got))
	}
	set(t, s, later.ID, queue.ActionRetry)
	want := later.Clone()
	want.NextAttempt = time.Time{}
	got := get(t, s, later.ID)
	if err := sameJob(got, want, false); err != nil {
		t.Fatalf("Get after Set(ActionRetry): %v (want NextAttempt the zero time, the rest unchanged)", err)
	}
	if got.Lease.Token != "" {
		t.Fatalf("Get after Set(ActionRetry): lease %+v, want none", got.Lease)
	}
	list, _, err := s.List(context.Background(), queue.ListRequest{State: queue.StateQueued})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != 2 || list[0].ID != later.ID {
		t.Fatalf("List of queued jobs: %v, want %s and %s", ids(list), later.ID, due.ID)
	}
	if err := sameJob(list[0], want, true); err != nil {
		t.Fatalf("List after Set(ActionRetry): %v", err)
	}
	// Due at once, whatever the clock, and ahead of the job due at t0
	// (leases of an hour: no lease ends within the check).
	if got := ids(claim(t, s, queue.ClaimRequest{Max: 1, Now: t0.Add(-time.Minute), Lease: time.Hour})); !slices.Equal(got, []string{later.ID}) {
		t.Fatalf("Claim an hour before its old NextAttempt: %v, want the retried %s", got, later.ID)
	}
	if got := ids(claim(t, s, queue.ClaimRequest{Max: 5, Now: t0, Lease: time.Hour})); !slices.Equal(got, []string{due.ID}) {
		t.Fatalf("Claim at t0: %v, want %s", got, due.ID)
	}

	// With a per-key cap too: the retried job comes first across keys.
	a, b := job(3, "k1.example"), job(4, "k2.example")
	a.NextAttempt = t0.Add(time.Hour)
	b.NextAttempt = t0.Add(-time.Minute)
	put(t, s, a, b)
	set(t, s, a.ID, queue.ActionRetry)
	if got := ids(claim(t, s, queue.ClaimRequest{Max: 1, PerKey: 1, Now: t0})); !slices.Equal(got, []string{a.ID}) {
		t.Fatalf("Claim with PerKey at t0: %v, want the retried %s before %s (due t0-1m)", got, a.ID, b.ID)
	}
}

// testRetryHeld checks that a retried held job stays held, and is due at
// once when released.
func testRetryHeld(t testing.TB, s queue.Store) {
	j := job(1, "example.com")
	j.NextAttempt = t0.Add(time.Hour)
	j.Held = true
	put(t, s, j)
	set(t, s, j.ID, queue.ActionRetry)
	want := j.Clone()
	want.NextAttempt = time.Time{}
	if err := sameJob(get(t, s, j.ID), want, false); err != nil {
		t.Fatalf("Get after Set(ActionRetry) of a held job: %v (want it held, NextAttempt the zero time)", err)
	}
	if got := claim(t, s, queue.ClaimRequest{Max: 5, Now: t0.Add(2 * time.Hour)}); len(got) != 0 {
		t.Fatalf("claimed a held job after Set(ActionRetry): %v", ids(got))
	}
	if st := stats(t, s); st != (queue.Stats{Held: 1}) {
		t.Fatalf("Stats: %+v, want 1 held", st)
	}
	set(t, s, j.ID, queue.ActionRelease)
	if got := ids(claim(t, s, queue.ClaimRequest{Max: 5, Now: t0})); !slices.Equal(got, []string{j.ID}) {
		t.Fatalf("Claim at t0 after Release: %v, want %s, due at once", got, j.ID)
	}
}

// testRetryActive checks that Set(ActionRetry) leaves a lease in flight
// alone: no other Claim takes the job before the lease ends, the lease's
// Finish works and writes the NextAttempt its attempt chose, and a lease
// that ends unfinished makes the job due at its end.
func testRetryActive(t testing.TB, s queue.Store) {
	a, b := job(1, "example.com"), job(2, "example.com")
	put(t, s, a, b)
	leased := claim(t, s, queue.ClaimRequest{Owner: "w1", Max: 2, Now: t0, Lease: time.Minute})
	if !slices.Equal(ids(leased), []string{a.ID, b.ID}) {
		t.Fatalf("Claim at t0: %v, want %s and %s", ids(leased), a.ID, b.ID)
	}
	for _, j := range leased {
		set(t, s, j.ID, queue.ActionRetry)
		got := get(t, s, j.ID)
		if !sameLease(got.Lease, j.Lease) {
			t.Fatalf("Get of %s after Set(ActionRetry): lease %+v, want %+v kept", j.ID, got.Lease, j.Lease)
		}
		if !got.NextAttempt.IsZero() {
			t.Fatalf("Get of %s after Set(ActionRetry): NextAttempt %v, want the zero time", j.ID, got.NextAttempt)
		}
	}
	if st := stats(t, s); st != (queue.Stats{Active: 2}) {
		t.Fatalf("Stats: %+v, want 2 active", st)
	}
	for _, now := range []time.Time{t0, t0.Add(30 * time.Second), t0.Add(time.Minute - time.Millisecond)} {
		for _, perKey := range []int{0, 5} {
			if got := claim(t, s, queue.ClaimRequest{Owner: "w2", Max: 5, PerKey: perKey, Now: now}); len(got) != 0 {
				t.Fatalf("Claim with PerKey %d at t0+%v, within the lease: %v", perKey, now.Sub(t0), ids(got))
			}
		}
	}
	// The attempt on a finishes and chooses its next attempt.
	first := leased[0]
	first.Attempts = 1
	first.LastError = "421 busy"
	first.NextAttempt = t0.Add(10 * time.Minute)
	first.Recipients[0].State = queue.Deferred
	first.Recipients[0].Reply = "421 busy"
	finish(t, s, first)
	if got := get(t, s, a.ID).NextAttempt; !got.Equal(first.NextAttempt) {
		t.Fatalf("NextAttempt after Finish: %v, want %v, the attempt's choice", got, first.NextAttempt)
	}
	// b's lease ends unfinished: due at its end, a not before t0+10m.
	second := claim(t, s, queue.ClaimRequest{Owner: "w2", Max: 5, Now: t0.Add(time.Minute), Lease: time.Hour})
	if !slices.Equal(ids(second), []string{b.ID}) {
		t.Fatalf("Claim at the lease's end: %v, want only %s", ids(second), b.ID)
	}
	if second[0].Lease.Token == leased[1].Lease.Token {
		t.Fatalf("re-claim kept token %q", leased[1].Lease.Token)
	}
	if got := claim(t, s, queue.ClaimRequest{Owner: "w2", Max: 5, Now: t0.Add(10*time.Minute - time.Millisecond)}); len(got) != 0 {
		t.Fatalf("Claim before the NextAttempt Finish wrote: %v", ids(got))
	}
	if got := ids(claim(t, s, queue.ClaimRequest{Owner: "w2", Max: 5, Now: t0.Add(10 * time.Minute)})); !slices.Equal(got, []string{a.ID}) {
		t.Fatalf("Claim at the NextAttempt Finish wrote: %v, want %s", got, a.ID)
	}
}

// testUnknownAction checks that Set with an Action that is none of the
// review actions gives an error matching queue.ErrInvalid and changes
// nothing.
func testUnknownAction(t testing.TB, s queue.Store) {
	j := job(1, "example.com")
	j.NextAttempt = t0.Add(time.Hour)
	put(t, s, j)
	before := get(t, s, j.ID)
	for _, a := range []queue.Action{0, queue.ActionRetry + 1, 255} {
		if err := s.Set(context.Background(), j.ID, a); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("Set(%d): %v, want an error matching ErrInvalid", a, err)
		}
	}
	if err := sameJob(get(t, s, j.ID), before, false); err != nil {
		t.Fatalf("Get after Set with unknown actions: %v", err)
	}
	if st := stats(t, s); st != (queue.Stats{Queued: 1}) {
		t.Fatalf("Stats: %+v, want 1 queued", st)
	}
}
