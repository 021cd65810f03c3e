package boltstore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// memFigures returns the Go heap in use and, from /proc/self/smaps_rollup,
// the resident set and its anonymous and file-backed parts, in MB.
func memFigures() string {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out := fmt.Sprintf("heap in use %6.1f MB", float64(ms.HeapInuse)/1e6)
	f, err := os.Open("/proc/self/smaps_rollup")
	if err != nil {
		return out
	}
	defer f.Close()
	kb := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 3 && fields[2] == "kB" {
			v, _ := strconv.ParseFloat(fields[1], 64)
			kb[strings.TrimSuffix(fields[0], ":")] = v
		}
	}
	return out + fmt.Sprintf(", RSS %6.1f MB (anonymous %6.1f MB; file-backed %6.1f MB: mapped pages of the queue file (and the binary), reclaimable by the kernel)",
		kb["Rss"]/1e3, kb["Anonymous"]/1e3, (kb["Rss"]-kb["Anonymous"])/1e3)
}

// BenchmarkMillionJobs fills a boltstore file with 1,000,000 small jobs
// and runs the queue over it, printing the heap and RSS as the queue grows
// and while it runs. It takes a minute and ~1.5 GB of disk, so it runs only
// with MXRELAY_BENCH_MILLION=1:
//
//	MXRELAY_BENCH_MILLION=1 go test -run XXX -bench MillionJobs -benchtime 1x ./queue/boltstore
func BenchmarkMillionJobs(b *testing.B) {
	if os.Getenv("MXRELAY_BENCH_MILLION") == "" {
		b.Skip("set MXRELAY_BENCH_MILLION=1 to run (about a minute, ~1.5 GB of disk)")
	}
	const total = 1_000_000
	// Filling without fsync keeps the run short; memory does not depend on it.
	s, err := OpenWith(filepath.Join(b.TempDir(), "q.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	q := &queue.Queue{Store: s}
	msg := []byte("From: a@example.org\r\nTo: b@example.com\r\nSubject: small\r\n\r\nhello\r\n")
	fmt.Printf("empty:        %s\n", memFigures())
	var n atomic.Int64
	start := time.Now()
	for _, mark := range []int64{250_000, 500_000, 1_000_000} {
		var wg sync.WaitGroup
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := n.Add(1)
					if i > mark {
						n.Add(-1)
						return
					}
					// 500 destination domains.
					j := queue.NewJob("a@example.org", []string{fmt.Sprintf("u%d@d%d.example", i, i%500)}, msg)
					if _, err := q.Enqueue(ctx, j); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		fmt.Printf("%7d queued: %s (%.0f enqueues/s)\n", mark, memFigures(), float64(mark)/time.Since(start).Seconds())
	}
	fi, _ := os.Stat(s.Path())
	fmt.Printf("file size %.0f MB for %d jobs\n", float64(fi.Size())/1e6, total)

	// Run the queue: every attempt defers, so jobs keep cycling through
	// claim and finish while a million wait.
	var attempts atomic.Int64
	q.Workers, q.PerKey = 64, 4
	q.Deliverer = queue.DelivererFunc(func(ctx context.Context, j *queue.Job) []queue.Outcome {
		attempts.Add(1)
		time.Sleep(time.Millisecond)
		return queue.Outcomes(j, queue.Deferred, "451 4.3.0 try later")
	})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { q.Run(rctx); close(done) }()
	for i := 1; i <= 4; i++ {
		time.Sleep(3 * time.Second)
		fmt.Printf("running %2ds:  %s (%d attempts so far)\n", 3*i, memFigures(), attempts.Load())
	}
	cancel()
	<-done
	st, _ := s.Stats(ctx)
	fmt.Printf("after run: %+v\n", st)

	// Reopening checks every page of the file before bbolt maps it.
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	start = time.Now()
	s2, err := OpenWith(s.Path(), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	fmt.Printf("reopen:       %v\n", time.Since(start))
	s2.Close()
}
