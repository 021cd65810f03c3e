package queuetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// testReopen checks that a store opened again on the same storage finds the
// queue as the last change left it: every job's fields, message, attempts
// and hold, the jobs removed, and the leases. Leases keep their owner,
// token and end, or, with endsLeases, have all ended, so that their jobs
// are due at once and their old tokens are stale. Tokens issued after a
// reopen are new. The store is reopened twice, the second time after
// changes made by the reopened store.
func testReopen(t testing.TB, s queue.Store, reopen func(queue.Store) queue.Store, endsLeases bool) {
	ctx := context.Background()
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	// Eight jobs, one for each thing a store must keep.
	leased := job(1, "a.example") // every field set; leased until t0+1h
	leased.From = ""
	leased.Message = []byte("Subject: \x00binary\xff\r\n\r\n\r\n.\r\n")
	leased.Recipients[0].State, leased.Recipients[0].Reply = queue.Deferred, "451 4.7.1 try later"
	leased.Attempts, leased.LastError = 3, "451 4.7.1 try later"
	leased.Metadata = map[string]string{"campaign": "x", "user": "ü"}
	expired := job(2, "a.example") // leased until t0+1m
	expired.NextAttempt = at(time.Second)
	retried := job(3, "b.example") // one attempt made; the next at t0+10m
	retried.NextAttempt = at(2 * time.Second)
	held := job(4, "b.example") // held since Put
	held.Held = true
	later := job(5, "c.example") // never claimed; due at t0+5m
	later.NextAttempt = at(5 * time.Minute)
	done := job(6, "c.example") // delivered: removed
	done.NextAttempt = at(3 * time.Second)
	cancelled := job(7, "c.example") // cancelled: removed
	cancelled.NextAttempt = at(time.Hour)
	heldLeased := job(8, "d.example") // leased until t0+1h+4s, then held
	heldLeased.NextAttempt = at(4 * time.Second)
	put(t, s, leased, expired, retried, held, later, done, cancelled, heldLeased)

	// tokens holds every lease token issued so far, with its job: a
	// token must never come back for the same job, while the jobs of one
	// Claim may share one (fencing compares the job and the token).
	type leaseOf struct{ id, token string }
	tokens := map[leaseOf]bool{}
	claimed := func(jobs []*queue.Job) {
		t.Helper()
		for _, j := range jobs {
			k := leaseOf{j.ID, j.Lease.Token}
			if tokens[k] {
				t.Fatalf("Claim gave job %s the token %q again", j.ID, j.Lease.Token)
			}
			tokens[k] = true
		}
	}
	// claimOne claims at now and expects exactly the job id.
	claimOne := func(now time.Time, lease time.Duration, id string) *queue.Job {
		t.Helper()
		got := claim(t, s, queue.ClaimRequest{Owner: "before", Max: 5, Now: now, Lease: lease})
		if !slices.Equal(ids(got), []string{id}) {
			t.Fatalf("Claim at t0+%v: %v, want %s", now.Sub(t0), ids(got), id)
		}
		claimed(got)
		return got[0]
	}
	l1 := claimOne(t0, time.Hour, leased.ID)
	l2 := claimOne(at(time.Second), 59*time.Second, expired.ID)
	r := claimOne(at(2*time.Second), time.Minute, retried.ID)
	r.Recipients[0].State, r.Recipients[0].Reply = queue.Delivered, "250 ok"
	r.Recipients[1].State, r.Recipients[1].Reply = queue.Deferred, "421 busy"
	r.Attempts, r.LastError, r.NextAttempt = 1, "421 busy", at(10*time.Minute)
	finish(t, s, r)
	d := claimOne(at(3*time.Second), time.Minute, done.ID)
	d.Recipients[0].State, d.Recipients[1].State = queue.Delivered, queue.Bounced
	finish(t, s, d)
	set(t, s, cancelled.ID, queue.ActionCancel)
	l8 := claimOne(at(4*time.Second), time.Hour, heldLeased.ID)
	set(t, s, heldLeased.ID, queue.ActionHold)

	// What the store must hold: the jobs with their fields (Lease aside),
	// the ids that are gone, and the leases of the jobs that have one.
	want := map[string]*queue.Job{}
	for _, j := range []*queue.Job{leased, expired, retried, held, later, heldLeased} {
		want[j.ID] = j.Clone()
	}
	w := want[retried.ID]
	w.Recipients = slices.Clone(r.Recipients)
	w.Attempts, w.LastError, w.NextAttempt = r.Attempts, r.LastError, r.NextAttempt
	want[heldLeased.ID].Held = true
	gone := []string{done.ID, cancelled.ID}
	leases := map[string]queue.Lease{leased.ID: l1.Lease, expired.ID: l2.Lease, heldLeased.ID: l8.Lease}

	check := func(when string) {
		t.Helper()
		var st queue.Stats
		var all []string
		for id, wj := range want {
			all = append(all, id)
			got := get(t, s, id)
			if err := sameJob(got, wj, false); err != nil {
				t.Errorf("%s: job %s: %v", when, id, err)
			}
			wl := leases[id]
			if !sameLease(got.Lease, wl) {
				t.Errorf("%s: job %s has lease %+v, want %+v", when, id, got.Lease, wl)
			}
			switch {
			case wj.Held:
				st.Held++
			case wl.Token != "":
				st.Active++
			default:
				st.Queued++
			}
		}
		for _, id := range gone {
			if _, err := s.Get(ctx, id); !errors.Is(err, queue.ErrNotFound) {
				t.Errorf("%s: Get of the removed job %s: %v, want ErrNotFound", when, id, err)
			}
		}
		slices.Sort(all)
		list, _, err := s.List(ctx, queue.ListRequest{Limit: 100})
		if err != nil {
			t.Fatalf("%s: List: %v", when, err)
		}
		if !slices.Equal(ids(list), all) {
			t.Errorf("%s: List: %v, want %v", when, ids(list), all)
		}
		if got := stats(t, s); got != st {
			t.Errorf("%s: Stats: %+v, want %+v", when, got, st)
		}
	}
	check("before reopening")

	s = reopen(s)
	if endsLeases {
		clear(leases)
	}
	check("after reopening")
	if err := s.Put(ctx, job(1, "a.example")); !errors.Is(err, queue.ErrExists) {
		t.Errorf("after reopening: Put of a stored id: %v, want ErrExists", err)
	}

	// At t0+30m, the jobs due are those whose lease has ended or is gone.
	now := at(30 * time.Minute)
	got := claim(t, s, queue.ClaimRequest{Owner: "after", Max: 10, Now: now, Lease: time.Hour})
	claimed(got)
	if endsLeases {
		// The jobs whose leases ended at the reopen first, in either order.
		first := ids(got[:min(2, len(got))])
		slices.Sort(first)
		if len(got) != 4 || !slices.Equal(first, []string{leased.ID, expired.ID}) ||
			!slices.Equal(ids(got[2:]), []string{later.ID, retried.ID}) {
			t.Fatalf("after reopening, Claim at t0+30m: %v, want %s and %s (their leases ended at the reopen), then %s, %s",
				ids(got), leased.ID, expired.ID, later.ID, retried.ID)
		}
	} else if !slices.Equal(ids(got), []string{expired.ID, later.ID, retried.ID}) {
		t.Fatalf("after reopening, Claim at t0+30m: %v, want %s (lease ended t0+1m), %s (t0+5m), %s (t0+10m); "+
			"%s is leased until t0+1h", ids(got), expired.ID, later.ID, retried.ID, leased.ID)
	}
	for _, j := range got {
		leases[j.ID] = j.Lease
	}

	// Old tokens: the one of a lease kept still finishes its job; the
	// others are stale.
	if err := s.Finish(ctx, l2); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("after reopening, Finish of %s with its lease from before, claimed again since: %v, want ErrLeaseLost",
			expired.ID, err)
	}
	l1.Recipients[0].State, l1.Recipients[0].Reply = queue.Deferred, "452 4.2.2 mailbox full"
	l1.Attempts, l1.LastError, l1.NextAttempt = 4, "452 4.2.2 mailbox full", at(2*time.Hour)
	if endsLeases {
		if err := s.Finish(ctx, l1); !errors.Is(err, queue.ErrLeaseLost) {
			t.Errorf("after reopening, Finish of %s with its ended lease: %v, want ErrLeaseLost", leased.ID, err)
		}
	} else {
		if err := s.Finish(ctx, l1); err != nil {
			t.Fatalf("after reopening, Finish of %s with its lease from before: %v", leased.ID, err)
		}
		w := want[leased.ID]
		w.Recipients = slices.Clone(l1.Recipients)
		w.Attempts, w.LastError, w.NextAttempt = l1.Attempts, l1.LastError, l1.NextAttempt
		delete(leases, leased.ID)
	}

	// The job held while leased: released, it is due when its lease ends,
	// or at once if the reopen ended it.
	set(t, s, heldLeased.ID, queue.ActionRelease)
	want[heldLeased.ID].Held = false
	dueAt := now
	if !endsLeases {
		dueAt = l8.Lease.Until
		if got := claim(t, s, queue.ClaimRequest{Owner: "after", Max: 10, Now: dueAt.Add(-time.Second), Lease: time.Hour}); len(got) != 0 {
			t.Fatalf("after reopening, Claim a second before the kept lease of %s ends: %v, want none", heldLeased.ID, ids(got))
		}
	}
	got = claim(t, s, queue.ClaimRequest{Owner: "after", Max: 10, Now: dueAt, Lease: time.Hour})
	if !slices.Equal(ids(got), []string{heldLeased.ID}) {
		t.Fatalf("after reopening, Claim at t0+%v of the released job: %v, want %s", dueAt.Sub(t0), ids(got), heldLeased.ID)
	}
	claimed(got)
	leases[heldLeased.ID] = got[0].Lease

	s = reopen(s)
	if endsLeases {
		clear(leases)
	}
	check("after reopening twice")

	// A day later every job not held is due; each gets a new token and can
	// be finished.
	got = claim(t, s, queue.ClaimRequest{Owner: "last", Max: 10, Now: at(24 * time.Hour), Lease: time.Minute})
	claimed(got)
	if want := []string{leased.ID, expired.ID, retried.ID, later.ID, heldLeased.ID}; !sameSet(ids(got), want) {
		t.Fatalf("after reopening twice, Claim a day later: %v, want %v", ids(got), want)
	}
	for _, j := range got {
		for i := range j.Recipients {
			j.Recipients[i].State = queue.Delivered
		}
		finish(t, s, j)
	}
	if st := stats(t, s); st != (queue.Stats{Held: 1}) {
		t.Fatalf("after finishing every job: Stats %+v, want only the held job", st)
	}
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
