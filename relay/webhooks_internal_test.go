package relay

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// blockingOutbox holds every AppendOutbox until released.
type blockingOutbox struct {
	queue.MemoryStore
	release chan struct{}
	mu      sync.Mutex
	n       int
}

func (b *blockingOutbox) AppendOutbox(ctx context.Context, entries ...queue.OutboxEntry) error {
	<-b.release
	b.mu.Lock()
	b.n += len(entries)
	b.mu.Unlock()
	return b.MemoryStore.AppendOutbox(ctx, entries...)
}

// More events than the buffer holds, while the store is stuck: emitting
// waits for room, nothing is dropped, and everything is appended once the
// store moves again.
func TestWebhookFeederBackpressure(t *testing.T) {
	store := &blockingOutbox{release: make(chan struct{})}
	c := &Client{Webhooks: WebhookOptions{Outbox: store, Endpoints: []Webhook{
		{URL: "https://hooks.example.com/in", Secrets: [][]byte{[]byte("whsec_0123456789abcdef")}}}}}
	if _, err := c.webhookSetup(); err != nil {
		t.Fatal(err)
	}
	const n = 3 * WebhookBuffer
	emitted := make(chan struct{})
	go func() {
		defer close(emitted)
		for range n {
			c.emit(Event{Type: EventDelivered, Time: time.Now(), Recipient: "a@example.com"})
		}
	}()
	// The emitter fills the buffer and waits.
	for i := 0; len(c.hooks.ch) < WebhookBuffer; i++ {
		if i == 3000 {
			t.Fatalf("the buffer holds %d, want %d", len(c.hooks.ch), WebhookBuffer)
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-emitted:
		t.Fatal("all events emitted while the store was stuck: some were dropped")
	default:
	}
	close(store.release)
	select {
	case <-emitted:
	case <-time.After(30 * time.Second):
		t.Fatal("the emitter never got room: the feeder is stuck")
	}
	flush, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.flushWebhooks(flush)
	store.mu.Lock()
	got := store.n
	store.mu.Unlock()
	if got != n || c.WebhookStats().Lost != 0 {
		t.Errorf("%d of %d events appended, %d lost", got, n, c.WebhookStats().Lost)
	}
}
