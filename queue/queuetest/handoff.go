package queuetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// The checks of the optional capabilities queue.PutLeaser and
// queue.FinishClaimer; each is skipped for a store without it.

func putLeaser(t testing.TB, s queue.Store) queue.PutLeaser {
	t.Helper()
	pl, ok := s.(queue.PutLeaser)
	if !ok {
		t.Skip("the store is not a queue.PutLeaser")
	}
	return pl
}

func finishClaimer(t testing.TB, s queue.Store) queue.FinishClaimer {
	t.Helper()
	fc, ok := s.(queue.FinishClaimer)
	if !ok {
		t.Skip("the store is not a queue.FinishClaimer")
	}
	return fc
}

// putLeased calls PutLeased and checks the lease of a job it leased.
func putLeased(t testing.TB, pl queue.PutLeaser, j *queue.Job, r queue.ClaimRequest) *queue.Job {
	t.Helper()
	got, err := pl.PutLeased(context.Background(), j, r)
	if err != nil {
		t.Fatalf("PutLeased(%s): %v", j.ID, err)
	}
	if got != nil && (got.Lease.Token == "" || got.Lease.Owner != r.Owner || !got.Lease.Until.Equal(r.Now.Add(r.Lease))) {
		t.Fatalf("PutLeased(%s): lease %+v, want owner %q until %v", j.ID, got.Lease, r.Owner, r.Now.Add(r.Lease))
	}
	return got
}

// testPutLeased: a due job is stored and leased as Claim would lease it;
// a held or later one is stored without a lease; the per-key limit counts
// every lease; errors are Put's.
func testPutLeased(t *testing.T, s queue.Store) {
	pl := putLeaser(t, s)
	ctx := context.Background()
	r := queue.ClaimRequest{Owner: "w1", PerKey: 2, Now: t0, Lease: time.Minute}

	j := job(1, "a.example")
	j.Metadata = map[string]string{"k": "v"}
	got := putLeased(t, pl, j, r)
	if got == nil {
		t.Fatal("PutLeased of a due job: not leased")
	}
	want := j.Clone()
	want.Lease = got.Lease
	if err := sameJob(got, want, false); err != nil {
		t.Fatalf("PutLeased: %v", err)
	}
	got.Metadata["k"] = "changed" // the store keeps its own copy
	stored := get(t, s, j.ID)
	if stored.Metadata["k"] != "v" || !sameLease(stored.Lease, got.Lease) {
		t.Fatalf("Get after PutLeased: metadata %v, lease %+v; want v and %+v", stored.Metadata, stored.Lease, got.Lease)
	}
	if st := stats(t, s); st.Active != 1 || st.Queued != 0 {
		t.Fatalf("Stats after PutLeased: %+v, want 1 active", st)
	}
	// Leased once: Claim does not give it again while the lease lasts.
	if more := claim(t, s, queue.ClaimRequest{Owner: "w2", Max: 10, Now: t0}); len(more) != 0 {
		t.Fatalf("Claim of a job leased at Put: %v", ids(more))
	}

	// Held, and scheduled later: stored, not leased, as Put stores them.
	held := job(2, "a.example")
	held.Held = true
	later := job(3, "a.example")
	later.NextAttempt = t0.Add(time.Hour)
	for _, x := range []*queue.Job{held, later} {
		if got := putLeased(t, pl, x, r); got != nil {
			t.Fatalf("PutLeased(%s, held %v, due %v): leased, want stored without a lease", x.ID, x.Held, x.NextAttempt)
		}
		if g := get(t, s, x.ID); g.Lease.Token != "" || g.Held != x.Held {
			t.Fatalf("Get(%s) after PutLeased: lease %+v, held %v", x.ID, g.Lease, g.Held)
		}
	}
	if st := stats(t, s); st.Active != 1 || st.Held != 1 || st.Queued != 1 {
		t.Fatalf("Stats: %+v, want 1 active, 1 held, 1 queued", st)
	}

	// The per-key limit counts leases of Claim and of PutLeased alike,
	// those of other owners included.
	put(t, s, job(4, "a.example"))
	if c := claim(t, s, queue.ClaimRequest{Owner: "w2", Max: 10, PerKey: 2, Now: t0}); !slices.Equal(ids(c), []string{"job-00004"}) {
		t.Fatalf("Claim under the limit: %v, want job-00004", ids(c))
	}
	capped := job(5, "a.example")
	if got := putLeased(t, pl, capped, r); got != nil {
		t.Fatal("PutLeased beyond the per-key limit: leased")
	}
	if other := putLeased(t, pl, job(6, "b.example"), r); other == nil {
		t.Fatal("PutLeased of another key: not leased")
	}
	// The job stored at the limit is due: a Claim takes it once a lease
	// of its key has ended.
	got.Recipients[0].State, got.Recipients[1].State = queue.Delivered, queue.Delivered
	finish(t, s, got)
	if c := claim(t, s, queue.ClaimRequest{Owner: "w2", Max: 10, PerKey: 2, Now: t0}); !slices.Equal(ids(c), []string{capped.ID}) {
		t.Fatalf("Claim after a Finish: %v, want %s", ids(c), capped.ID)
	}

	// Errors are Put's, and store nothing.
	if _, err := pl.PutLeased(ctx, job(6, "b.example"), r); !errors.Is(err, queue.ErrExists) {
		t.Errorf("PutLeased of an existing id: %v, want ErrExists", err)
	}
	noID := job(7, "b.example")
	noID.ID = ""
	if _, err := pl.PutLeased(ctx, noID, r); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("PutLeased without id: %v, want ErrInvalid", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := pl.PutLeased(cctx, job(8, "b.example"), r); !errors.Is(err, context.Canceled) {
		t.Errorf("PutLeased with an ended context: %v, want context.Canceled", err)
	}
	if _, err := s.Get(ctx, job(8, "b.example").ID); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Get after PutLeased with an ended context: %v, want ErrNotFound", err)
	}
}

// testPutLeasedExpiry: a lease given at Put ends like any other: the job
// is claimed again at its end and the old token is stale.
func testPutLeasedExpiry(t *testing.T, s queue.Store) {
	pl := putLeaser(t, s)
	got := putLeased(t, pl, job(1, "a.example"), queue.ClaimRequest{Owner: "w1", Now: t0, Lease: time.Minute})
	if got == nil {
		t.Fatal("PutLeased of a due job: not leased")
	}
	if c := claim(t, s, queue.ClaimRequest{Owner: "w2", Max: 1, Now: t0.Add(59 * time.Second)}); len(c) != 0 {
		t.Fatalf("Claim before the lease ended: %v", ids(c))
	}
	again := claim(t, s, queue.ClaimRequest{Owner: "w2", Max: 1, Now: t0.Add(time.Minute)})
	if len(again) != 1 || again[0].Lease.Token == got.Lease.Token {
		t.Fatalf("Claim at the lease's end: %v, want the job with a new token", ids(again))
	}
	if err := s.Finish(context.Background(), got); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("Finish with the token of the lease given at Put, after a Claim: %v, want ErrLeaseLost", err)
	}
	finish(t, s, again[0])
}

// testFinishClaim: the Finish and the Claim of one call; the claim counts
// the finished lease as ended; a failed Finish claims nothing.
func testFinishClaim(t *testing.T, s queue.Store) {
	fc := finishClaimer(t, s)
	ctx := context.Background()
	for i := range 4 {
		put(t, s, job(i, "a.example"))
	}
	r := queue.ClaimRequest{Owner: "w1", Max: 1, PerKey: 2, Now: t0, Lease: time.Minute}
	first := claim(t, s, queue.ClaimRequest{Owner: "w1", Max: 10, PerKey: 2, Now: t0})
	if len(first) != 2 {
		t.Fatalf("Claim with PerKey 2: %v", ids(first))
	}
	// At the limit: finishing one makes room for exactly one.
	a := first[0]
	a.Recipients[0].State, a.Recipients[1].State = queue.Delivered, queue.Delivered
	next, err := fc.FinishClaim(ctx, a, r)
	if err != nil {
		t.Fatalf("FinishClaim: %v", err)
	}
	if !slices.Equal(ids(next), []string{"job-00002"}) {
		t.Fatalf("FinishClaim at the per-key limit: claimed %v, want job-00002", ids(next))
	}
	if n := next[0]; n.Lease.Owner != "w1" || !n.Lease.Until.Equal(t0.Add(time.Minute)) || string(n.Message) != string(job(2, "").Message) {
		t.Fatalf("FinishClaim: job %s with lease %+v, message %q", n.ID, n.Lease, n.Message)
	}
	if _, err := s.Get(ctx, a.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Get of the job FinishClaim finished delivered: %v, want ErrNotFound", err)
	}
	// A retry is recorded as Finish records it.
	b := first[1]
	b.Recipients[0].State = queue.Delivered
	b.Attempts, b.NextAttempt, b.LastError = 1, t0.Add(time.Hour), "451 later"
	next, err = fc.FinishClaim(ctx, b, r)
	if err != nil || !slices.Equal(ids(next), []string{"job-00003"}) {
		t.Fatalf("FinishClaim: %v, %v; want job-00003", ids(next), err)
	}
	if g := get(t, s, b.ID); g.Attempts != 1 || !g.NextAttempt.Equal(b.NextAttempt) || g.Lease.Token != "" || g.Recipients[0].State != queue.Delivered {
		t.Fatalf("Get after FinishClaim of a retry: %+v", g)
	}
	// A stale token: nothing finished, nothing claimed.
	put(t, s, job(9, "b.example"))
	stale := next[0].Clone()
	stale.Lease.Token = "stale"
	stale.Recipients[0].State, stale.Recipients[1].State = queue.Delivered, queue.Delivered
	if got, err := fc.FinishClaim(ctx, stale, r); !errors.Is(err, queue.ErrLeaseLost) || len(got) != 0 {
		t.Fatalf("FinishClaim with a stale token: %v, %v; want ErrLeaseLost and no job", ids(got), err)
	}
	if c := claim(t, s, queue.ClaimRequest{Owner: "w2", Max: 10, Now: t0}); !slices.Equal(ids(c), []string{"job-00009"}) {
		t.Fatalf("Claim after a failed FinishClaim: %v, want job-00009 still due", ids(c))
	}
	// Max 0 finishes and claims nothing.
	n := next[0]
	n.Recipients[0].State, n.Recipients[1].State = queue.Delivered, queue.Delivered
	if got, err := fc.FinishClaim(ctx, n, queue.ClaimRequest{Owner: "w1", Now: t0, Lease: time.Minute}); err != nil || len(got) != 0 {
		t.Fatalf("FinishClaim with Max 0: %v, %v", ids(got), err)
	}
	if _, err := s.Get(ctx, n.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Get after FinishClaim with Max 0: %v, want ErrNotFound", err)
	}
}

// testPutLeasedReopen: a lease given at Put survives reopening as Claim's
// do, or ends then for a store that ends leases when it opens.
func testPutLeasedReopen(t *testing.T, s queue.Store, reopen func(queue.Store) queue.Store, endsLeases bool) {
	pl := putLeaser(t, s)
	got := putLeased(t, pl, job(1, "a.example"), queue.ClaimRequest{Owner: "w1", Now: t0, Lease: time.Hour})
	if got == nil {
		t.Fatal("PutLeased of a due job: not leased")
	}
	s = reopen(s)
	g := get(t, s, got.ID)
	if !endsLeases {
		if !sameLease(g.Lease, got.Lease) {
			t.Fatalf("lease after reopening: %+v, want %+v", g.Lease, got.Lease)
		}
		finish(t, s, got)
		return
	}
	if g.Lease.Token != "" {
		t.Fatalf("lease after reopening: %+v, want none", g.Lease)
	}
	c := claim(t, s, queue.ClaimRequest{Owner: "w2", Max: 1, Now: t0})
	if !slices.Equal(ids(c), []string{got.ID}) {
		t.Fatalf("Claim after reopening: %v, want %s due at once", ids(c), got.ID)
	}
	if err := s.Finish(context.Background(), got); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("Finish with the token given at Put, after reopening: %v, want ErrLeaseLost", err)
	}
}
