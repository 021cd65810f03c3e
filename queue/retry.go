package queue

import (
	"math/rand/v2"
	"time"
)

// RetryPolicy decides when a job that failed temporarily is tried again.
type RetryPolicy interface {
	// Retry returns when to make the next attempt of job, whose attempt
	// number job.Attempts has just failed temporarily at now; ok is false
	// when the job has run out of lifetime and must expire.
	Retry(job *Job, now time.Time) (at time.Time, ok bool)
}

// BackoffPolicy is a RetryPolicy of fixed intervals with jitter and a
// maximum lifetime.
type BackoffPolicy struct {
	// Intervals[i] is the wait after the (i+1)th failed attempt; the last
	// one repeats. Empty: one hour.
	Intervals []time.Duration
	// Jitter spreads each wait uniformly by ± this fraction (0.1 = ±10%),
	// so that jobs failing together do not retry together.
	Jitter float64
	// Lifetime is the maximum age of a job (from Created). A job that fails
	// once this age has passed expires; the last retry is moved to the end
	// of the lifetime so that no job expires without a final attempt there.
	// Zero: no limit.
	Lifetime time.Duration
	// Rand returns a number in [0, 1) for the jitter; nil uses math/rand/v2.
	// Tests set it to make the schedule deterministic.
	Rand func() float64
}

// DefaultRetryPolicy returns the default schedule: 5, 10, 20, 40 and
// 80 minutes, then every 2 hours, each ±10%, for at most 5 days — in line
// with RFC 5321 §4.5.4.1 (retry no sooner than about 30 minutes on average,
// give up after 4–5 days) and Postfix's exponential backoff.
func DefaultRetryPolicy() *BackoffPolicy {
	return &BackoffPolicy{
		Intervals: []time.Duration{
			5 * time.Minute, 10 * time.Minute, 20 * time.Minute,
			40 * time.Minute, 80 * time.Minute, 2 * time.Hour,
		},
		Jitter:   0.1,
		Lifetime: 5 * 24 * time.Hour,
	}
}

// Retry implements RetryPolicy.
func (p *BackoffPolicy) Retry(job *Job, now time.Time) (time.Time, bool) {
	deadline := job.Created.Add(p.Lifetime)
	if p.Lifetime > 0 && !now.Before(deadline) {
		return time.Time{}, false
	}
	wait := time.Hour
	if n := len(p.Intervals); n > 0 {
		i := max(job.Attempts-1, 0)
		wait = p.Intervals[min(i, n-1)]
	}
	if p.Jitter > 0 {
		r := p.Rand
		if r == nil {
			r = rand.Float64
		}
		wait += time.Duration((2*r() - 1) * p.Jitter * float64(wait))
	}
	at := now.Add(wait)
	if p.Lifetime > 0 && at.After(deadline) {
		at = deadline
	}
	return at, true
}
