package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Run claims due jobs and delivers them until ctx ends; then it stops
// claiming, lets attempts in flight finish for up to Grace, cancels the
// rest and gives their jobs back to the store (an interrupted attempt is not
// counted). It returns ctx's error after that drain; ErrClosed (after the
// same drain) if the store was closed under it; or an error at once if the
// queue has no Store or Deliverer, or ErrRunning if another Run of q has
// not returned yet (two would double the Workers cap). Other store errors are reported through
// Hooks.Error and Logger and retried.
//
// In flight at any moment: at most Workers jobs, and at most PerKey per
// routing key. Memory holds only those jobs.
func (q *Queue) Run(ctx context.Context) error {
	q.init()
	if q.Store == nil || q.Deliverer == nil {
		return errors.New("queue: Run needs a Store and a Deliverer")
	}
	if !q.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer q.running.Store(false)
	var external <-chan struct{}
	if w, ok := q.Store.(Waker); ok {
		external = w.Wake()
	}
	// Attempts run under their own context so that the drain can give
	// them Grace after ctx ends.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	workers := q.workers()
	r := &run{ctx: workCtx, freed: make(chan struct{}, 1)}
	q.slots.n.Store(int64(workers))
	q.handMu.Lock()
	q.run = r // from here on Enqueue may hand jobs to idle workers
	q.handMu.Unlock()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	failures := 0
	var fatal error

	for ctx.Err() == nil && fatal == nil {
		free := q.slots.take(workers)
		claimed := 0
		if free > 0 {
			now := q.now()
			jobs, err := q.Store.Claim(ctx, ClaimRequest{
				Owner: q.owner, Max: free, PerKey: q.perKey(), Now: now, Lease: q.lease(),
			})
			if err != nil {
				if ctx.Err() != nil {
					q.slots.give(free)
					break
				}
				failures++
				q.storeError(nil, "claim", err)
				if errors.Is(err, ErrClosed) {
					fatal = fmt.Errorf("queue: run: %w", err)
					q.slots.give(free)
					break
				}
			} else {
				failures = 0
			}
			claimed = len(jobs)
			for _, j := range jobs {
				r.wg.Add(1)
				q.start(r, j)
			}
			q.slots.give(free - claimed)
		}
		if claimed > 0 && claimed == free {
			continue // possibly more due: claim again for the workers freed meanwhile
		}
		// Wait for a reason to look again.
		wait := q.poll()
		if failures > 0 {
			wait = min(wait, time.Duration(failures)*time.Second)
		} else if t, ok := q.nextDue(q.now()); ok {
			wait = min(wait, t.Sub(q.now()))
		}
		timer.Reset(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
		case <-r.freed:
		case <-q.wake:
		case <-external:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}

	// No more hand-offs from Enqueue or claims at Finish; the attempts
	// started are all in r.wg.
	r.stop.Store(true)
	q.handMu.Lock()
	q.run = nil
	q.handMu.Unlock()
	// Drain: let attempts finish within Grace, then cancel them.
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	grace := time.NewTimer(q.grace())
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		q.log(slog.LevelInfo, "queue: grace period over, cancelling attempts", "inflight", workers-int(q.slots.n.Load()))
		cancelWork()
		<-done
	}
	if fatal != nil {
		return fatal
	}
	return ctx.Err()
}

func (q *Queue) storeError(job *Job, op string, err error) {
	id := ""
	if job != nil {
		id = job.ID
	}
	q.log(slog.LevelError, "queue: store "+op+" failed", "id", id, "err", err)
	if q.Hooks.Error != nil {
		q.Hooks.Error(job, op, err)
	}
}

// attempt makes one delivery attempt of a claimed job and records it. It
// returns the job the store leased to this worker as it recorded the
// attempt (FinishClaimer), or nil.
func (q *Queue) attempt(ctx context.Context, r *run, job *Job) *Job {
	if q.Hooks.AttemptStarted != nil {
		q.Hooks.AttemptStarted(job)
	}
	// End the attempt well before the lease so that no other worker can
	// claim the job while this one still works on it.
	budget := job.Lease.Until.Sub(q.now()) * 9 / 10
	dctx, cancel := context.WithTimeout(ctx, budget)
	outcomes := q.Deliverer.Deliver(dctx, job)
	cancel()
	interrupted := ctx.Err() != nil // the drain cancelled us

	byAddr := make(map[string]Outcome, len(outcomes))
	for _, o := range outcomes {
		byAddr[normalizeAddr(o.Recipient)] = o
	}
	now := q.now()
	lastErr := ""
	tried := false
	for i := range job.Recipients {
		r := &job.Recipients[i]
		if r.State.Final() {
			continue
		}
		o, ok := byAddr[normalizeAddr(r.Addr)]
		if !ok || (o.Status != Delivered && o.Status != Bounced && o.Status != Deferred) {
			o = Outcome{Status: Deferred, Reply: "queue: no outcome reported for this recipient"}
		}
		if interrupted && o.Status == Deferred {
			continue // not a real attempt: leave the recipient as it was
		}
		tried = true
		r.State, r.Reply = o.Status, o.Reply
		switch o.Status {
		case Delivered:
			if q.Hooks.Delivered != nil {
				q.Hooks.Delivered(job, *r)
			}
		case Bounced:
			if q.Hooks.Bounced != nil {
				q.Hooks.Bounced(job, *r)
			}
		case Deferred:
			if lastErr == "" {
				lastErr = o.Reply
			}
		}
	}
	if tried {
		job.Attempts++
	}
	var retryAt time.Time
	var expired []Recipient
	switch {
	case job.Done():
	case interrupted && lastErr == "":
		job.NextAttempt = now // released by the drain
	default:
		job.LastError = lastErr
		at, ok := q.retry().Retry(job, now)
		if ok {
			job.NextAttempt, retryAt = at, at
			break
		}
		reason := fmt.Sprintf("queue: expired after %d attempts in %s; last error: %s",
			job.Attempts, now.Sub(job.Created).Round(time.Second), lastErr)
		for i := range job.Recipients {
			if r := &job.Recipients[i]; !r.State.Final() {
				r.State, r.Reply = Bounced, reason
				expired = append(expired, *r)
			}
		}
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var next []*Job
	var err error
	if fc, ok := q.Store.(FinishClaimer); ok && !interrupted && !r.stop.Load() {
		next, err = fc.FinishClaim(fctx, job, ClaimRequest{
			Owner: q.owner, Max: 1, PerKey: q.perKey(), Now: now, Lease: q.lease(),
		})
	} else {
		err = q.Store.Finish(fctx, job)
	}
	if err != nil {
		q.storeError(job, "finish", err)
		return nil
	}
	switch {
	case len(expired) > 0:
		if q.Hooks.Expired != nil {
			q.Hooks.Expired(job, expired)
		}
	case !retryAt.IsZero():
		q.noteDue(retryAt)
		if q.Hooks.RetryScheduled != nil {
			q.Hooks.RetryScheduled(job, retryAt)
		}
	}
	if len(next) == 0 {
		return nil
	}
	return next[0]
}
