package pgstore_test

import (
	"context"
	"log"
	"os"
	"os/signal"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/pgstore"
)

// Several instances of a service share one queue: each opens the same
// database and runs a queue.Queue on it. The per-domain cap (PerKey) holds
// across all of them.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	store, err := pgstore.Open(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err) // e.g. "pgstore: connect to database: ..."
	}
	defer store.Close()

	q := &queue.Queue{
		Store:  store,
		PerKey: 4, // connections per destination domain, across every instance
		Deliverer: queue.DelivererFunc(func(ctx context.Context, job *queue.Job) []queue.Outcome {
			// relay.Client implements queue.Deliverer; this one pretends.
			return queue.Outcomes(job, queue.Delivered, "250 ok")
		}),
	}
	id, err := q.Enqueue(ctx, queue.NewJob("news@example.org", []string{"ann@example.com"},
		[]byte("Subject: hello\r\n\r\nHello.\r\n")))
	if err != nil {
		log.Fatal(err)
	}
	log.Println("queued", id)
	if err := q.Run(ctx); err != context.Canceled {
		log.Fatal(err)
	}
}

// New puts the queue on a pool the application already has, in a schema of
// its choice.
func ExampleNew() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := pgstore.New(ctx, pool, pgstore.Options{Schema: "mail_queue"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close() // leaves the pool open
	st, err := store.Stats(ctx)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%d queued, %d in flight, %d held", st.Queued, st.Active, st.Held)
}
