// Command scale sends one message to each of 100,000 distinct recipient
// domains, each with an MX host of its own, and prints the heap in use
// before, at the peak and after the run, once the idle state is freed:
// that memory follows the destinations in use, not every destination
// ever mailed.
//
// An in-process mxtest server answers for every domain through its
// fallback (dN.scale.test → MX mx.dN.scale.test → 127.0.0.1), so the DNS
// server holds nothing per domain; Postfix's smtp-sink receives on
// 127.0.0.1. Every connection is closed after its message (one message a
// host, nothing to reuse), and Direct.DestinationIdleTime is shortened
// (-idle) so that the run does not wait ten minutes for the idle state to
// be freed. Heap figures are runtime.MemStats.HeapInuse after
// runtime.GC (with the DNS server's query counts reset, which are the
// test server's memory, not the client's); the peak is the highest of the samples taken every tenth
// of the run and at its end.
//
//	go run ./scale [-n 100000] [-senders 50] [-idle 5s]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxrelay/mxrelay/bench/internal/goals"
	"github.com/mxrelay/mxrelay/bench/internal/sink"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/relay"
)

// suffix is the parent of every recipient domain.
const suffix = ".scale.test."

func main() {
	n := flag.Int("n", 100000, "recipient domains, one message each")
	senders := flag.Int("senders", 50, "concurrent Send calls")
	idle := flag.Duration("idle", 5*time.Second, "Direct.DestinationIdleTime")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*n, *senders, *idle); err != nil {
		pprof.StopCPUProfile()
		log.Fatal(err)
	}
}

// answer is the DNS server's fallback: an MX host of its own for each
// dN.scale.test, and 127.0.0.1 for each such host; nothing else exists.
func answer(name string) (mxtest.Domain, bool) {
	host, isMX := strings.CutPrefix(name, "mx.")
	label, ok := strings.CutSuffix(host, suffix)
	if !ok || len(label) < 2 || label[0] != 'd' {
		return mxtest.Domain{}, false
	}
	if _, err := strconv.Atoi(label[1:]); err != nil {
		return mxtest.Domain{}, false
	}
	if isMX {
		return mxtest.Domain{TTL: 3600, A: []string{"127.0.0.1"}}, true
	}
	return mxtest.Domain{TTL: 3600, MX: []mx.MX{{Host: "mx." + strings.TrimSuffix(name, "."), Pref: 10}}}, true
}

// sample is one measurement.
type sample struct {
	heap                     uint64 // HeapInuse after a GC
	dests, dns, domains, mxs int
}

func measure(dns *mxtest.Server, t *relay.Direct, r *mx.Resolver, c *relay.Client) sample {
	dns.ResetQueries() // its per-name query counts are the test server's memory, not the client's
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := c.Stats()
	return sample{heap: ms.HeapInuse, dests: t.Destinations(), dns: r.CachedLookups(),
		domains: len(st.ByDomain), mxs: len(st.ByMX)}
}

// mb is a heap figure in MB.
func mb(b uint64) float64 { return float64(b) / (1 << 20) }

func (s sample) print(what string) {
	fmt.Printf("%-34s heap in use %7.1f MB   pooled destinations %6d   cached DNS lookups %6d   stats domains %6d   stats MX hosts %6d\n",
		what, float64(s.heap)/(1<<20), s.dests, s.dns, s.domains, s.mxs)
}

func run(n, senders int, idle time.Duration) error {
	sk, err := sink.Start()
	if err != nil {
		return err
	}
	defer sk.Stop()
	dns := mxtest.NewServer(nil)
	defer dns.Close()
	dns.SetNegativeTTL(3600)
	dns.SetFallback(answer)
	res := dns.Resolver()
	res.Timeout = time.Second
	res.Attempts = 3
	t := &relay.Direct{Resolver: res, Port: sk.Port, AllowPrivateAddrs: true, Hostname: "bench.example",
		IdleTimeout: -1, DestinationIdleTime: idle}
	c := &relay.Client{Transport: t}
	msg := []byte("From: <bench@sender.example>\r\nTo: <user@example>\r\nSubject: scale\r\n" +
		"Message-ID: <scale@sender.example>\r\nDate: Mon, 1 Jan 2026 00:00:00 +0000\r\n\r\nOne message to each domain.\r\n")

	before := measure(dns, t, res, c)
	before.print("before")
	ctx := context.Background()
	var next, delivered, failed atomic.Int64
	var peak sample
	var mu sync.Mutex
	checkpoint := func() {
		s := measure(dns, t, res, c)
		mu.Lock()
		if s.heap > peak.heap {
			peak = s
		}
		mu.Unlock()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				rcpt := fmt.Sprintf("user@d%d%s", i, strings.TrimSuffix(suffix, "."))
				r, err := c.SendRaw(ctx, "bench@sender.example", []string{rcpt}, bytes.NewReader(msg))
				switch {
				case err == nil && r.Recipients[0].Status == relay.Delivered:
					delivered.Add(1)
				case failed.Add(1) <= 3:
					log.Printf("%s: %v %+v", rcpt, err, r)
				}
				if i%int64(max(1, n/10)) == 0 {
					checkpoint()
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	checkpoint()
	peak.print("peak (sampled during the run)")
	fmt.Printf("sent %d messages to %d domains in %.1f s (%.0f msg/s): %d delivered, %d not; the sink counted %d\n",
		n, n, elapsed.Seconds(), float64(n)/elapsed.Seconds(), delivered.Load(), failed.Load(), sk.Messages())

	// Wait for the idle destination state to be freed: it goes after
	// DestinationIdleTime, swept at most that long later.
	waited := time.Now()
	for deadline := waited.Add(2*idle + time.Minute); t.Destinations() > 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	after := measure(dns, t, res, c)
	after.print(fmt.Sprintf("after (idle state freed, %.0f s)", time.Since(waited).Seconds()))
	fmt.Printf("peak − before %.1f MB; after − before %.1f MB\n",
		mb(peak.heap)-mb(before.heap), mb(after.heap)-mb(before.heap))
	rec := func(what, value, goal string, met bool) {
		goals.Record(goals.Line{Bench: "scale", What: fmt.Sprintf("%d domains: %s", n, what), Value: value, Goal: goal, Met: met})
	}
	rec("heap in use before / peak / after the idle state is freed",
		fmt.Sprintf("%.1f / %.1f / %.1f MB", mb(before.heap), mb(peak.heap), mb(after.heap)), "", false)
	rec("pooled destinations after the idle time", strconv.Itoa(after.dests), "0", after.dests == 0)
	rec("cached DNS lookups at the peak / after", fmt.Sprintf("%d / %d", peak.dns, after.dns),
		fmt.Sprintf("≤ %d (mx.DefaultCacheSize)", mx.DefaultCacheSize), max(peak.dns, after.dns) <= mx.DefaultCacheSize)
	rec("Stats.ByDomain entries after", strconv.Itoa(after.domains),
		fmt.Sprintf("≤ %d (relay.StatsKeys)", relay.StatsKeys), after.domains <= relay.StatsKeys)
	rec("delivered", fmt.Sprintf("%d of %d", delivered.Load(), n), "all", delivered.Load() == int64(n))
	if after.dests != 0 {
		return fmt.Errorf("%d destinations still kept after the idle time", after.dests)
	}
	if failed.Load() > 0 {
		return fmt.Errorf("%d messages not delivered", failed.Load())
	}
	return nil
}
