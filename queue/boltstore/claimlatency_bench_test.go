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

// BenchmarkClaimLatency fills one store with due jobs of 500 domains and
// prints, at 10,000, 100,000 and (with MXRELAY_BENCH_MILLION=1) 1,000,000
// queued, how long a Claim of one job takes, and a Claim and Finish of 64
// (a worker pool's refill): median and 99th percentile of 200 of each, the
// claimed jobs finished with a retry due at once so that the queue keeps
// its size. The file is written without fsync, so the figures are the
// index's cost, not the disk's.
//
//	MXRELAY_BENCH_MILLION=1 go test -run XXX -bench ClaimLatency -benchtime 1x ./queue/boltstore
func BenchmarkClaimLatency(b *testing.B) {
	marks := []int{10_000, 100_000}
	if os.Getenv("MXRELAY_BENCH_MILLION") != "" {
		marks = append(marks, 1_000_000)
	}
	s, err := OpenWith(filepath.Join(b.TempDir(), "q.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	// Each job due at a time of its own, as enqueued jobs are (Enqueue
	// stamps them with its clock), all before now.
	var seq atomic.Int64
	base := now.Add(-time.Hour)
	msg := []byte("From: a@example.org\r\nTo: b@example.com\r\nSubject: small\r\n\r\nhello\r\n")
	var n atomic.Int64
	for _, mark := range marks {
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for {
					i := n.Add(1)
					if i > int64(mark) {
						n.Add(-1)
						return
					}
					d := "d" + strconv.FormatInt(i%500, 10) + ".example"
					j := queue.NewJob("a@example.org", []string{"u" + strconv.FormatInt(i, 10) + "@" + d}, msg)
					j.ID, j.RoutingKey, j.Created = queue.NewID(now), d, now
					j.NextAttempt = base.Add(time.Duration(seq.Add(1)))
					if err := s.Put(ctx, j); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		one := claimTimes(b, s, 1, now, base, &seq)
		many := claimTimes(b, s, 64, now, base, &seq)
		fmt.Printf("claim latency, %7d queued: Claim of 1 median %v p99 %v; Claim of 64 median %v p99 %v; %s\n",
			mark, one[len(one)/2], one[len(one)*99/100], many[len(many)/2], many[len(many)*99/100], memFigures())
	}
}

// claimTimes claims max jobs 200 times, finishing them with a retry due
// at once, and returns the Claims' durations, sorted.
func claimTimes(b *testing.B, s *Store, max int, now, base time.Time, seq *atomic.Int64) []time.Duration {
	ctx := context.Background()
	var out []time.Duration
	for range 200 {
		start := time.Now()
		jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "b", Max: max, PerKey: 10, Now: now, Lease: time.Hour})
		out = append(out, time.Since(start))
		if err != nil || len(jobs) != max {
			b.Fatalf("Claim: %d jobs, %v; want %d", len(jobs), err, max)
		}
		for _, j := range jobs {
			// Due again at once, last: the queue keeps its size.
			j.Attempts, j.NextAttempt = 1, base.Add(time.Duration(seq.Add(1)))
			if err := s.Finish(ctx, j); err != nil {
				b.Fatal(err)
			}
		}
	}
	slices.Sort(out)
	return out
}
