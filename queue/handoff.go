package queue

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// PutLeaser is an optional Store capability: Put and Claim of one new job
// in one durable write. While Run has an idle worker, Enqueue stores each
// new job through PutLeased and hands it straight to that worker, saving
// the separate Claim (for a durable store, a commit) before its first
// attempt.
//
// queuetest.TestStore checks it for the stores that implement it.
type PutLeaser interface {
	// PutLeased stores job as Put does and, in the same durable write,
	// leases it as Claim(r) would have leased it had it been the only
	// candidate: when the job is due at r.Now (not held, NextAttempt not
	// after r.Now) and, if r.PerKey > 0, its RoutingKey has fewer than
	// r.PerKey unexpired leases, counting those of other owners and
	// processes. The lease goes to r.Owner until r.Now+r.Lease with a new
	// Token, and is then in every way a lease Claim gave: fenced by Finish,
	// re-claimable when it ends, ended when a store that may do so is
	// reopened (see Store).
	//
	// It returns a copy of the job with its Lease set, message included,
	// when it leased it; nil and no error when it stored it without a
	// lease (held, scheduled later, or its key at its limit), as Put would
	// have. r.Max is ignored. Errors are Put's: nothing is stored.
	PutLeased(ctx context.Context, job *Job, r ClaimRequest) (*Job, error)
}

// FinishClaimer is an optional Store capability: Finish of one attempt
// and Claim of the next jobs in one durable write. A worker of Run whose
// attempt ends takes its next job this way, so that under load a job
// costs a durable store one write for its Put and one for the Finish that
// also leases the next, with no separate Claim; the per-key limit of the
// claim counts the finished lease as ended.
//
// queuetest.TestStore checks it for the stores that implement it.
type FinishClaimer interface {
	// FinishClaim does Finish(job) and then Claim(r), as one change:
	// either both happen or, when Finish fails (ErrLeaseLost,
	// ErrNotFound), neither, and the error is Finish's.
	FinishClaim(ctx context.Context, job *Job, r ClaimRequest) ([]*Job, error)
}

// run is the state of a Run that Enqueue shares to hand it jobs.
type run struct {
	ctx   context.Context // the attempts' context
	wg    sync.WaitGroup  // attempts started, by Run or by Enqueue
	freed chan struct{}   // signalled when an attempt ends
	stop  atomic.Bool     // Run stopped claiming: workers take no next job
}

// slots counts this queue's idle workers while Run runs.
type slots struct{ n atomic.Int64 }

// take takes up to max idle workers and returns how many it took.
func (s *slots) take(max int) int {
	for {
		n := s.n.Load()
		k := min(n, int64(max))
		if k <= 0 {
			return 0
		}
		if s.n.CompareAndSwap(n, n-k) {
			return int(k)
		}
	}
}

// give returns k workers taken and not used.
func (s *slots) give(k int) { s.n.Add(int64(k)) }

// reserve takes one idle worker of a running Run for a job Enqueue may
// hand it, and counts the attempt in the Run's drain; nil when Run is not
// running or every worker is busy. The caller either starts the attempt
// (start) or gives the worker back (unreserve).
func (q *Queue) reserve() *run {
	q.handMu.Lock()
	defer q.handMu.Unlock()
	if q.run == nil || q.slots.take(1) == 0 {
		return nil
	}
	q.run.wg.Add(1)
	return q.run
}

// unreserve gives back the worker reserve took.
func (q *Queue) unreserve(r *run) {
	q.release(r)
	r.wg.Done()
}

// start makes the attempt of a job leased to a worker taken from q.slots,
// counted in r.wg, then of the jobs the worker claims as it finishes each
// (FinishClaimer), and frees the worker when there is none.
func (q *Queue) start(r *run, job *Job) {
	go func() {
		defer r.wg.Done()
		for job != nil {
			job = q.attempt(r.ctx, r, job)
		}
		q.release(r)
	}()
}

// release frees a worker and wakes Run to use it.
func (q *Queue) release(r *run) {
	q.slots.give(1)
	select {
	case r.freed <- struct{}{}:
	default:
	}
}

// putLeased stores j through PutLeased when the store can lease at Put, j
// is due and Run has an idle worker, and then returns the worker taken and
// the leased job, which the caller hands to it with start once the job's
// Enqueued hook has run (nil, nil if the store kept j without a lease).
// It returns ok false, having stored nothing, when it did not try; the
// caller then Puts the job itself.
func (q *Queue) putLeased(ctx context.Context, j *Job, now time.Time) (r *run, leased *Job, ok bool, err error) {
	pl, can := q.Store.(PutLeaser)
	if !can || j.Held || j.NextAttempt.After(now) {
		return nil, nil, false, nil
	}
	if r = q.reserve(); r == nil {
		return nil, nil, false, nil
	}
	leased, err = pl.PutLeased(ctx, j, ClaimRequest{
		Owner: q.owner, Max: 1, PerKey: q.perKey(), Now: now, Lease: q.lease(),
	})
	if err != nil || leased == nil {
		q.unreserve(r)
		return nil, nil, true, err
	}
	return r, leased, true, nil
}
