package relay_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// eventLog collects events for a test.
type eventLog struct {
	mu     sync.Mutex
	events []relay.Event
	signal chan struct{}
}

func newEventLog() *eventLog { return &eventLog{signal: make(chan struct{}, 1000)} }

func (l *eventLog) hook(e relay.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	select {
	case l.signal <- struct{}{}:
	default: // a waiter is signalled already
	}
}

// waitFor waits (bounded) until an event of type t for rcpt has come.
func (l *eventLog) waitFor(t *testing.T, typ relay.EventType, rcpt string) relay.Event {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		l.mu.Lock()
		for _, e := range l.events {
			if e.Type == typ && e.Recipient == rcpt {
				l.mu.Unlock()
				return e
			}
		}
		l.mu.Unlock()
		select {
		case <-l.signal:
		case <-deadline:
			t.Fatalf("no %v event for %s; got %v", typ, rcpt, l.types())
		}
	}
}

func (l *eventLog) types() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		out = append(out, e.Type.String()+":"+e.Recipient)
	}
	return out
}

func runClient(t *testing.T, c *relay.Client) {
	t.Helper()
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return")
		}
	})
}

func TestNoStore(t *testing.T) {
	c := &relay.Client{}
	if _, err := c.Enqueue(ctx(t), testMessage("a@example.com")); !errors.Is(err, relay.ErrNoStore) {
		t.Errorf("Enqueue: %v", err)
	}
	if err := c.Run(ctx(t)); !errors.Is(err, relay.ErrNoStore) {
		t.Errorf("Run: %v", err)
	}
	if c.Queue() != nil {
		t.Error("Queue() without a Store")
	}
}

func TestEnqueueAndRun(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{
		RcptReply: func(r string) *relaytest.Reply {
			if strings.HasPrefix(r, "gone@") {
				return &relaytest.Reply{Code: 550, Enhanced: "5.1.1", Text: "gone"}
			}
			return nil
		},
	})
	s.AddDomain("example.com", "mx.example.com")
	log := newEventLog()
	c := s.Client()
	c.Store = &queue.MemoryStore{}
	c.Events = log.hook
	runClient(t, c)

	id, err := c.EnqueueWith(ctx(t), testMessage("a@example.com", "gone@example.com"),
		&relay.EnqueueOptions{Metadata: map[string]string{"campaign": "c1"}})
	if err != nil {
		t.Fatal(err)
	}
	d := log.waitFor(t, relay.EventDelivered, "a@example.com")
	b := log.waitFor(t, relay.EventBounced, "gone@example.com")
	if d.MessageID != id || d.Metadata["campaign"] != "c1" || d.MX != "mx.example.com" || d.Code != 250 || d.Latency <= 0 || d.Source == "" {
		t.Errorf("delivered event %+v", d)
	}
	if b.Code != 550 || b.Enhanced != "5.1.1" {
		t.Errorf("bounced event %+v", b)
	}
	log.waitFor(t, relay.EventQueued, "a@example.com")
	st := c.Stats()
	if st.Total.Delivered != 1 || st.Total.Bounced != 1 || st.ByDomain["example.com"].Queued != 2 || st.ByMX["mx.example.com"].Delivered != 1 || st.Latency.Count != 1 {
		t.Errorf("stats %+v", st)
	}
	if r := st.ByDomain["example.com"].BounceRate(); r != 0.5 {
		t.Errorf("bounce rate %v", r)
	}
}

// Send hands deferred recipients to the queue; Run retries them.
func TestSendQueuesDeferrals(t *testing.T) {
	s := newHarness(t)
	var fail atomic.Bool
	fail.Store(true)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{
		RcptReply: func(r string) *relaytest.Reply {
			if strings.HasPrefix(r, "later@") && fail.Load() {
				return &relaytest.Reply{Code: 451, Enhanced: "4.3.0", Text: "try again"}
			}
			return nil
		},
	})
	s.AddDomain("example.com", "mx.example.com")
	log := newEventLog()
	c := s.Client()
	c.Store = &queue.MemoryStore{}
	c.Retry = &queue.BackoffPolicy{Intervals: []time.Duration{50 * time.Millisecond}, Lifetime: time.Hour}
	c.Events = log.hook

	res, err := c.Send(ctx(t), testMessage("now@example.com", "later@example.com"))
	if err != nil {
		t.Fatalf("Send: %v (queued deferrals are not errors)", err)
	}
	if res.QueueID == "" || res.Recipients[1].Status != relay.Deferred {
		t.Fatalf("result %+v", res)
	}
	e := log.waitFor(t, relay.EventDeferred, "later@example.com")
	if e.NextAttempt.IsZero() || e.MessageID != res.QueueID || e.Code != 451 {
		t.Errorf("deferred event %+v", e)
	}
	// The attempt Send made counts: the first queued retry is the second.
	j, err := c.Queue().Get(ctx(t), res.QueueID)
	if err != nil || j.Attempts != 1 || !strings.Contains(j.LastError, "451") {
		t.Errorf("queued job: %v, attempts %d, last error %q", err, j.Attempts, j.LastError)
	}
	fail.Store(false)
	runClient(t, c)
	d := log.waitFor(t, relay.EventDelivered, "later@example.com")
	if d.MessageID != res.QueueID {
		t.Errorf("delivered event %+v", d)
	}
	if n := len(s.Messages()); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}

// A queued message that never gets through expires with a reason.
func TestExpiry(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{
		RcptReply: func(string) *relaytest.Reply { return &relaytest.Reply{Code: 451, Text: "busy"} },
	})
	s.AddDomain("example.com", "mx.example.com")
	log := newEventLog()
	c := s.Client()
	c.Store = &queue.MemoryStore{}
	c.Retry = &queue.BackoffPolicy{Intervals: []time.Duration{20 * time.Millisecond}, Lifetime: 200 * time.Millisecond}
	c.Events = log.hook
	runClient(t, c)
	if _, err := c.Enqueue(ctx(t), testMessage("a@example.com")); err != nil {
		t.Fatal(err)
	}
	e := log.waitFor(t, relay.EventExpired, "a@example.com")
	if !strings.Contains(e.Message, "busy") && e.Message == "" {
		t.Errorf("expired without a reason: %+v", e)
	}
	log.waitFor(t, relay.EventDeferred, "a@example.com")
	if st := c.Stats(); st.Total.Expired != 1 || st.Total.Deferred == 0 {
		t.Errorf("stats %+v", st.Total)
	}
}

// A hook that blocks never holds up delivery: events beyond the buffer
// are dropped and counted.
func TestSlowHookDropsEvents(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	release := make(chan struct{})
	c := s.Client()
	c.EventBuffer = 1
	c.Events = func(relay.Event) { <-release }
	defer close(release)
	for range 5 {
		if _, err := c.Send(ctx(t), testMessage("a@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	st := c.Stats()
	if st.EventsDropped == 0 || st.Total.Delivered != 5 {
		t.Errorf("dropped %d, delivered %d", st.EventsDropped, st.Total.Delivered)
	}
}

func TestHoldForReview(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	log := newEventLog()
	c := s.Client()
	c.Store = &queue.MemoryStore{}
	c.Events = log.hook
	runClient(t, c)
	id, err := c.EnqueueWith(ctx(t), testMessage("a@example.com"), &relay.EnqueueOptions{Hold: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Queue().Stats(ctx(t))
	if err != nil || st.Held != 1 {
		t.Fatalf("queue stats %+v %v", st, err)
	}
	if err := c.Queue().Release(ctx(t), id); err != nil {
		t.Fatal(err)
	}
	log.waitFor(t, relay.EventDelivered, "a@example.com")
}
