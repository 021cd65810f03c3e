package boltstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// TestLeaseAtPutRecovered: a job leased at Put whose attempt never
// finishes (the process dies: here the store is closed under it) is queued
// again when the file is reopened, and delivered then.
func TestLeaseAtPutRecovered(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	started, block := make(chan string, 1), make(chan struct{})
	q := &queue.Queue{Store: s, Workers: 2, // one idle whatever the first job's worker does
		Deliverer: queue.DelivererFunc(func(ctx context.Context, j *queue.Job) []queue.Outcome {
			started <- j.ID
			<-block
			return queue.Outcomes(j, queue.Delivered, "250 ok")
		}),
	}
	rctx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	// Run is running once it has claimed a first job.
	warm := queue.NewJob("", []string{"w@example.com"}, []byte("w"))
	if _, err := q.Enqueue(ctx, warm); err != nil {
		t.Fatal(err)
	}
	go func() { ran <- q.Run(rctx) }()
	<-started
	block <- struct{}{}
	waitStats(t, s, queue.Stats{})

	id, err := q.Enqueue(ctx, queue.NewJob("", []string{"r@example.com"}, []byte("m")))
	if err != nil {
		t.Fatal(err)
	}
	if got := <-started; got != id {
		t.Fatalf("attempt of %s, want %s", got, id)
	}
	j, err := s.Get(ctx, id)
	if err != nil || j.Lease.Token == "" {
		t.Fatalf("Get of the job in its attempt: %+v, %v; want a lease", j, err)
	}
	// The "crash": the file is closed with the lease recorded and no Finish.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	close(block)
	stop()
	<-ran

	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if st, err := s2.Stats(ctx); err != nil || st != (queue.Stats{Queued: 1}) {
		t.Fatalf("Stats after reopening: %+v, %v; want the job queued", st, err)
	}
	delivered := make(chan string, 2)
	q2 := &queue.Queue{Store: s2, Deliverer: queue.DelivererFunc(func(ctx context.Context, j *queue.Job) []queue.Outcome {
		delivered <- j.ID
		return queue.Outcomes(j, queue.Delivered, "250 ok")
	})}
	rctx2, stop2 := context.WithCancel(ctx)
	defer stop2()
	go q2.Run(rctx2)
	if got := <-delivered; got != id {
		t.Fatalf("delivered %s after reopening, want %s", got, id)
	}
	waitStats(t, s2, queue.Stats{})
}

// waitStats waits for s to count want; the deadline only stops a hung test.
func waitStats(t *testing.T, s *Store, want queue.Stats) {
	t.Helper()
	for range 2000 {
		st, err := s.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for stats %+v", want)
}
