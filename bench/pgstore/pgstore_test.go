// Package pgstore_test compares queue/pgstore with queue/boltstore in one
// run: durable enqueues per second and claim+finish per second, with 1 and
// 32 workers. It needs MXRELAY_TEST_POSTGRES (a DSN) and skips without it:
//
//	MXRELAY_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test -run '^$' -bench . -benchtime 3000x ./pgstore/
package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/boltstore"
	"github.com/mxrelay/mxrelay/queue/pgstore"
)

var benchMsg = func() []byte {
	b := []byte("From: a@example.org\r\nTo: b@example.com\r\nSubject: benchmark\r\n\r\n")
	for len(b) < 1024 {
		b = append(b, "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"...)
	}
	return b
}()

// run spreads n operations over p goroutines and returns operations per
// second.
func run(b *testing.B, n, p int, fn func(i int) error) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for range p {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
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
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return float64(n) / el.Seconds()
}

func job(i int, now time.Time) *queue.Job {
	key := "k" + strconv.Itoa(i%64) + ".example"
	j := queue.NewJob("a@example.org", []string{"r" + strconv.Itoa(i) + "@" + key}, benchMsg)
	j.ID, j.Created, j.NextAttempt, j.RoutingKey = queue.NewID(now), now, now, key
	return j
}

// open returns a fresh store of the kind named, closed (and its schema
// dropped) when b ends.
func open(b *testing.B, kind string) queue.Store {
	if kind == "boltstore" {
		bolt, err := boltstore.Open(filepath.Join(b.TempDir(), "q.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { bolt.Close() })
		return bolt
	}
	dsn := os.Getenv("MXRELAY_TEST_POSTGRES")
	if dsn == "" {
		b.Skip("bench/pgstore: MXRELAY_TEST_POSTGRES is not set (a PostgreSQL DSN)")
	}
	ctx := context.Background()
	var r [6]byte
	_, _ = rand.Read(r[:])
	schema := "mxrelay_bench_" + hex.EncodeToString(r[:])
	pg, err := pgstore.OpenWith(ctx, dsn, pgstore.Options{Schema: schema})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		pg.Close()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			b.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return pg
}

// BenchmarkStores measures, for pgstore and boltstore in the same run,
// durable enqueues/s and claim+finish/s with 1 and 32 workers (and
// claim+finish under a per-key cap of 4 over 64 keys, as queue.Queue
// claims by default), then prints the figures side by side. Each case
// handles b.N jobs.
func BenchmarkStores(b *testing.B) {
	type key struct{ op, store string }
	rates := map[key]float64{}
	ops := []struct {
		name    string
		workers int
		perKey  int
		claim   bool
	}{
		{"enqueue", 1, 0, false},
		{"enqueue", 32, 0, false},
		{"claim+finish", 1, 0, true},
		{"claim+finish", 32, 0, true},
		{"claim+finish perkey=4", 1, 4, true},
		{"claim+finish perkey=4", 32, 4, true},
	}
	for _, op := range ops {
		name := fmt.Sprintf("%s/workers=%d", op.name, op.workers)
		for _, sn := range []string{"pgstore", "boltstore"} {
			b.Run(sn+"/"+name, func(b *testing.B) {
				s := open(b, sn)
				ctx := context.Background()
				now := time.Now()
				var rate float64
				if !op.claim {
					b.ResetTimer()
					rate = run(b, b.N, op.workers, func(i int) error { return s.Put(ctx, job(i, now)) })
				} else {
					run(b, b.N, 32, func(i int) error { return s.Put(ctx, job(i, now)) })
					b.ResetTimer()
					// Each worker claims one job at a time and finishes it,
					// until b.N jobs are done; an empty claim (the remaining
					// jobs leased by other workers) does not count.
					var done, progress atomic.Int64
					start := time.Now()
					progress.Store(start.UnixNano())
					run(b, op.workers, op.workers, func(int) error {
						for done.Load() < int64(b.N) {
							jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "bench", Max: 1, PerKey: op.perKey,
								Now: time.Now(), Lease: time.Hour})
							if err != nil {
								return err
							}
							if len(jobs) == 0 {
								if time.Since(time.Unix(0, progress.Load())) > time.Minute {
									return fmt.Errorf("%s: nothing to claim for a minute, %d done", sn, done.Load())
								}
								time.Sleep(200 * time.Microsecond)
								continue
							}
							for _, j := range jobs {
								j.Recipients[0].State = queue.Delivered
								if err := s.Finish(ctx, j); err != nil {
									return err
								}
								done.Add(1)
								progress.Store(time.Now().UnixNano())
							}
						}
						return nil
					})
					rate = float64(done.Load()) / time.Since(start).Seconds()
				}
				b.StopTimer()
				b.ReportMetric(rate, "ops/s")
				rates[key{name, sn}] = rate
			})
		}
	}
	fmt.Printf("\n%-34s %12s %12s %8s\n", "operation", "pgstore/s", "boltstore/s", "pg/bolt")
	for _, op := range ops {
		name := fmt.Sprintf("%s/workers=%d", op.name, op.workers)
		pg, bo := rates[key{name, "pgstore"}], rates[key{name, "boltstore"}]
		if pg > 0 && bo > 0 {
			fmt.Printf("%-34s %12.0f %12.0f %7.2fx\n", name, pg, bo, pg/bo)
		}
	}
}
