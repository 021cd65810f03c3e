package queue_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// BenchmarkMemoryStore measures a job's life in MemoryStore: Put, Claim,
// Finish delivered, with 1 and 64 goroutines.
func BenchmarkMemoryStore(b *testing.B) {
	msg := make([]byte, 1024)
	for _, p := range []int{1, 64} {
		b.Run("enqueue+claim+ack/goroutines="+strconv.Itoa(p), func(b *testing.B) {
			s := &queue.MemoryStore{}
			ctx := context.Background()
			now := time.Now()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range p {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						j := queue.NewJob("", []string{"r@example.com"}, msg)
						j.ID, j.RoutingKey, j.NextAttempt = strconv.FormatInt(i, 10), "k"+strconv.FormatInt(i%50, 10), now
						if err := s.Put(ctx, j); err != nil {
							b.Error(err)
							return
						}
						jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "b", Max: 1, PerKey: 4, Now: now, Lease: time.Hour})
						if err != nil {
							b.Error(err)
							return
						}
						for _, j := range jobs {
							j.Recipients[0].State = queue.Delivered
							if err := s.Finish(ctx, j); err != nil {
								b.Error(err)
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
		})
	}
}

// BenchmarkQueueRun measures the whole queue on MemoryStore: Enqueue from
// 8 producers, Run delivering to a Deliverer that accepts at once.
func BenchmarkQueueRun(b *testing.B) {
	var delivered atomic.Int64
	done := make(chan struct{})
	q := &queue.Queue{
		Store: &queue.MemoryStore{}, Workers: 64, PerKey: -1,
		Deliverer: queue.DelivererFunc(func(ctx context.Context, j *queue.Job) []queue.Outcome {
			return queue.Outcomes(j, queue.Delivered, "250 ok")
		}),
		Hooks: queue.Hooks{Delivered: func(*queue.Job, queue.Recipient) {
			if delivered.Add(1) == int64(b.N) {
				close(done)
			}
		}},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(ctx)
	msg := make([]byte, 1024)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := q.Enqueue(ctx, queue.NewJob("", []string{"r@example.com"}, msg)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	<-done
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
}
