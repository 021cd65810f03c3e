package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// The history BenchmarkHistoryByRecipient looks up: 1,000,000 records of
// 1 to 3 recipients each, drawn from 200,000 addresses, nine in ten
// uniformly and one in ten by a Zipf law, so that a few addresses have
// thousands of records; and one address, histHeavy, in exactly 1,000
// records spread over the whole history.
const (
	benchHistRecords = 1_000_000
	benchHistAddrs   = 200_000
	histHeavy        = "heavy.user@bench.example"
)

// benchHistAddr returns address i of the benchmark's history. A mixing
// step spreads neighbours over the key space, as real addresses are.
func benchHistAddr(i int) string {
	x := uint64(i) * 0x9e3779b97f4a7c15
	x ^= x >> 29
	return fmt.Sprintf("u%016x.%d@d%d.example", x, i, i%997)
}

// benchHistID returns the ID of record n: 32 hex digits, as queue.NewID
// makes them, in creation order.
func benchHistID(n int) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(n))
	binary.BigEndian.PutUint64(b[8:], uint64(n)*0x9e3779b97f4a7c15)
	return hex.EncodeToString(b[:])
}

// benchHistStore builds the history in calls of 100,000 records (one
// transaction each), without fsync, and returns it with the number of
// records each address is in. Only BenchmarkHistoryByRecipient calls it,
// once per run, so a plain go test never pays for it.
func benchHistStore(b *testing.B) (*Store, map[string]int) {
	start := time.Now()
	s, err := OpenWith(filepath.Join(b.TempDir(), "q.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	// NoSync leaves bbolt's fsync on each growth of the file (every 16 MB
	// past the first 1 GB), which flushes all that the load wrote so far:
	// the load needs neither. No write has started yet.
	s.db.NoGrowSync, s.db.AllocSize = true, 256<<20
	// The load makes much short-lived garbage: collect it less often.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	rng := rand.New(rand.NewPCG(7, 8))
	zipf := rand.NewZipf(rng, 1.1, 1, benchHistAddrs-1)
	count := make(map[string]int, benchHistAddrs+1)
	const perCall = 100_000
	batch := make([]queue.Record, 0, perCall)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for n := range benchHistRecords {
		at := t0.Add(time.Duration(n) * time.Second)
		r := queue.Record{ID: benchHistID(n), MessageID: fmt.Sprintf("%d.%x@mail.bench.example", n, n*7919),
			From: "bounces@bench.example", Subject: fmt.Sprintf("Your order %d has shipped", n),
			Campaign: fmt.Sprintf("campaign-%d", n%50), Metadata: map[string]string{"user": fmt.Sprint(n % 77_777)},
			Created: at, Updated: at.Add(3 * time.Second)}
		var addrs []string
		for range 1 + rng.IntN(3) {
			i := rng.IntN(benchHistAddrs)
			if rng.IntN(10) == 0 {
				i = int(zipf.Uint64())
			}
			addrs = append(addrs, benchHistAddr(i))
		}
		if n%(benchHistRecords/1000) == 0 {
			addrs[0] = histHeavy
		}
		slices.Sort(addrs)
		for _, a := range slices.Compact(addrs) {
			count[a]++
			r.Recipients = append(r.Recipients, queue.RecipientRecord{Addr: a, Status: "delivered", Code: 250,
				Enhanced: "2.0.0", Reply: "250 2.0.0 Ok: queued as 4QxYz12AbC", MX: "mx1.d7.example",
				Source: "192.0.2.10", TLSVersion: "TLS 1.3", TLSVerified: true, TLSPolicy: "opportunistic",
				Time: at.Add(2 * time.Second), Attempts: 1})
		}
		batch = append(batch, r)
		if len(batch) == perCall {
			if err := s.Keep(context.Background(), batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	fi, err := os.Stat(s.Path())
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("built a history of %d records, %d addresses, in %v (file %.0f MB)",
		benchHistRecords, len(count), time.Since(start).Round(time.Millisecond), float64(fi.Size())/1e6)
	return s, count
}

// BenchmarkHistoryByRecipient lists the newest 50 records of an address
// (Records with Recipient and Limit 50) in a history of 1,000,000
// records: of addresses drawn at random, of the address with 1,000
// records, and of the address with the most. The history is built once
// per run (under a minute), before the sub-benchmarks:
//
//	go test -run '^$' -bench HistoryByRecipient ./queue/boltstore
func BenchmarkHistoryByRecipient(b *testing.B) {
	s, count := benchHistStore(b)
	busiest, most := "", 0
	for a, n := range count {
		if n > most || n == most && a < busiest {
			busiest, most = a, n
		}
	}
	if count[histHeavy] != 1000 {
		b.Fatalf("%s is in %d records, want 1,000", histHeavy, count[histHeavy])
	}
	// 65,536 addresses drawn at random, so that lookups do not stay in
	// the processor's caches.
	rng := rand.New(rand.NewPCG(9, 10))
	pool := make([]string, 1<<16)
	for i := range pool {
		pool[i] = benchHistAddr(rng.IntN(benchHistAddrs))
	}
	for _, c := range []struct {
		name  string
		addrs []string
	}{
		{"random", pool},
		{"records=1000", []string{histHeavy}},
		{fmt.Sprintf("records=%d", most), []string{busiest}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			calls, found := 0, 0
			b.ReportAllocs()
			cpu0, cpuOK := processCPU()
			for b.Loop() {
				a := c.addrs[calls%len(c.addrs)]
				calls++
				recs, _, err := s.Records(ctx, queue.RecordFilter{Recipient: a, Limit: 50})
				if err != nil {
					b.Fatal(err)
				}
				if want := min(count[a], 50); len(recs) != want {
					b.Fatalf("Records of %s: %d records, want %d", a, len(recs), want)
				}
				found += len(recs)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(calls), "ms/lookup")
			// On a loaded machine, wall time says more of the other
			// processes than of the lookup: give the CPU time too.
			if cpu1, ok := processCPU(); ok && cpuOK {
				b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/1e6/float64(calls), "cpu-ms/lookup")
			}
			b.ReportMetric(float64(found)/float64(calls), "records/lookup")
		})
	}
}

// processCPU returns the CPU time the process has used, user and system,
// from /proc/self/stat (in ticks of 10 ms), and false where there is no
// such file.
func processCPU() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:])) // from field 3, the state
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}
