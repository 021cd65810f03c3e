package relay

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/webhook"
)

// WebhookOptions POST the events to HTTP endpoints, durably: each event
// of a type an endpoint asked for is appended, as one JSON object, to the
// endpoint's outbox in Outbox, and Run delivers the outboxes in signed
// batches (package webhook: the request, the signature, retries), so an
// event accepted survives a restart and is delivered at least once.
//
// Each event is the JSON of Event with a unique "id" added (a 32-digit
// hexadecimal string that sorts by time), so a receiver can tell a
// repeat from a new event:
//
//	{"id":"1879a1c4e3f0b2a05e2f...","type":"delivered","time":"...","message_id":"...","recipient":"..."}
//
// Events are appended in batches by a goroutine of the Client, through a
// buffer of WebhookBuffer events. When the store falls that far behind,
// the code that emits an event waits (a delivery pauses) rather than
// dropping it. An event emitted but not yet appended when the process
// dies is lost; Run appends what is buffered before it returns.
type WebhookOptions struct {
	// Outbox keeps each endpoint's events until the endpoint has taken
	// them. Required with Endpoints. Give it the queue's store:
	// queue.MemoryStore, boltstore and pgstore implement
	// queue.OutboxStore (a MemoryStore keeps nothing across a restart).
	// Several instances sharing a pgstore share the outboxes: one of them
	// at a time delivers each endpoint, in order.
	Outbox queue.OutboxStore
	// Endpoints are the receivers.
	Endpoints []Webhook
	// HTTPClient makes the POSTs. nil → the webhook package's client,
	// which refuses addresses that are not globally reachable unless
	// private addresses are allowed for mail (Client.AllowPrivateAddrs,
	// or that of the Direct transport given as Client.Transport).
	HTTPClient *http.Client
	// Timeout bounds one POST. 0 → webhook.DefaultTimeout (30 s).
	Timeout time.Duration
	// MaxAge is how long an event may wait for its endpoint before it is
	// dropped, logged at error level and counted in WebhookStats. 0 →
	// webhook.DefaultMaxAge (24 h).
	MaxAge time.Duration
	// Backoff is the wait after an endpoint's attempt-th failed POST in a
	// row. nil → webhook.DefaultBackoff: 5 s doubling to 10 minutes, a
	// Retry-After of a 429 or 503 obeyed.
	Backoff func(attempt int) time.Duration
}

// Webhook is one endpoint the events are POSTed to.
type Webhook struct {
	// Name names the endpoint's outbox and is the "endpoint" of each
	// payload. Empty → the URL. Keep it when the URL changes, so the
	// events waiting go to the new URL.
	Name string
	// URL is where batches are POSTed: http or https.
	URL string
	// Secrets sign each request (webhook.Endpoint.Secrets): the newest
	// first; at least one of at least webhook.MinSecretLen octets.
	Secrets [][]byte
	// Types are the events the endpoint gets. nil → every type.
	Types []EventType
}

// WebhookBuffer is how many events wait to be appended to the outboxes
// before the code emitting one waits for room.
const WebhookBuffer = 1024

// webhookBatch is the most entries one AppendOutbox writes.
const webhookBatch = 256

// webhooks is a Client's webhook state: the dispatcher, built once from
// WebhookOptions, and the feeder that appends events to the outboxes.
type webhooks struct {
	once  sync.Once
	d     *webhook.Dispatcher
	types []uint64 // per endpoint, a bit per EventType it takes
	names []string // per endpoint, its outbox name
	err   error    // the configuration's, from Dispatcher.Check

	mu      sync.Mutex
	ch      chan queue.OutboxEntry
	running bool
	done    chan struct{} // closed when the running feeder stops
	lost    atomic.Int64  // entries the store refused for good
}

// webhookSetup builds the dispatcher from c.Webhooks once; it is nil
// when no endpoint is configured.
func (c *Client) webhookSetup() (*webhooks, error) {
	w := &c.hooks
	w.once.Do(func() {
		o := &c.Webhooks
		if len(o.Endpoints) == 0 {
			return
		}
		d := &webhook.Dispatcher{
			Store:             o.Outbox,
			Client:            o.HTTPClient,
			AllowPrivateAddrs: c.allowPrivateAddrs(),
			Timeout:           o.Timeout,
			MaxAge:            o.MaxAge,
			Backoff:           o.Backoff,
			Logger:            c.Logger,
		}
		for i, e := range o.Endpoints {
			d.Endpoints = append(d.Endpoints, webhook.Endpoint{Name: e.Name, URL: e.URL, Secrets: e.Secrets})
			var mask uint64
			for _, t := range e.Types {
				if t <= 0 || int(t) >= len(eventNames) {
					w.err = fmt.Errorf("%w: %w: Webhooks.Endpoints[%d]: unknown event type %d", ErrInvalidConfig, webhook.ErrInvalidEndpoint, i, int(t))
					return
				}
				mask |= 1 << uint(t)
			}
			if mask == 0 {
				mask = ^uint64(0)
			}
			w.types = append(w.types, mask)
			w.names = append(w.names, cmp.Or(e.Name, e.URL))
		}
		if o.Outbox == nil {
			w.err = fmt.Errorf("%w: %w: Webhooks.Endpoints set without an Outbox", ErrInvalidConfig, webhook.ErrInvalidConfig)
			return
		}
		if err := d.Check(); err != nil {
			w.err = fmt.Errorf("%w: Webhooks: %w", ErrInvalidConfig, err)
			return
		}
		w.d = d
		w.ch = make(chan queue.OutboxEntry, WebhookBuffer)
	})
	if w.err != nil {
		return nil, w.err
	}
	if w.d == nil {
		return nil, nil
	}
	return w, nil
}

// allowPrivateAddrs is the destination policy of mail, which webhooks
// follow: the Client's, or that of its Direct transport.
func (c *Client) allowPrivateAddrs() bool {
	if d, ok := c.Transport.(*Direct); ok {
		return d.AllowPrivateAddrs
	}
	return c.AllowPrivateAddrs
}

// webhookEvent is an event as an endpoint gets it.
type webhookEvent struct {
	ID string `json:"id"`
	Event
}

// feedWebhooks queues e for the endpoints that take its type, waiting
// when WebhookBuffer events are already waiting.
func (c *Client) feedWebhooks(e *Event) {
	w, err := c.webhookSetup()
	if w == nil || err != nil {
		return
	}
	var data []byte
	for i, mask := range w.types {
		if mask&(1<<uint(e.Type)) == 0 {
			continue
		}
		if data == nil {
			data, err = json.Marshal(webhookEvent{ID: queue.NewID(e.Time), Event: *e})
			if err != nil {
				// Every field of Event marshals; this is a bug.
				c.logger().Error("webhook: event does not marshal", "type", e.Type.String(), "err", err)
				return
			}
		}
		w.put(c, queue.OutboxEntry{Endpoint: w.names[i], Time: e.Time, Data: data})
	}
}

// put hands one entry to the feeder, starting it when it is not running.
// The send happens under the lock, so an entry is never left in the
// buffer with no feeder to take it: the feeder stops only under the lock,
// with the buffer empty.
func (w *webhooks) put(c *Client, e queue.OutboxEntry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.running {
		w.running = true
		w.done = make(chan struct{})
		go c.feedOutbox(w, w.done)
	}
	w.ch <- e
}

// feedOutbox appends the buffered entries to the outboxes in batches until the
// buffer is empty. It takes the lock only when it finds the buffer empty:
// a put may hold the lock while it waits for room, which it gets from
// this loop.
func (c *Client) feedOutbox(w *webhooks, done chan struct{}) {
	defer close(done)
	batch := make([]queue.OutboxEntry, 0, webhookBatch)
	for {
		batch = batch[:0]
	fill:
		for len(batch) < webhookBatch {
			select {
			case e := <-w.ch:
				batch = append(batch, e)
			default:
				break fill
			}
		}
		if len(batch) > 0 {
			c.appendOutbox(w, batch)
			continue
		}
		w.mu.Lock()
		if len(w.ch) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}

// appendOutbox writes one batch, retrying a failing store for a while:
// the entries are lost only when the store is closed, refuses them as
// invalid, or keeps failing for a minute; each loss is logged and
// counted.
func (c *Client) appendOutbox(w *webhooks, batch []queue.OutboxEntry) {
	wait := 50 * time.Millisecond
	var err error
	for range 12 { // about a minute in all
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = c.Webhooks.Outbox.AppendOutbox(ctx, batch...)
		cancel()
		if err == nil {
			w.d.Notify()
			return
		}
		if isFinal(err) {
			break
		}
		c.logger().Warn("webhook: appending events failed; retrying", "events", len(batch), "err", err)
		time.Sleep(wait)
		wait = min(2*wait, 10*time.Second)
	}
	w.lost.Add(int64(len(batch)))
	c.logger().Error("webhook: events lost: the outbox refused them", "events", len(batch), "err", err)
}

// isFinal reports an error that retrying an append will not cure.
func isFinal(err error) bool {
	return errors.Is(err, queue.ErrClosed) || errors.Is(err, queue.ErrInvalid)
}

// flushWebhooks waits, at most until ctx ends, for the feeder to append
// what is buffered.
func (c *Client) flushWebhooks(ctx context.Context) {
	w := &c.hooks
	w.mu.Lock()
	done := w.done
	w.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// runWebhooks delivers the outboxes until ctx ends; Run calls it.
func (c *Client) runWebhooks(ctx context.Context, w *webhooks) {
	if err := w.d.Run(ctx); err != nil && ctx.Err() == nil {
		c.logger().Error("webhook: dispatcher stopped", "err", err)
	}
}

// WebhookStats returns the counters of the webhook deliveries of this
// process: per endpoint and in all, what was delivered, failed and
// dropped (webhook.Stats), and how many events were lost before reaching
// the outbox (the store refused them).
func (c *Client) WebhookStats() WebhookStats {
	w, err := c.webhookSetup()
	if w == nil || err != nil {
		return WebhookStats{}
	}
	return WebhookStats{Stats: w.d.Stats(), Lost: w.lost.Load()}
}

// WebhookStats are the counters of Client.WebhookStats.
type WebhookStats struct {
	webhook.Stats
	// Lost counts events that never reached an outbox: the store was
	// closed, refused them, or failed for a minute.
	Lost int64
}
