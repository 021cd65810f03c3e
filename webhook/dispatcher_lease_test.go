package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// TestTwoDispatchers runs two Dispatchers over one store and endpoint, as
// two processes would: the receiver never has two POSTs at once, and gets
// every event in order.
func TestTwoDispatchers(t *testing.T) {
	store := &queue.MemoryStore{}
	var inFlight, most atomic.Int64
	rc := &receiver{}
	rc.serve = func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m; m = most.Load() {
			if most.CompareAndSwap(m, n) {
				break
			}
		}
		if _, ok := rc.keep(w, r, testSecret); ok {
			time.Sleep(time.Millisecond) // room for another POST to overlap, if one could
			w.WriteHeader(http.StatusNoContent)
		}
	}
	rc.start(t)
	ep := Endpoint{Name: "shared", URL: rc.URL("/"), Secrets: [][]byte{testSecret}}
	var ds []*Dispatcher
	for _, owner := range []string{"a", "b"} {
		d := newDispatcher(store, nil, ep)
		d.Owner = owner
		d.BatchSize = 3
		d.PollInterval = time.Millisecond
		ds = append(ds, d)
	}

	var data []string
	add := func(n int) {
		var batch []string
		for range n {
			batch = append(batch, fmt.Sprintf(`{"id":%d}`, len(data)+1))
			data = append(data, batch[len(batch)-1])
		}
		appendOutbox(t, store, entries("shared", batch...)...)
	}
	add(30)
	for _, d := range ds {
		run(t, d)
	}
	for range 10 {
		add(3)
		ds[len(data)%2].Notify()
	}
	waitFor(t, "every event, acknowledged", func() bool {
		return rc.distinct() == len(data) && outbox(t, store, "shared").Pending == 0
	})
	if n := most.Load(); n != 1 {
		t.Errorf("the receiver had %d POSTs at once, want 1", n)
	}
	checkSequence(t, "shared", rc.deliveries(), numbered(data))
	var items int64
	for _, d := range ds {
		items += d.Stats().Items
	}
	if items < int64(len(data)) {
		t.Errorf("the Dispatchers count %d items delivered, want at least %d", items, len(data))
	}
}

// TestStoreClosed checks that Run returns an error wrapping
// queue.ErrClosed when the store is closed under it.
func TestStoreClosed(t *testing.T) {
	store := &queue.MemoryStore{}
	d := newDispatcher(store, nil, Endpoint{Name: "x", URL: "http://127.0.0.1:1/", Secrets: [][]byte{testSecret}})
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	store.Close()
	select {
	case err := <-done:
		if !errors.Is(err, queue.ErrClosed) {
			t.Errorf("Run = %v, want queue.ErrClosed", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return when the store was closed")
	}
}

// TestPostWithinLease checks that a POST is over before the lease on its
// batch ends, however long the claim took, so that no other sender can
// take the batch while the POST may still be under way. It compares the
// POST's deadline with the lease, and measures nothing.
func TestPostWithinLease(t *testing.T) {
	const timeout = 200 * time.Millisecond
	store := newSpyStore()
	var mu sync.Mutex
	var until []time.Time
	store.claimed = func(b *queue.OutboxBatch) {
		time.Sleep(timeout * 3 / 4) // a slow store: the claim eats most of the lease's margin
		mu.Lock()
		defer mu.Unlock()
		until = append(until, b.Until)
	}
	deadlines := make(chan time.Time, 1)
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		dl, ok := r.Context().Deadline()
		if !ok {
			t.Error("a POST without a deadline")
		}
		select {
		case deadlines <- dl:
		default:
		}
		return &http.Response{StatusCode: http.StatusNoContent, Status: "204 No Content", Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})}
	d := newDispatcher(store, nil, Endpoint{Name: "slow-store", URL: "http://127.0.0.1:1/", Secrets: [][]byte{testSecret}})
	d.Client = client
	d.Timeout = timeout
	appendOutbox(t, store, entries("slow-store", `{"id":"a"}`)...)
	run(t, d)
	var deadline time.Time
	select {
	case deadline = <-deadlines:
	case <-time.After(30 * time.Second):
		t.Fatal("no POST")
	}
	mu.Lock()
	defer mu.Unlock()
	// The lease is Timeout and half as much again from the claim; the
	// POST must end Timeout after the claim at the latest, leaving the
	// rest of the lease for the removal of the batch.
	if latest := until[0].Add(-timeout / 2); deadline.After(latest) {
		t.Errorf("the POST may go on %v past the claim's Timeout, into the last half-Timeout of the lease (until %v)", deadline.Sub(latest), until[0])
	}
}

// roundTripFunc is an http.RoundTripper that calls itself.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
