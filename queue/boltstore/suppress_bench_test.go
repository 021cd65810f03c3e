package boltstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// benchSupEntries is the size of the list BenchmarkSuppressed1M looks up.
const benchSupEntries = 1_000_000

// benchSupAddr returns address i of the benchmark's list: the even ones
// are on it, the odd ones are not. A mixing step spreads neighbours over
// the key space, as real addresses are.
func benchSupAddr(i int) string {
	x := uint64(i) * 0x9e3779b97f4a7c15
	x ^= x >> 29
	return fmt.Sprintf("u%016x.%d@d%d.example", x, i, i%997)
}

// benchSupStore builds the list: 1,000,000 entries (every fourth for the
// "news" list, the others for all mail), in calls of 50,000 entries,
// without fsync. Only BenchmarkSuppressed1M calls it, once per run, so a
// plain go test never pays for it.
func benchSupStore(b *testing.B) *Store {
	start := time.Now()
	s, err := OpenWith(filepath.Join(b.TempDir(), "q.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	const perCall = 50_000
	batch := make([]queue.Suppression, 0, perCall)
	created := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for n := range benchSupEntries {
		e := queue.Suppression{Address: benchSupAddr(2 * n), Reason: queue.Unsubscribed, Source: "bench", Created: created}
		if n%4 == 0 {
			e.Scope = "news"
		}
		batch = append(batch, e)
		if len(batch) == perCall {
			if err := s.Suppress(context.Background(), batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("built a list of %d suppressions in %v (file %.0f MB)",
		benchSupEntries, time.Since(start).Round(time.Millisecond), float64(fi.Size())/1e6)
	return s
}

// BenchmarkSuppressed1M looks up batches of 1 and of 50 addresses, half of
// them on a list of 1,000,000 entries, in scope "news". The list is built
// once per run (about ten seconds), before the sub-benchmarks:
//
//	go test -run '^$' -bench Suppressed1M ./queue/boltstore
func BenchmarkSuppressed1M(b *testing.B) {
	s := benchSupStore(b)
	now := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	// 65,536 distinct addresses spread over the list, so that lookups do
	// not stay in the processor's caches; alternately on the list and not.
	pool := make([]string, 1<<16)
	for i := range pool {
		pool[i] = benchSupAddr(2*((i*2_654_435_761)%benchSupEntries) + i%2)
	}
	for _, size := range []int{1, 50} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			ctx := context.Background()
			hits, next, calls := 0, 0, 0
			b.ReportAllocs()
			for b.Loop() {
				calls++
				if next+size > len(pool) {
					next = 0
				}
				got, err := s.Suppressed(ctx, "news", pool[next:next+size], now)
				if err != nil {
					b.Fatal(err)
				}
				hits += len(got)
				next += size
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(calls*size), "ns/address")
			if want := calls * size / 2; hits < want*9/10 || hits > want*11/10 {
				b.Fatalf("%d entries found for %d addresses, half of them on the list", hits, calls*size)
			}
		})
	}
}
