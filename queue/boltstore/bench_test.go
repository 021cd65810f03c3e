package boltstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

var benchMsg = func() []byte {
	b := []byte("From: a@example.org\r\nTo: b@example.com\r\nSubject: benchmark\r\n\r\n")
	for len(b) < 1024 {
		b = append(b, "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"...)
	}
	return b
}()

// produce runs n operations over p goroutines and returns operations per
// second.
func produce(b *testing.B, p int, fn func(i int) error) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for range p {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := fn(i); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	rate := float64(b.N) / el.Seconds()
	b.ReportMetric(rate, "msgs/s")
	return rate
}

// BenchmarkDurableEnqueue compares durable enqueues into the store (group
// commit, and bbolt's DB.Batch) with writing and fsyncing one file per
// message in the same directory, with 1 and 64 producers, and prints the
// ratios.
func BenchmarkDurableEnqueue(b *testing.B) {
	rates := map[string]float64{}
	for _, p := range []int{1, 64} {
		b.Run("file-per-message/producers="+strconv.Itoa(p), func(b *testing.B) {
			dir := b.TempDir()
			rates["file"+strconv.Itoa(p)] = produce(b, p, func(i int) error {
				f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(i)), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
				if err != nil {
					return err
				}
				if _, err := f.Write(benchMsg); err != nil {
					return err
				}
				if err := f.Sync(); err != nil {
					return err
				}
				return f.Close()
			})
		})
		for _, mode := range []string{"group-commit", "bolt-batch"} {
			b.Run(mode+"/producers="+strconv.Itoa(p), func(b *testing.B) {
				s, err := OpenWith(filepath.Join(b.TempDir(), "q.db"), Options{useBoltBatch: mode == "bolt-batch"})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				q := &queue.Queue{Store: s}
				rates[mode+strconv.Itoa(p)] = produce(b, p, func(i int) error {
					_, err := q.Enqueue(context.Background(), queue.NewJob("a@example.org",
						[]string{"r" + strconv.Itoa(i) + "@example.com"}, benchMsg))
					return err
				})
			})
		}
	}
	for _, p := range []string{"1", "64"} {
		if rates["file"+p] > 0 {
			fmt.Printf("durable enqueue, %2s producers: file-per-message %8.0f/s, group commit %8.0f/s (%.1fx), bolt Batch %8.0f/s (%.1fx)\n",
				p, rates["file"+p], rates["group-commit"+p], rates["group-commit"+p]/rates["file"+p],
				rates["bolt-batch"+p], rates["bolt-batch"+p]/rates["file"+p])
		}
	}
}

// BenchmarkEnqueueClaimFinish measures a job's whole life in the durable
// store with 64 producers: enqueue, claim, finish delivered.
func BenchmarkEnqueueClaimFinish(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "q.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	produce(b, 64, func(i int) error {
		j := queue.NewJob("", []string{"r" + strconv.Itoa(i) + "@example.com"}, benchMsg)
		j.ID, j.RoutingKey, j.NextAttempt = queue.NewID(now), "example.com", now
		if err := s.Put(ctx, j); err != nil {
			return err
		}
		jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "b", Max: 1, Now: now, Lease: time.Hour})
		if err != nil || len(jobs) == 0 {
			return err
		}
		jobs[0].Recipients[0].State = queue.Delivered
		return s.Finish(ctx, jobs[0])
	})
}
