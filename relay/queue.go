package relay

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/queue"
)

// EnqueueOptions tune one Enqueue.
type EnqueueOptions struct {
	// Metadata is the caller's correlation data (a customer id, a
	// campaign), kept with the job and returned in every Event.
	Metadata map[string]string
	// Hold stores the message held for review: it is not sent until
	// approved (Client.Approve, which records who did) or released
	// through Queue().Release. Client.Review may hold it too.
	Hold bool
	// NotBefore delays the first attempt; zero → at once.
	NotBefore time.Time
	// Source sends from this one of Client.Sources at every attempt
	// (kept in the job's Metadata under "mxrelay.source"); unset → by
	// weight at each attempt.
	Source netip.Addr
	// List makes the message a list message, as SendOptions.List does
	// (kept in the job's Metadata under "mxrelay.list"). The job holds
	// the message unsigned; each attempt personalises and signs it per
	// recipient.
	List string
	// Track and Campaign are as in SendOptions (kept in the job's
	// Metadata under "mxrelay.track" and "mxrelay.campaign"). A tracked
	// job holds the message unsigned.
	Track    bool
	Campaign string
}

// DefaultQueueWorkers is how many queued messages Run delivers at once
// when Client.QueueWorkers is zero: queue.DefaultWorkers.
const DefaultQueueWorkers = queue.DefaultWorkers

// Enqueue validates and writes m, signs it when a Signer is set, and
// stores it through Store, returning the job id once the Store holds it
// durably (the Store's promise: boltstore and pgstore have it on disk,
// MemoryStore only in memory). Run delivers it in the background and
// retries temporary failures; Events report what becomes of it. Without a
// Store, Enqueue fails with ErrNoStore.
func (c *Client) Enqueue(ctx context.Context, m *mime.Message) (id string, err error) {
	return c.EnqueueWith(ctx, m, nil)
}

// EnqueueWith is Enqueue with options; opts may be nil.
func (c *Client) EnqueueWith(ctx context.Context, m *mime.Message, opts *EnqueueOptions) (string, error) {
	if c.Store == nil {
		return "", ErrNoStore
	}
	if err := c.checkConfig(); err != nil {
		return "", err
	}
	from, data, err := c.write(m)
	if err != nil {
		return "", err
	}
	var o origin
	if opts != nil {
		o.list, o.track, o.campaign = opts.List, opts.Track, opts.Campaign
		if err := c.checkTracking(opts.Track, opts.Campaign); err != nil {
			return "", err
		}
	}
	if err := c.checkListMessage(m, o.list); err != nil {
		return "", err
	}
	if !o.perCopy() {
		if data, err = c.sign(data); err != nil {
			return "", err
		}
	}
	job := queue.NewJob(from, m.Recipients(), data)
	job.Metadata = o.reserved(nil)
	if opts != nil {
		if err := checkMetadata(opts.Metadata); err != nil {
			return "", err
		}
		for k, v := range opts.Metadata {
			if job.Metadata == nil {
				job.Metadata = make(map[string]string, len(opts.Metadata)+1)
			}
			job.Metadata[k] = v
		}
		job.Held = opts.Hold || c.Review.Campaigns && opts.Campaign != ""
		job.NextAttempt = opts.NotBefore
		if opts.Source.IsValid() {
			if _, err := c.pickSource(opts.Source); err != nil {
				return "", err
			}
			if job.Metadata == nil {
				job.Metadata = make(map[string]string)
			}
			job.Metadata[sourceKey] = opts.Source.String()
		}
	}
	return c.enqueue(ctx, job)
}

// reserved adds the keys under which a job keeps the origin's list,
// tracking and campaign to meta (a new map when meta is nil and there is
// something to keep).
func (o *origin) reserved(meta map[string]string) map[string]string {
	set := func(k, v string) {
		if v == "" {
			return
		}
		if meta == nil {
			meta = make(map[string]string)
		}
		meta[k] = v
	}
	set(listKey, o.list)
	set(campaignKey, o.campaign)
	if o.track {
		set(trackKey, "1")
	}
	return meta
}

// originOf is the origin of an attempt of a queued job.
func originOf(job *queue.Job) origin {
	return origin{id: job.ID, meta: job.Metadata, start: job.Created, attempts: job.Attempts,
		list: job.Metadata[listKey], campaign: job.Metadata[campaignKey], track: job.Metadata[trackKey] != ""}
}

// enqueue stores job through the queue, which wakes an idle worker.
//
// A worker may claim the job as soon as the store holds it, before the
// queue's Enqueued hook has emitted EventQueued; Deliver waits for the
// gate enqueue holds open meanwhile, so that a message's events come in
// order, queued before its first attempt.
func (c *Client) enqueue(ctx context.Context, job *queue.Job) (string, error) {
	job.RoutingKey = routingKey(job)
	q := c.Queue()
	if job.ID == "" {
		now := time.Now()
		if q.Now != nil {
			now = q.Now()
		}
		job.ID = queue.NewID(now)
	}
	gate := make(chan struct{})
	c.enqueuing.Store(job.ID, gate)
	id, err := q.Enqueue(ctx, job)
	c.enqueuing.Delete(job.ID)
	close(gate)
	if err != nil {
		return "", fmt.Errorf("relay: enqueue: %w", err)
	}
	return id, nil
}

// routingKey is the recipients' domain, or that of the first recipient
// when a message goes to several domains.
func routingKey(job *queue.Job) string {
	return queue.DomainOf(job.Recipients[0].Addr)
}

// Run delivers queued messages, and the webhooks' outboxes, until ctx
// ends, then lets deliveries in flight finish within the queue's grace
// period, appends the events they emitted to the outboxes and returns
// ctx.Err().
// Without a Store it returns ErrNoStore at once, and with a malformed
// Hostname or Source the configuration error (ErrInvalidEnvelope,
// ErrUnknownSource).
func (c *Client) Run(ctx context.Context) error {
	if c.Store == nil {
		return ErrNoStore
	}
	if err := c.checkConfig(); err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	sweep, stop := context.WithCancel(ctx)
	defer stop()
	go c.sweepHistory(sweep)
	if a, _ := c.alertSetup(); a != nil { // checked by checkConfig
		go c.runAlerts(sweep, a)
	}
	w, _ := c.webhookSetup() // checked by checkConfig
	if w == nil {
		return c.Queue().Run(ctx)
	}
	// The dispatcher stops with ctx, giving back the batches in flight;
	// what the last deliveries emitted is appended before Run returns,
	// for the next Run to send.
	var wg sync.WaitGroup
	wg.Go(func() { c.runWebhooks(ctx, w) })
	err := c.Queue().Run(ctx)
	flush, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c.flushWebhooks(flush)
	cancel()
	wg.Wait()
	return err
}

// Queue returns the queue over Store through which Enqueue stores and Run
// delivers, for review before sending and statistics: Hold, Release,
// Cancel, List, Stats. It is nil when Store is nil. Its tuning fields
// (PollInterval, Grace, Lease, Now) may be set before the first Enqueue or
// Run; its Store, Deliverer, Retry, Workers, PerKey and Hooks come from the
// Client.
func (c *Client) Queue() *queue.Queue {
	if c.Store == nil {
		return nil
	}
	c.qOnce.Do(func() {
		c.q = &queue.Queue{
			Store:     c.Store,
			Deliverer: c,
			Retry:     c.Retry,
			Workers:   cmp.Or(c.QueueWorkers, DefaultQueueWorkers),
			PerKey:    cmp.Or(c.QueuePerDomain, c.perDomainDefault()),
			Logger:    c.Logger,
			Hooks:     c.queueHooks(),
		}
	})
	return c.q
}

// Deliver makes one attempt for a queued job: the message as stored (it
// was signed when enqueued) to the job's remaining recipients. It
// implements queue.Deliverer; Run calls it.
func (c *Client) Deliver(ctx context.Context, job *queue.Job) []queue.Outcome {
	if gate, ok := c.enqueuing.Load(job.ID); ok {
		<-gate.(chan struct{}) // see enqueue
	}
	rcpts := job.Remaining()
	o := originOf(job)
	if s, ok := job.Metadata[sourceKey]; ok {
		o.want, _ = netip.ParseAddr(s)
	}
	if err := c.checkConfig(); err != nil {
		// The configuration changed under a running queue: retry, as it
		// may be fixed, until the message expires.
		return queue.Outcomes(job, queue.Deferred, err.Error())
	}
	var err error
	if o.src, err = c.pickSource(o.want); err != nil {
		// Sources changed since the message was queued: retry, in case
		// the address comes back, until the message expires.
		return queue.Outcomes(job, queue.Deferred, err.Error())
	}
	res := c.deliver(ctx, job.From, rcpts, job.Message, o)
	c.feedBounces(ctx, res, job.ID)
	c.recordResult(ctx, job.Message, o, res)
	var deferred []RecipientResult
	out := make([]queue.Outcome, len(res.Recipients))
	for i, r := range res.Recipients {
		if r.Status == Deferred {
			// Reported by the queue's RetryScheduled or Expired hook,
			// which knows when the next attempt is.
			deferred = append(deferred, r)
		} else {
			c.emit(resultEvent(&r, job.ID, job.Metadata, job.Created))
		}
		st := queue.Deferred
		switch r.Status {
		case Delivered:
			st = queue.Delivered
		case Bounced, Suppressed:
			// A suppressed recipient is final, with its reason as reply.
			st = queue.Bounced
		}
		out[i] = queue.Outcome{Recipient: r.Recipient, Status: st, Reply: r.reply()}
	}
	c.stash.put(job.ID, deferred)
	return out
}

// reply formats a result for a job's record: "mx.example.com: 451 4.3.0 text".
func (r *RecipientResult) reply() string {
	var b strings.Builder
	if r.MX != "" {
		b.WriteString(r.MX)
		b.WriteString(": ")
	}
	if r.Code != 0 {
		b.WriteString(strconv.Itoa(r.Code))
		b.WriteByte(' ')
	}
	if r.Enhanced != "" {
		b.WriteString(r.Enhanced)
		b.WriteByte(' ')
	}
	b.WriteString(r.Message)
	return b.String()
}

// queueDeferred stores the recipients of res that were deferred as a new
// job, due at the retry policy's first interval, and notes its id in res.
func (c *Client) queueDeferred(ctx context.Context, from string, data []byte, o origin, res *Result) (time.Time, error) {
	var to []string
	var why string
	for _, r := range res.Recipients {
		if r.Status == Deferred {
			to = append(to, r.Recipient)
			if why == "" {
				why = r.Err().Error()
			}
		}
	}
	if len(to) == 0 {
		return time.Time{}, nil
	}
	job := queue.NewJob(from, to, data)
	job.ID = o.rec
	job.LastError = why
	job.Metadata = o.reserved(maps.Clone(o.meta))
	if o.want.IsValid() {
		if job.Metadata == nil {
			job.Metadata = make(map[string]string)
		}
		job.Metadata[sourceKey] = o.want.String()
	}
	now := time.Now()
	job.Created, job.Attempts = now, 1
	if at, ok := c.retryPolicy().Retry(job, now); ok {
		job.NextAttempt = at
	}
	id, err := c.enqueue(ctx, job)
	if err != nil {
		return time.Time{}, err
	}
	res.QueueID = id
	return job.NextAttempt, nil
}

func (c *Client) retryPolicy() queue.RetryPolicy {
	if c.Retry != nil {
		return c.Retry
	}
	return queue.DefaultRetryPolicy()
}

// queueHooks turns the queue's events into the Client's. Delivered and
// bounced recipients are reported by Deliver itself, with the details of
// the attempt; deferred ones here, once the queue has set the next attempt.
func (c *Client) queueHooks() queue.Hooks {
	return queue.Hooks{
		Enqueued: func(job *queue.Job) {
			now := time.Now()
			for _, r := range job.Recipients {
				// A job that had no attempt yet is new: Enqueue's, not
				// Send's deferrals, whose recipients counted as sent
				// already.
				c.emit(Event{Type: EventQueued, Time: now, MessageID: job.ID, Recipient: r.Addr,
					Domain: domainOf(r.Addr), Metadata: job.Metadata, NextAttempt: job.NextAttempt,
					List: job.Metadata[listKey], Campaign: job.Metadata[campaignKey], first: job.Attempts == 0})
			}
		},
		RetryScheduled: func(job *queue.Job, at time.Time) {
			for _, r := range c.stash.take(job.ID) {
				e := resultEvent(&r, job.ID, job.Metadata, job.Created)
				e.NextAttempt = at
				c.emit(e)
			}
		},
		Expired: func(job *queue.Job, rcpts []queue.Recipient) {
			c.stash.take(job.ID)
			c.recordExpired(job, rcpts)
			now := time.Now()
			for _, r := range rcpts {
				c.emit(Event{Type: EventExpired, Time: now, MessageID: job.ID, Recipient: r.Addr,
					Domain: domainOf(r.Addr), Message: r.Reply, Metadata: job.Metadata})
			}
		},
	}
}

// deferredStash holds a job's deferred results from Deliver until the
// queue's hook says when the next attempt is. Entries live for the moment
// between the two calls; a bound keeps a store failure (no hook called)
// from leaking them.
type deferredStash struct {
	mu sync.Mutex
	m  map[string][]RecipientResult
}

func (s *deferredStash) put(id string, rs []RecipientResult) {
	if len(rs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || len(s.m) > 10000 {
		s.m = make(map[string][]RecipientResult)
	}
	s.m[id] = rs
}

func (s *deferredStash) take(id string) []RecipientResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.m[id]
	delete(s.m, id)
	return rs
}

// perDomainDefault is the queue's default cap per recipient domain: twice
// the Direct transport's connection cap, queue.DefaultPerKey for other
// transports. An attempt holds its lease past its SMTP session, until its
// outcome is committed (for a durable store, a group commit: an fsync
// away), and the connection is free for another attempt meanwhile; with
// leases capped at the connection cap, the connections sat idle for those
// commits (measured with boltstore: 0.39× of Send's rate at 5 KB; twice
// the cap keeps them busy). Attempts beyond the connections wait in the
// pool, briefly, as they do for any cap.
func (c *Client) perDomainDefault() int {
	if d, ok := c.transport().(*Direct); ok {
		return 2 * d.Limits.withDefaults().MaxConnections
	}
	return queue.DefaultPerKey
}
