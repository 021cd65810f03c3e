package boltstore

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
)

// durableRun enqueues n messages to one domain into s from 20 producers
// while a queue over s runs with a deliverer that takes delay and reports
// every recipient delivered, at most perKey at once (-1: no cap), and
// returns the messages per second from the first Enqueue to the
// last delivery finished.
func durableRun(b *testing.B, s queue.Store, n, perKey int, delay time.Duration) float64 {
	ctx := context.Background()
	var finished atomic.Int64
	all := make(chan struct{})
	q := &queue.Queue{Store: s, PerKey: perKey,
		Deliverer: queue.DelivererFunc(func(ctx context.Context, j *queue.Job) []queue.Outcome {
			if delay > 0 {
				time.Sleep(delay)
			}
			return queue.Outcomes(j, queue.Delivered, "250 ok")
		}),
	}
	// Stats after the last Finish: the queue's hooks run after it.
	q.Hooks.Delivered = func(*queue.Job, queue.Recipient) {
		if finished.Add(1) == int64(n) {
			close(all)
		}
	}
	rctx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- q.Run(rctx) }()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 20 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				j := queue.NewJob("a@example.org", []string{"r" + strconv.FormatInt(i, 10) + "@example.com"}, benchMsg)
				if _, err := q.Enqueue(ctx, j); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	<-all
	el := time.Since(start)
	stop()
	<-ran
	return float64(n) / el.Seconds()
}

// BenchmarkDurableRun measures the durable path at the queue's level:
// Enqueue into a boltstore file (fsynced) from 20 producers while Run
// delivers, against the same over a MemoryStore, with a deliverer that
// takes no time and no per-key cap ("instant"), and with one that takes
// 1 ms, 20 at most at once as relay's Direct transport allows per MX host
// ("smtp-like"). The contenders alternate for 3 rounds (1 with -short);
// the medians, their ratio and the boltstore commits per message are
// printed.
//
//	go test -run XXX -bench DurableRun -benchtime 1x ./queue/boltstore
func BenchmarkDurableRun(b *testing.B) {
	n, rounds := 5000, 3
	if testing.Short() {
		n, rounds = 1000, 1
	}
	for _, c := range []struct {
		name   string
		perKey int
		delay  time.Duration
	}{{"instant", -1, 0}, {"smtp-like", 20, time.Millisecond}} {
		var bolt, mem, ratio, commits, writes, busy []float64
		for r := range rounds {
			s, err := Open(filepath.Join(b.TempDir(), c.name+strconv.Itoa(r)+".db"))
			if err != nil {
				b.Fatal(err)
			}
			rb := durableRun(b, s, n, c.perKey, c.delay)
			commits = append(commits, float64(s.commits.Load())/float64(n))
			writes = append(writes, float64(s.writes.Load())/float64(s.commits.Load()))
			busy = append(busy, float64(s.busy.Load())/1e6/float64(s.commits.Load()))
			s.Close()
			rm := durableRun(b, &queue.MemoryStore{}, n, c.perKey, c.delay)
			bolt, mem, ratio = append(bolt, rb), append(mem, rm), append(ratio, rb/rm)
		}
		fmt.Printf("durable run %-9s %d messages, 20 producers, median of %d rounds: boltstore %.0f/s, MemoryStore %.0f/s (%.2fx); %.2f commits per message, %.1f writes per commit, %.2f ms per commit\n",
			c.name+",", n, rounds, median(bolt), median(mem), median(ratio), median(commits), median(writes), median(busy))
		b.ReportMetric(median(bolt), c.name+"-msgs/s")
		b.ReportMetric(median(commits), c.name+"-commits/msg")
	}
}
