package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/webhook"
)

// A Dispatcher delivering an outbox kept in a MemoryStore to a receiver
// that checks each request with VerifyRequest.
func Example() {
	secret := []byte("whsec_0123456789abcdef")

	// The receiving side.
	got := make(chan *webhook.Payload, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := webhook.VerifyRequest(r, 0, secret)
		if err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		// Store the events here, then answer: a 2xx removes them from
		// the outbox.
		w.WriteHeader(http.StatusNoContent)
		got <- p
	}))
	defer receiver.Close()

	// The sending side.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := &queue.MemoryStore{}
	d := &webhook.Dispatcher{
		Store:             store,
		Endpoints:         []webhook.Endpoint{{Name: "orders", URL: receiver.URL, Secrets: [][]byte{secret}}},
		AllowPrivateAddrs: true, // the receiver is on the loopback
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	now := time.Now()
	err := store.AppendOutbox(ctx,
		queue.OutboxEntry{Endpoint: "orders", Time: now, Data: []byte(`{"id":"a","status":"delivered"}`)},
		queue.OutboxEntry{Endpoint: "orders", Time: now, Data: []byte(`{"id":"b","status":"bounced"}`)},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	d.Notify()

	p := <-got
	fmt.Println(p.Endpoint, p.Seqs, p.DeliveryID())
	for _, e := range p.Events {
		fmt.Println(string(e))
	}
	cancel()
	<-done
	// Output:
	// orders [1 2] 1c168adb00d208e4-1-2
	// {"id":"a","status":"delivered"}
	// {"id":"b","status":"bounced"}
}

// The signature of the request shown in the package documentation.
func ExampleSign() {
	body := []byte(`{"endpoint":"orders","first":1,"last":2,"seqs":[1,2],"events":[{"id":"a"},{"id":"b"}]}`)
	fmt.Println(webhook.Sign(time.Unix(1700000000, 0), body, []byte("whsec_0123456789abcdef")))
	// Output: t=1700000000,v1=b82649e924cd35659162bbdcd48f4587ef43e72d545093792266222d77b3cafb
}

// A receiver checking that request with its secret, two minutes after it
// was signed; then the same request tampered with, and replayed later.
func ExampleVerify() {
	header := "t=1700000000,v1=b82649e924cd35659162bbdcd48f4587ef43e72d545093792266222d77b3cafb"
	body := []byte(`{"endpoint":"orders","first":1,"last":2,"seqs":[1,2],"events":[{"id":"a"},{"id":"b"}]}`)
	secret := []byte("whsec_0123456789abcdef")
	now := time.Unix(1700000000, 0).Add(2 * time.Minute) // the receiver's clock

	fmt.Println(webhook.Verify(header, body, now, 0, secret))

	tampered := []byte(`{"endpoint":"orders","first":1,"last":2,"seqs":[1,2],"events":[{"id":"a"},{"id":"c"}]}`)
	err := webhook.Verify(header, tampered, now, 0, secret)
	fmt.Println(errors.Is(err, webhook.ErrBadSignature))

	err = webhook.Verify(header, body, now.Add(time.Hour), 0, secret)
	fmt.Println(errors.Is(err, webhook.ErrExpired))
	// Output:
	// <nil>
	// true
	// true
}
