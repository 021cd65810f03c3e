package queue

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Queue delivers stored jobs through a Deliverer, retrying temporary
// failures on a RetryPolicy. Set Store (and Deliverer to Run); the other
// fields have working zero values. Do not change fields once the queue is in
// use. Its methods are safe for concurrent use.
type Queue struct {
	// Store keeps the jobs. Required.
	Store Store
	// Deliverer makes the attempts. Required by Run.
	Deliverer Deliverer
	// Retry schedules temporary failures; nil → DefaultRetryPolicy().
	Retry RetryPolicy
	// Workers caps the jobs in flight in this process; 0 →
	// DefaultWorkers.
	Workers int
	// PerKey caps the jobs in flight per routing key (the recipient
	// domain), counted by the store, so across processes that share it;
	// 0 → DefaultPerKey, negative → no per-key cap.
	PerKey int
	// Lease is how long a claim lasts: a worker that dies leaves its jobs
	// to be claimed again after it. Each attempt's context ends at 90% of
	// it. 0 → 15 minutes, enough for the RFC 5321 §4.5.3.2 timeouts of one
	// SMTP transaction.
	Lease time.Duration
	// PollInterval is the fallback look for due jobs; new jobs, releases,
	// RetryNow calls, retries this queue scheduled and Waker signals wake
	// workers without it. 0 → 30 seconds.
	PollInterval time.Duration
	// Grace is how long Run lets attempts in flight finish after its
	// context ends before cancelling them. 0 → 30 seconds.
	Grace time.Duration
	// Owner names this process in leases; "" → a random name.
	Owner string
	// Hooks receive events; nil ones are skipped.
	Hooks Hooks
	// Logger receives errors and debug events; nil → silent.
	Logger *slog.Logger
	// Now is the clock; nil → time.Now. Tests inject one.
	Now func() time.Time

	once    sync.Once
	running atomic.Bool // a Run is going
	wake    chan struct{}
	mu      sync.Mutex
	owner   string
	policy  RetryPolicy
	due     timeHeap // retry times this queue scheduled, bounded
	slots   slots    // idle workers while Run runs
	handMu  sync.Mutex
	run     *run // the Run that Enqueue may hand jobs to; nil when none
}

// Defaults for Queue.Workers and Queue.PerKey when they are 0. These are
// the only copies of these numbers: relay.Client uses them for its queue
// too (relay.DefaultQueueWorkers is DefaultWorkers).
const (
	// DefaultWorkers is how many jobs one process delivers at once.
	DefaultWorkers = 64
	// DefaultPerKey is how many jobs of one routing key (one recipient
	// domain) are delivered at once, across the processes that share the
	// store. It matches relay's default cap of connections per MX host,
	// so that a domain's queued messages do not wait for connections.
	DefaultPerKey = 10
)

const maxKnownDue = 10000

type timeHeap []time.Time

func (h timeHeap) Len() int           { return len(h) }
func (h timeHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h timeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *timeHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

func (q *Queue) init() {
	q.once.Do(func() {
		q.wake = make(chan struct{}, 1)
		q.owner = q.Owner
		q.policy = q.Retry
		if q.policy == nil {
			q.policy = DefaultRetryPolicy()
		}
		if q.owner == "" {
			q.owner = "q-" + NewID(time.Now())[16:]
		}
	})
}

func (q *Queue) now() time.Time {
	if q.Now != nil {
		return q.Now()
	}
	return time.Now()
}

func (q *Queue) retry() RetryPolicy { return q.policy }

func (q *Queue) workers() int { return positive(q.Workers, DefaultWorkers) }
func (q *Queue) perKey() int {
	if q.PerKey < 0 {
		return 0
	}
	return positive(q.PerKey, DefaultPerKey)
}
func (q *Queue) lease() time.Duration { return positive(q.Lease, 15*time.Minute) }
func (q *Queue) poll() time.Duration  { return positive(q.PollInterval, 30*time.Second) }
func (q *Queue) grace() time.Duration { return positive(q.Grace, 30*time.Second) }

func positive[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// signal wakes Run without blocking.
func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// noteDue remembers a time at which this queue knows a job becomes due.
func (q *Queue) noteDue(t time.Time) {
	q.mu.Lock()
	if len(q.due) < maxKnownDue {
		heap.Push(&q.due, t)
	}
	q.mu.Unlock()
}

// nextDue drops the known times up to now and returns the next one.
func (q *Queue) nextDue(now time.Time) (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.due) > 0 && !q.due[0].After(now) {
		heap.Pop(&q.due)
	}
	if len(q.due) == 0 {
		return time.Time{}, false
	}
	return q.due[0], true
}

func (q *Queue) log(level slog.Level, msg string, args ...any) {
	if q.Logger != nil {
		q.Logger.Log(context.Background(), level, msg, args...)
	}
}

// Enqueue validates job, completes it and stores it; it returns the new id
// once the Store holds the job durably. The caller sets From, the
// recipients' addresses, Message, and optionally RoutingKey ("" → the
// domain of the first recipient; enqueue one job per domain for the
// per-key limit to mean what it says), Metadata, Held, NextAttempt (zero
// → now; later delays the first attempt), and Attempts and LastError for a
// message already tried elsewhere (relay's Send queues its deferrals with
// the attempt it made counted, so the retry schedule goes on from there).
// An ID may be given, one made by NewID, so that the job shares an id the
// caller already uses (relay's history record of a Send); the Store
// refuses one it holds (ErrExists). Enqueue sets ID when it is empty,
// Created, the recipients' states, and clears the rest. It keeps no
// reference to job.
// Idle workers of a running queue are woken at once; when the Store is a
// PutLeaser and a worker of Run is idle, the job is leased in the same
// write that stores it and handed to that worker, with no Claim between.
func (q *Queue) Enqueue(ctx context.Context, job *Job) (string, error) {
	q.init()
	if q.Store == nil {
		return "", errors.New("queue: no Store")
	}
	if err := job.Validate(); err != nil {
		return "", err
	}
	now := q.now()
	j := *job
	j.Recipients = make([]Recipient, len(job.Recipients))
	for i, r := range job.Recipients {
		j.Recipients[i] = Recipient{Addr: r.Addr}
	}
	if j.ID == "" {
		j.ID = NewID(now)
	}
	j.Created = now
	j.Lease = Lease{}
	if j.NextAttempt.IsZero() || j.NextAttempt.Before(now) {
		j.NextAttempt = now
	}
	if j.RoutingKey == "" {
		j.RoutingKey = DomainOf(j.Recipients[0].Addr)
	}
	r, leased, tried, err := q.putLeased(ctx, &j, now)
	if !tried {
		err = q.Store.Put(ctx, &j)
	}
	if err != nil {
		return "", fmt.Errorf("queue: enqueue: %w", err)
	}
	if q.Hooks.Enqueued != nil {
		q.Hooks.Enqueued(&j)
	}
	if leased != nil {
		q.start(r, leased) // leased at Put to an idle worker
		return j.ID, nil
	}
	if !j.Held {
		if j.NextAttempt.After(now) {
			q.noteDue(j.NextAttempt)
		}
		q.signal()
	}
	return j.ID, nil
}

// Get returns the job with id, message included, or ErrNotFound.
func (q *Queue) Get(ctx context.Context, id string) (*Job, error) {
	return q.Store.Get(ctx, id)
}

// Hold keeps the job from being claimed until Release (review before
// sending). An attempt already in flight finishes. ErrNotFound for an
// unknown id.
func (q *Queue) Hold(ctx context.Context, id string) error {
	return q.Store.Set(ctx, id, ActionHold)
}

// Release makes a held job due again at its NextAttempt and wakes workers.
func (q *Queue) Release(ctx context.Context, id string) error {
	q.init()
	if err := q.Store.Set(ctx, id, ActionRelease); err != nil {
		return err
	}
	q.signal()
	return nil
}

// RetryNow makes the job due at once, whatever its schedule (Set with
// ActionRetry: its NextAttempt becomes the zero time, so the next Claim
// takes it first), and wakes workers. Attempts, LastError and the
// recipients are unchanged, so the retry schedule goes on from the
// attempts made. A held job stays held and is due at once when released.
// An attempt in flight is not disturbed and keeps its lease; when it
// finishes, the NextAttempt it chose replaces the cleared one.
// ErrNotFound for an unknown id. (It is not named Retry: that is the
// field holding the RetryPolicy.)
func (q *Queue) RetryNow(ctx context.Context, id string) error {
	q.init()
	if err := q.Store.Set(ctx, id, ActionRetry); err != nil {
		return err
	}
	q.signal()
	return nil
}

// Cancel removes the job. An attempt in flight may still deliver; its
// outcome is discarded.
func (q *Queue) Cancel(ctx context.Context, id string) error {
	return q.Store.Set(ctx, id, ActionCancel)
}

// List returns one page of jobs in a state (without their messages) and
// the cursor of the next page, "" after the last; see Store.List.
func (q *Queue) List(ctx context.Context, r ListRequest) ([]*Job, string, error) {
	return q.Store.List(ctx, r)
}

// Stats counts the stored jobs by state.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	return q.Store.Stats(ctx)
}
