package queuetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

func testRoundTrip(t *testing.T, s queue.Store) {
	j := job(1, "example.com")
	j.From = ""
	j.Message = []byte("Subject: \x00binary\xff\r\n\r\n\r\n.\r\n")
	j.Recipients[0].State = queue.Deferred
	j.Recipients[0].Reply = "451 4.7.1 try later"
	j.Recipients = append(j.Recipients, queue.Recipient{Addr: "b@example.com", State: queue.Bounced, Reply: "550 no"})
	j.Attempts = 3
	j.LastError = "451 4.7.1 try later"
	j.Metadata = map[string]string{"campaign": "x", "user": "ü"}
	j.Lease = queue.Lease{Owner: "ignored", Token: "ignored", Until: t0}
	put(t, s, j)
	j.Message[0] = 'X' // the store must have kept its own copy
	j.Message[0] = 'S'
	want := j.Clone()
	want.Lease = queue.Lease{}
	got := get(t, s, j.ID)
	if err := sameJob(got, want, false); err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Lease.Token != "" {
		t.Errorf("Get: lease %+v after Put, want none", got.Lease)
	}
	got.Metadata["campaign"] = "changed" // nor share maps with the caller
	jobs := claim(t, s, queue.ClaimRequest{Max: 10, Now: t0})
	if len(jobs) != 1 {
		t.Fatalf("Claim: %d jobs, want 1", len(jobs))
	}
	if err := sameJob(jobs[0], want, false); err != nil {
		t.Fatalf("Claim: %v", err)
	}
	list, _, err := s.List(context.Background(), queue.ListRequest{})
	if err != nil || len(list) != 1 {
		t.Fatalf("List: %d jobs, %v; want 1", len(list), err)
	}
	if err := sameJob(list[0], want, true); err != nil {
		t.Fatalf("List: %v", err)
	}
}

func testPutErrors(t *testing.T, s queue.Store) {
	j := job(1, "example.com")
	put(t, s, j)
	if err := s.Put(context.Background(), j); !errors.Is(err, queue.ErrExists) {
		t.Errorf("Put of an existing id: %v, want ErrExists", err)
	}
	j2 := job(2, "example.com")
	j2.ID = ""
	if err := s.Put(context.Background(), j2); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("Put without id: %v, want ErrInvalid", err)
	}
}

func testNotFound(t *testing.T, s queue.Store) {
	ctx := context.Background()
	id := "job-missing"
	if _, err := s.Get(ctx, id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Get: %v, want ErrNotFound", err)
	}
	for _, a := range []queue.Action{queue.ActionHold, queue.ActionRelease, queue.ActionCancel, queue.ActionRetry} {
		if err := s.Set(ctx, id, a); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("Set(%d): %v, want ErrNotFound", a, err)
		}
	}
	j := job(1, "example.com")
	j.Lease.Token = "x"
	if err := s.Finish(ctx, j); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Finish: %v, want ErrNotFound", err)
	}
}

func testClaimOrder(t *testing.T, s queue.Store) {
	// Due times in an order unlike the ids, over two keys.
	offsets := []int{4, 1, 3, 0, 2}
	var want []string
	byDue := make([]string, len(offsets))
	for i, off := range offsets {
		j := job(i, []string{"a.example", "b.example"}[i%2])
		j.NextAttempt = t0.Add(time.Duration(off) * time.Second)
		put(t, s, j)
		byDue[off] = j.ID
	}
	want = byDue
	got := ids(claim(t, s, queue.ClaimRequest{Max: 3, Now: t0.Add(time.Minute)}))
	if !slices.Equal(got, want[:3]) {
		t.Fatalf("first Claim: %v, want the 3 earliest due in order %v", got, want[:3])
	}
	got = ids(claim(t, s, queue.ClaimRequest{Max: 3, Now: t0.Add(time.Minute)}))
	if !slices.Equal(got, want[3:]) {
		t.Fatalf("second Claim: %v, want %v", got, want[3:])
	}
	if got := claim(t, s, queue.ClaimRequest{Max: 0, Now: t0.Add(time.Hour)}); len(got) != 0 {
		t.Fatalf("Claim with Max 0: %d jobs", len(got))
	}
}

func testNotDueYet(t *testing.T, s queue.Store) {
	j := job(1, "example.com")
	j.NextAttempt = t0.Add(time.Hour)
	put(t, s, j)
	if got := claim(t, s, queue.ClaimRequest{Max: 5, Now: t0.Add(time.Hour - time.Millisecond)}); len(got) != 0 {
		t.Fatalf("Claim before due: %v", ids(got))
	}
	if got := claim(t, s, queue.ClaimRequest{Max: 5, Now: t0.Add(time.Hour)}); len(got) != 1 {
		t.Fatalf("Claim at due time: %d jobs, want 1", len(got))
	}
}

func testLeaseExpiry(t *testing.T, s queue.Store) {
	put(t, s, job(1, "example.com"))
	first := claim(t, s, queue.ClaimRequest{Owner: "w1", Max: 5, Now: t0, Lease: time.Minute})
	if len(first) != 1 {
		t.Fatalf("Claim: %d jobs, want 1", len(first))
	}
	if got := claim(t, s, queue.ClaimRequest{Owner: "w2", Max: 5, Now: t0.Add(59 * time.Second)}); len(got) != 0 {
		t.Fatalf("Claim within the lease: %v", ids(got))
	}
	if st := stats(t, s); st.Active != 1 {
		t.Errorf("Stats during lease: %+v, want 1 active", st)
	}
	second := claim(t, s, queue.ClaimRequest{Owner: "w2", Max: 5, Now: t0.Add(time.Minute), Lease: time.Minute})
	if len(second) != 1 || second[0].ID != first[0].ID {
		t.Fatalf("Claim after the lease: %v, want %s again", ids(second), first[0].ID)
	}
	if second[0].Lease.Token == first[0].Lease.Token {
		t.Fatalf("re-claim kept token %q", first[0].Lease.Token)
	}
}

func testFencing(t *testing.T, s queue.Store) {
	j := job(1, "example.com")
	put(t, s, j)
	j.Lease.Token = "never-issued"
	if err := s.Finish(context.Background(), j); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("Finish of an unclaimed job: %v, want ErrLeaseLost", err)
	}
	first := claim(t, s, queue.ClaimRequest{Owner: "w1", Max: 1, Now: t0})[0]
	second := claim(t, s, queue.ClaimRequest{Owner: "w2", Max: 1, Now: t0.Add(2 * time.Minute)})[0]
	first.Recipients[0].State = queue.Delivered
	first.Recipients[1].State = queue.Delivered
	if err := s.Finish(context.Background(), first); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("Finish with a stale lease: %v, want ErrLeaseLost", err)
	}
	// The stale outcome was not recorded.
	if got := get(t, s, j.ID); got.Recipients[0].State != queue.Pending {
		t.Fatalf("stale Finish changed the job: %+v", got.Recipients)
	}
	second.Attempts = 1
	second.NextAttempt = t0.Add(time.Hour)
	finish(t, s, second)
	if err := s.Finish(context.Background(), second); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("second Finish with the same lease: %v, want ErrLeaseLost", err)
	}
}

func testFinishDone(t *testing.T, s queue.Store) {
	put(t, s, job(1, "example.com"))
	j := claim(t, s, queue.ClaimRequest{Max: 1, Now: t0})[0]
	j.Recipients[0].State = queue.Delivered
	j.Recipients[1].State = queue.Bounced
	finish(t, s, j)
	if _, err := s.Get(context.Background(), j.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Get after the last recipient: %v, want ErrNotFound", err)
	}
	if st := stats(t, s); st != (queue.Stats{}) {
		t.Fatalf("Stats: %+v, want zero", st)
	}
}

func testFinishReschedule(t *testing.T, s queue.Store) {
	orig := job(1, "example.com")
	orig.Metadata = map[string]string{"k": "v"}
	put(t, s, orig)
	j := claim(t, s, queue.ClaimRequest{Max: 1, Now: t0})[0]
	j.Recipients[0] = queue.Recipient{Addr: j.Recipients[0].Addr, State: queue.Delivered, Reply: "250 ok"}
	j.Recipients[1] = queue.Recipient{Addr: j.Recipients[1].Addr, State: queue.Deferred, Reply: "421 busy"}
	j.Attempts = 1
	j.LastError = "421 busy"
	j.NextAttempt = t0.Add(10 * time.Minute)
	// Fixed fields: changes are ignored.
	j.From = "other@example.net"
	j.Message = []byte("changed")
	j.Metadata = nil
	finish(t, s, j)
	want := orig.Clone()
	want.Recipients = j.Recipients
	want.Attempts, want.LastError, want.NextAttempt = 1, "421 busy", j.NextAttempt
	if err := sameJob(get(t, s, j.ID), want, false); err != nil {
		t.Fatalf("Get after Finish: %v", err)
	}
	if got := claim(t, s, queue.ClaimRequest{Max: 1, Now: t0.Add(9 * time.Minute)}); len(got) != 0 {
		t.Fatalf("claimed before NextAttempt")
	}
	got := claim(t, s, queue.ClaimRequest{Max: 1, Now: t0.Add(10 * time.Minute)})
	if len(got) != 1 {
		t.Fatalf("not claimed at NextAttempt")
	}
	if err := sameJob(got[0], want, false); err != nil {
		t.Fatalf("Claim after Finish: %v", err)
	}
}

// testExpiredLeaseOrder checks where a job whose lease ended stands in the
// claim order: at its Lease.Until, not at its older NextAttempt. Four jobs
// over two keys end up due at these times:
//
//	d  lease ended at t0+30s (NextAttempt t0+1s)
//	b  NextAttempt t0+1m
//	a  lease ended at t0+10m (NextAttempt t0; held and released meanwhile)
//	c  NextAttempt t0+20m
//
// so Claim must take d, b, a, c. A store that orders by NextAttempt alone
// takes a, d, b, c. The check runs with and without a per-key cap, and with
// Claims of one job and of all four.
func testExpiredLeaseOrder(t testing.TB, s queue.Store) {
	round := 0
	for _, perKey := range []int{0, 2} {
		for _, maxJobs := range []int{1, 10} {
			round++
			base := 10 * round // new ids each round
			a, b, c, d := job(base+1, "k1.example"), job(base+2, "k2.example"), job(base+3, "k1.example"), job(base+4, "k2.example")
			b.NextAttempt = t0.Add(time.Minute)
			c.NextAttempt = t0.Add(20 * time.Minute)
			d.NextAttempt = t0.Add(time.Second)
			put(t, s, a, b, c, d)
			if got := ids(claim(t, s, queue.ClaimRequest{Max: 1, PerKey: perKey, Now: t0, Lease: 10 * time.Minute})); !slices.Equal(got, []string{a.ID}) {
				t.Fatalf("Claim at t0: %v, want %s", got, a.ID)
			}
			// Holding and releasing a leased job leaves it due when its
			// lease ends.
			set(t, s, a.ID, queue.ActionHold)
			set(t, s, a.ID, queue.ActionRelease)
			if got := ids(claim(t, s, queue.ClaimRequest{Max: 1, PerKey: perKey, Now: t0.Add(time.Second), Lease: 29 * time.Second})); !slices.Equal(got, []string{d.ID}) {
				t.Fatalf("Claim at t0+1s: %v, want %s", got, d.ID)
			}
			want := []string{d.ID, b.ID, a.ID, c.ID}
			now := t0.Add(time.Hour) // all four are due; new leases last past the end
			var got []*queue.Job
			for len(got) < len(want) {
				jobs := claim(t, s, queue.ClaimRequest{Max: maxJobs, PerKey: perKey, Now: now, Lease: time.Hour})
				if len(jobs) == 0 {
					break
				}
				got = append(got, jobs...)
			}
			if !slices.Equal(ids(got), want) {
				t.Fatalf("Claims of at most %d with PerKey %d at t0+1h: %v, want %v: d (lease ended t0+30s), "+
					"b (NextAttempt t0+1m), a (lease ended t0+10m), c (NextAttempt t0+20m)",
					maxJobs, perKey, ids(got), want)
			}
			for _, j := range got {
				for i := range j.Recipients {
					j.Recipients[i].State = queue.Delivered
				}
				finish(t, s, j)
			}
		}
	}
}
