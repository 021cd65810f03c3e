// Command suppress measures what a suppression list costs bulk sending:
// messages per second into Postfix's smtp-sink with relay.Client.Send and
// no suppression list, against the same with a boltstore list of
// 1,000,000 entries (none of them a recipient of the run, so both send
// the same mail, and the lookup is paid on every message).
//
// Each run is a child process of its own, started fresh, with nothing else
// of the benchmark alive but the sink; the two kinds alternate over rounds,
// and the medians, spreads and their ratio are printed.
//
//	go run ./suppress [-n 10000] [-rounds 5] [-entries 1000000]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxrelay/mxrelay/bench/internal/sink"
	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/boltstore"
	"github.com/mxrelay/mxrelay/relay"
)

const senders = 20

func main() {
	n := flag.Int("n", 10000, "messages per run")
	rounds := flag.Int("rounds", 5, "rounds, each one run of each kind")
	entries := flag.Int("entries", 1_000_000, "suppression list entries")
	child := flag.String("child", "", "internal: run one kind (none|bolt) against -port")
	port := flag.Int("port", 0, "internal: the sink's port")
	db := flag.String("db", "", "internal: the suppression list file")
	flag.Parse()
	if *child != "" {
		el, err := runChild(*child, *port, *n, *db)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(el.Nanoseconds())
		return
	}
	if err := run(*n, *rounds, *entries); err != nil {
		log.Fatal(err)
	}
}

func run(n, rounds, entries int) error {
	dir, err := os.MkdirTemp("", "mxrelay-bench-suppress-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "queue.db")
	start := time.Now()
	if err := buildList(db, entries); err != nil {
		return err
	}
	fmt.Printf("suppression list: %d entries in boltstore, built in %.1f s\n", entries, time.Since(start).Seconds())

	sk, err := sink.Start()
	if err != nil {
		return err
	}
	defer sk.Stop()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	rates := map[string][]float64{}
	kinds := []string{"none", "bolt"}
	for r := range rounds {
		for i := range kinds {
			kind := kinds[(r+i)%2] // alternate which goes first
			out, err := exec.Command(self, "-child", kind, "-port", strconv.Itoa(sk.Port), "-n", strconv.Itoa(n), "-db", db).Output()
			if err != nil {
				return fmt.Errorf("%s run: %w", kind, err)
			}
			ns, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
			if err != nil {
				return fmt.Errorf("%s run printed %q", kind, out)
			}
			rate := float64(n) / time.Duration(ns).Seconds()
			rates[kind] = append(rates[kind], rate)
			fmt.Printf("round %d %-4s %8.0f msg/s\n", r+1, kind, rate)
		}
	}
	if got, want := sk.Messages(), 2*rounds*n; got != want {
		return fmt.Errorf("the sink counted %d messages, want %d", got, want)
	}
	mNone, sNone := medianSpread(rates["none"])
	mBolt, sBolt := medianSpread(rates["bolt"])
	fmt.Printf("\n%-44s %10s %s\n", "", "median", "spread (min–max)")
	fmt.Printf("%-44s %7.0f/s  %s\n", "Send, no suppression list", mNone, sNone)
	fmt.Printf("%-44s %7.0f/s  %s\n", fmt.Sprintf("Send, boltstore list of %d entries", entries), mBolt, sBolt)
	fmt.Printf("ratio (with list ÷ without): %.3f×\n", mBolt/mNone)
	return nil
}

// buildList fills a boltstore file with entries suppressions, in large
// batches, for addresses no run sends to.
func buildList(path string, entries int) error {
	st, err := boltstore.OpenWith(path, boltstore.Options{NoSync: true})
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now()
	batch := make([]queue.Suppression, 0, 10000)
	for i := range entries {
		scope := ""
		if i%3 == 0 {
			scope = "news"
		}
		batch = append(batch, queue.Suppression{Address: fmt.Sprintf("user%07d@example.net", i), Scope: scope,
			Reason: queue.Unsubscribed, Source: "bench", Created: now})
		if len(batch) == cap(batch) || i == entries-1 {
			if err := st.Suppress(ctx, batch...); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}

// runChild sends n messages, from senders goroutines, each to its own
// address at example.com, and returns the time it took.
func runChild(kind string, port, n int, db string) (time.Duration, error) {
	dns := mxtest.NewServer(mxtest.Zone{
		"example.com":    {TTL: 3600, MX: []mx.MX{{Host: "mx.example.com", Pref: 10}}},
		"mx.example.com": {TTL: 3600, A: []string{"127.0.0.1"}},
	})
	dns.SetNegativeTTL(3600)
	defer dns.Close()
	c := &relay.Client{Transport: &relay.Direct{
		Hostname: "relay.sender.example", Resolver: dns.Resolver(), Port: port, AllowPrivateAddrs: true,
		DisableMTASTS: true, DisableDANE: true, Limits: relay.DestinationLimits{MaxConnections: senders},
	}}
	if kind == "bolt" {
		st, err := boltstore.Open(db)
		if err != nil {
			return 0, err
		}
		defer st.Close()
		c.Suppressions = st
	}
	body := strings.Repeat("The quick brown fox jumps over the lazy dog, again and again and again.\r\n", 68)
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				m := &mime.Message{
					From:    mail.Address{Name: "Bench", Address: "bench@sender.example"},
					To:      []mail.Address{{Address: fmt.Sprintf("rcpt%07d@example.com", i)}},
					Subject: "Your weekly digest",
					Text:    body,
				}
				res, err := c.Send(ctx, m)
				if err != nil || res.Recipients[0].Status != relay.Delivered {
					failed.Store(fmt.Errorf("message %d: %v", i, err))
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	c.CloseIdleConnections()
	if err, ok := failed.Load().(error); ok {
		return 0, err
	}
	return el, nil
}

// medianSpread is the median of xs and "min–max" as text.
func medianSpread(xs []float64) (float64, string) {
	s := slices.Clone(xs)
	slices.Sort(s)
	var b bytes.Buffer
	fmt.Fprintf(&b, "%.0f–%.0f", s[0], s[len(s)-1])
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return m, b.String()
}
