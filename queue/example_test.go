package queue_test

import (
	"context"
	"fmt"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// A queue on a MemoryStore with a Deliverer that accepts everything.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	q := &queue.Queue{
		Store: &queue.MemoryStore{},
		Deliverer: queue.DelivererFunc(func(ctx context.Context, j *queue.Job) []queue.Outcome {
			return queue.Outcomes(j, queue.Delivered, "250 2.0.0 ok")
		}),
		Hooks: queue.Hooks{
			Delivered: func(j *queue.Job, r queue.Recipient) {
				fmt.Println("delivered to", r.Addr, "for order", j.Metadata["order"])
				close(done)
			},
		},
	}
	go q.Run(ctx)

	j := queue.NewJob("shop@example.org", []string{"alice@example.com"},
		[]byte("Subject: your order\r\n\r\nThanks!\r\n"))
	j.Metadata = map[string]string{"order": "1234"}
	if _, err := q.Enqueue(ctx, j); err != nil {
		fmt.Println(err)
		return
	}
	<-done
	// Output: delivered to alice@example.com for order 1234
}

// The default retry schedule, without jitter.
func ExampleDefaultRetryPolicy() {
	p := queue.DefaultRetryPolicy()
	p.Jitter = 0
	created := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := created
	for attempt := 1; ; attempt++ {
		at, ok := p.Retry(&queue.Job{Created: created, Attempts: attempt}, now)
		if !ok {
			fmt.Printf("attempt %d fails after %v: expired\n", attempt, now.Sub(created))
			break
		}
		if attempt <= 7 {
			fmt.Printf("attempt %d fails: wait %v\n", attempt, at.Sub(now))
		}
		now = at
	}
	// Output:
	// attempt 1 fails: wait 5m0s
	// attempt 2 fails: wait 10m0s
	// attempt 3 fails: wait 20m0s
	// attempt 4 fails: wait 40m0s
	// attempt 5 fails: wait 1h20m0s
	// attempt 6 fails: wait 2h0m0s
	// attempt 7 fails: wait 2h0m0s
	// attempt 65 fails after 120h0m0s: expired
}

// Review before sending: a held job waits until it is released.
func ExampleQueue_Hold() {
	ctx := context.Background()
	q := &queue.Queue{Store: &queue.MemoryStore{}}
	j := queue.NewJob("news@example.org", []string{"bob@example.com"}, []byte("Subject: draft\r\n\r\n"))
	j.Held = true
	id, _ := q.Enqueue(ctx, j)
	st, _ := q.Stats(ctx)
	fmt.Printf("held %d, queued %d\n", st.Held, st.Queued)
	_ = q.Release(ctx, id)
	st, _ = q.Stats(ctx)
	fmt.Printf("held %d, queued %d\n", st.Held, st.Queued)
	// Output:
	// held 1, queued 0
	// held 0, queued 1
}
