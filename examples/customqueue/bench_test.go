package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/boltstore"
)

// BenchmarkStores measures a job's life — Put, Claim, Finish delivered,
// each durable — in the spool and in boltstore, the library's durable
// default, in the same run, and prints the spool's rate as a fraction of
// boltstore's. A 5 KB message, 1 and 16 goroutines.
func BenchmarkStores(b *testing.B) {
	for _, p := range []int{1, 16} {
		rates := map[string]float64{}
		for _, name := range []string{"boltstore", "spool"} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", name, p), func(b *testing.B) {
				var s queue.Store
				var err error
				if name == "spool" {
					s, err = OpenSpool(b.TempDir())
				} else {
					s, err = boltstore.Open(filepath.Join(b.TempDir(), "q.db"))
				}
				if err != nil {
					b.Fatal(err)
				}
				defer s.(interface{ Close() error }).Close()
				rates[name] = cycle(b, s, p)
			})
		}
		if rates["boltstore"] > 0 {
			fmt.Printf("goroutines=%d: spool %.0f jobs/s, boltstore %.0f jobs/s, spool/boltstore = %.2fx\n",
				p, rates["spool"], rates["boltstore"], rates["spool"]/rates["boltstore"])
		}
	}
}

// cycle runs b.N jobs through s from p goroutines and returns jobs/s.
func cycle(b *testing.B, s queue.Store, p int) float64 {
	msg := make([]byte, 5*1024)
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
				j.ID, j.RoutingKey, j.NextAttempt = queue.NewID(now), "k"+strconv.FormatInt(i%50, 10), now
				if err := s.Put(ctx, j); err != nil {
					b.Error(err)
					return
				}
				jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "b", Max: 1, Now: now, Lease: time.Hour})
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
	rate := float64(b.N) / time.Since(start).Seconds()
	b.ReportMetric(rate, "jobs/s")
	return rate
}
