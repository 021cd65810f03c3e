package boltstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// enqueuer is one way to make a message durable.
type enqueuer struct {
	name string
	open func(b *testing.B) (fn func(i int) error, close func())
}

func fileEnqueuer(b *testing.B) (func(i int) error, func()) {
	dir := b.TempDir()
	var seq atomic.Int64
	return func(int) error {
		f, err := os.OpenFile(filepath.Join(dir, strconv.FormatInt(seq.Add(1), 10)), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
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
	}, func() {}
}

func storeEnqueuer(o Options) func(b *testing.B) (func(i int) error, func()) {
	return func(b *testing.B) (func(i int) error, func()) {
		s, err := OpenWith(filepath.Join(b.TempDir(), "q.db"), o)
		if err != nil {
			b.Fatal(err)
		}
		q := &queue.Queue{Store: s}
		return func(i int) error {
			_, err := q.Enqueue(context.Background(), queue.NewJob("a@example.org",
				[]string{"r" + strconv.Itoa(i) + "@example.com"}, benchMsg))
			return err
		}, func() { s.Close() }
	}
}

// rate runs fn from p goroutines for d and returns operations per second.
func rate(b *testing.B, p int, d time.Duration, fn func(i int) error) float64 {
	var n atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	start := time.Now()
	for range p {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := fn(int(n.Add(1))); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return float64(n.Load()) / time.Since(start).Seconds()
}

func median(x []float64) float64 {
	x = slices.Clone(x)
	slices.Sort(x)
	return x[len(x)/2]
}

// BenchmarkDurableEnqueue compares durable enqueues into the store — our
// group commit, the same without its short gathering wait, and bbolt's
// DB.Batch — with writing and fsyncing one file per message in the same
// directory, with 1 and 64 producers. The disk is shared and noisy, so the
// contenders take turns, 1 second each, for several rounds, and the
// medians and the median of the per-round ratios are printed.
func BenchmarkDurableEnqueue(b *testing.B) {
	contenders := []enqueuer{
		{"file-per-message", fileEnqueuer},
		{"group-commit", storeEnqueuer(Options{})},
		{"group-commit-nowait", storeEnqueuer(Options{noGather: true})},
		{"bolt-Batch", storeEnqueuer(Options{useBoltBatch: true})},
	}
	rounds, turn := 5, time.Second
	if testing.Short() {
		rounds, turn = 1, 300*time.Millisecond
	}
	for _, p := range []int{1, 64} {
		rates := make([][]float64, len(contenders))
		fns := make([]func(int) error, len(contenders))
		for i, c := range contenders {
			fn, closeFn := c.open(b)
			defer closeFn()
			fns[i] = fn
		}
		for range rounds {
			for i := range contenders {
				rates[i] = append(rates[i], rate(b, p, turn, fns[i]))
			}
		}
		fmt.Printf("durable enqueue, %2d producers, median of %d rounds:", p, rounds)
		for i, c := range contenders {
			ratio := make([]float64, rounds)
			for r := range rounds {
				ratio[r] = rates[i][r] / rates[0][r]
			}
			fmt.Printf(" %s %.0f/s", c.name, median(rates[i]))
			if i > 0 {
				fmt.Printf(" (%.1fx)", median(ratio))
			}
			b.ReportMetric(median(rates[i]), c.name+"-p"+strconv.Itoa(p)+"/s")
		}
		fmt.Println()
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
