package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/boltstore"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
	"github.com/mxrelay/mxrelay/webhook"
)

var (
	hookSecret = []byte("whsec_relay_test_0001")
	hookOld    = []byte("whsec_relay_test_0000")
)

// hookEvent is an event as a receiver decodes it.
type hookEvent struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	MessageID string `json:"message_id"`
	Recipient string `json:"recipient"`
	Code      int    `json:"code"`
}

// hookReceiver is a webhook endpoint that verifies every request and
// keeps the events by endpoint, deduplicated by outbox position.
type hookReceiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	fail     bool             // answer 503 to everything
	seen     map[string]int64 // per endpoint, the highest position handled
	events   map[string][]hookEvent
	requests int
	bad      []error
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{seen: map[string]int64{}, events: map[string][]hookEvent{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	p, err := webhook.VerifyRequest(req, 0, hookSecret)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if err != nil {
		r.bad = append(r.bad, err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if r.fail {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	for i, raw := range p.Events {
		if p.Seqs[i] <= r.seen[p.Endpoint] {
			continue // a repeat
		}
		r.seen[p.Endpoint] = p.Seqs[i]
		var e hookEvent
		if err := json.Unmarshal(raw, &e); err != nil {
			r.bad = append(r.bad, err)
			continue
		}
		r.events[p.Endpoint] = append(r.events[p.Endpoint], e)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *hookReceiver) setFail(v bool) {
	r.mu.Lock()
	r.fail = v
	r.mu.Unlock()
}

func (r *hookReceiver) got(endpoint string) []hookEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events[endpoint])
}

// waitEvents waits, bounded, until the endpoint has n events.
func (r *hookReceiver) waitEvents(t *testing.T, endpoint string, n int) []hookEvent {
	t.Helper()
	for range 2000 { // 20 s at most
		if got := r.got(endpoint); len(got) >= n {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := r.got(endpoint)
	r.mu.Lock()
	reqs, bad := r.requests, slices.Clone(r.bad)
	r.mu.Unlock()
	t.Fatalf("endpoint %s: %d events, want %d, after %d requests (refused: %v): %v", endpoint, len(got), n, reqs, bad, got)
	return nil
}

func (r *hookReceiver) errs() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bad)
}

// Every event reaches the endpoint that takes its type, signed, once
// each after dedupe, with an id of its own, in the order emitted; an
// endpoint that is down gets them when it comes back.
func TestWebhooks(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{
		RcptReply: func(r string) *relaytest.Reply {
			if strings.HasPrefix(r, "gone") {
				return &relaytest.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
			}
			return nil
		},
	})
	s.AddDomain("example.com", "mx.example.com")
	recv := newHookReceiver(t)
	recv.setFail(true)
	store := &queue.MemoryStore{}
	c := s.Client()
	c.Store = store
	c.Webhooks = relay.WebhookOptions{
		Outbox: store,
		Endpoints: []relay.Webhook{
			{Name: "all", URL: recv.srv.URL + "/all", Secrets: [][]byte{hookSecret, hookOld}},
			{Name: "outcomes", URL: recv.srv.URL + "/outcomes", Secrets: [][]byte{hookSecret},
				Types: []relay.EventType{relay.EventDelivered, relay.EventBounced}},
		},
		Backoff: func(int) time.Duration { return 20 * time.Millisecond },
	}
	runClient(t, c)

	const n = 10
	ids := map[string]bool{}
	for i := range n {
		rcpt := "user@example.com"
		if i%5 == 4 {
			rcpt = "gone@example.com"
		}
		id, err := c.Enqueue(ctx(t), testMessage(rcpt))
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	// Down: every event waits in the outboxes.
	for range 2000 {
		if st := c.WebhookStats(); st.Failures >= 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := recv.got("all"); len(got) != 0 {
		t.Fatalf("a failing endpoint kept %d events", len(got))
	}
	recv.setFail(false)

	// queued, attempt, and delivered or bounced, for each message.
	all := recv.waitEvents(t, "all", 3*n)
	outcomes := recv.waitEvents(t, "outcomes", n)
	if errs := recv.errs(); len(errs) > 0 {
		t.Fatalf("the receiver refused requests: %v", errs)
	}
	seenIDs := map[string]bool{}
	stage := map[string]int{} // per message: 1 queued, 2 attempt, 3 outcome
	order := map[string]int{"queued": 1, "attempt": 2, "delivered": 3, "bounced": 3}
	for _, e := range all {
		if len(e.ID) != 32 || seenIDs[e.ID] {
			t.Errorf("event id %q missing or repeated", e.ID)
		}
		seenIDs[e.ID] = true
		if !ids[e.MessageID] {
			t.Errorf("event for unknown message %q", e.MessageID)
		}
		o := order[e.Type]
		if o == 0 || o < stage[e.MessageID] {
			t.Errorf("message %s: %s after stage %d", e.MessageID, e.Type, stage[e.MessageID])
		}
		stage[e.MessageID] = o
	}
	var bounced int
	for _, e := range outcomes {
		switch e.Type {
		case "delivered":
		case "bounced":
			bounced++
			if e.Code != 550 || e.Recipient != "gone@example.com" {
				t.Errorf("bounced event %+v", e)
			}
		default:
			t.Errorf("endpoint outcomes got a %s event", e.Type)
		}
	}
	if bounced != n/5 {
		t.Errorf("%d bounces, want %d", bounced, n/5)
	}
	// The receiver has the events before the dispatcher has read its
	// answers and counted them: wait (bounded) for the counts.
	st := c.WebhookStats()
	for i := 0; i < 500 && st.Items < int64(4*n); i++ {
		time.Sleep(10 * time.Millisecond)
		st = c.WebhookStats()
	}
	if st.Items < int64(4*n) || st.Failures < 2 || st.Lost != 0 || len(st.Endpoints) != 2 {
		t.Errorf("stats %+v", st)
	}
}

// A webhook configuration that cannot work is refused before anything
// is sent or stored.
func TestWebhooksConfig(t *testing.T) {
	store := &queue.MemoryStore{}
	good := relay.Webhook{URL: "https://hooks.example.com/in", Secrets: [][]byte{hookSecret}}
	tests := []struct {
		name string
		o    relay.WebhookOptions
		want error
	}{
		{"no outbox", relay.WebhookOptions{Endpoints: []relay.Webhook{good}}, webhook.ErrInvalidConfig},
		{"short secret", relay.WebhookOptions{Outbox: store, Endpoints: []relay.Webhook{{URL: good.URL, Secrets: [][]byte{[]byte("short")}}}}, webhook.ErrInvalidEndpoint},
		{"no secret", relay.WebhookOptions{Outbox: store, Endpoints: []relay.Webhook{{URL: good.URL}}}, webhook.ErrInvalidEndpoint},
		{"bad url", relay.WebhookOptions{Outbox: store, Endpoints: []relay.Webhook{{URL: "ftp://x", Secrets: good.Secrets}}}, webhook.ErrInvalidEndpoint},
		{"twice", relay.WebhookOptions{Outbox: store, Endpoints: []relay.Webhook{good, good}}, webhook.ErrInvalidEndpoint},
		{"unknown type", relay.WebhookOptions{Outbox: store, Endpoints: []relay.Webhook{{URL: good.URL, Secrets: good.Secrets, Types: []relay.EventType{99}}}}, webhook.ErrInvalidEndpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &relay.Client{Store: store, Webhooks: tt.o}
			if _, err := c.Enqueue(ctx(t), testMessage("a@example.com")); !errors.Is(err, tt.want) {
				t.Errorf("Enqueue: %v, want %v", err, tt.want)
			}
			if err := c.Run(ctx(t)); !errors.Is(err, tt.want) {
				t.Errorf("Run: %v, want %v", err, tt.want)
			}
		})
	}
	jobs, err := store.Stats(ctx(t))
	if err != nil || jobs.Queued != 0 {
		t.Errorf("a refused configuration stored jobs: %+v, %v", jobs, err)
	}
}

// Events accepted while the endpoint is down survive a restart of the
// sender: a new Client over the reopened boltstore delivers every one.
func TestWebhooksRestart(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	recv := newHookReceiver(t)
	recv.setFail(true)
	path := filepath.Join(t.TempDir(), "queue.db")

	start := func(store *boltstore.Store) (*relay.Client, func()) {
		c := s.Client()
		c.Store = store
		c.Webhooks = relay.WebhookOptions{
			Outbox:    store,
			Endpoints: []relay.Webhook{{Name: "all", URL: recv.srv.URL, Secrets: [][]byte{hookSecret}}},
			Backoff:   func(int) time.Duration { return 20 * time.Millisecond },
		}
		rctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(rctx) }()
		return c, func() {
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return")
			}
		}
	}

	store, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	c, stop := start(store)
	const n = 8
	ids := map[string]bool{}
	for range n {
		id, err := c.Enqueue(ctx(t), testMessage("user@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		ids[id] = true
	}
	// Every message delivered, and its three events in the outbox.
	for i := 0; ; i++ {
		if i == 2000 {
			t.Fatalf("messages: %d delivered; outbox %+v", len(s.Messages()), c.WebhookStats())
		}
		st, err := store.Outboxes(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Messages()) == n && len(st) == 1 && st[0].Pending == 3*n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if got := recv.got("all"); len(got) != 0 {
		t.Fatalf("a failing endpoint kept %d events", len(got))
	}

	recv.setFail(false)
	store, err = boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	_, stop = start(store)
	defer stop()
	got := recv.waitEvents(t, "all", 3*n)
	per := map[string][]string{}
	for _, e := range got {
		if !ids[e.MessageID] {
			t.Errorf("event for unknown message %q", e.MessageID)
		}
		per[e.MessageID] = append(per[e.MessageID], e.Type)
	}
	for id := range ids {
		if want := []string{"queued", "attempt", "delivered"}; !slices.Equal(per[id], want) {
			t.Errorf("message %s: events %v, want %v", id, per[id], want)
		}
	}
	if errs := recv.errs(); len(errs) > 0 {
		t.Errorf("the receiver refused requests: %v", errs)
	}
}
