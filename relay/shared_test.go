package relay_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/pgstore"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// sharedStores opens n pgstore stores on one new schema, as n instances
// of an application do, closed and dropped when the test ends.
func sharedStores(t *testing.T, n int) []*pgstore.Store {
	t.Helper()
	dsn := os.Getenv("MXRELAY_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("relay: MXRELAY_TEST_POSTGRES is not set (a PostgreSQL DSN); shared limits need pgstore")
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "relay_shared_" + hex.EncodeToString(b)
	ctx := context.Background()
	var out []*pgstore.Store
	for range n {
		s, err := pgstore.OpenWith(ctx, dsn, pgstore.Options{Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	t.Cleanup(func() {
		for _, s := range out {
			s.Close()
		}
		if conn, err := pgx.Connect(ctx, dsn); err == nil {
			conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") //nolint:errcheck // best effort
			conn.Close(ctx)
		}
	})
	return out
}

// sendAll sends n messages to domain through each client at once, conc
// at a time per client, and returns how many were delivered.
func sendAll(t *testing.T, clients []*relay.Client, domain string, n, conc int) int {
	t.Helper()
	var mu sync.Mutex
	delivered := 0
	var wg sync.WaitGroup
	for ci, c := range clients {
		next := make(chan int, n)
		for i := range n {
			next <- i
		}
		close(next)
		for range conc {
			wg.Go(func() {
				for i := range next {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					res, err := c.SendRaw(ctx, "sender@example.org", []string{fmt.Sprintf("u%d.%d@%s", ci, i, domain)},
						strings.NewReader("From: sender@example.org\r\nSubject: shared\r\n\r\nhello\r\n"))
					cancel()
					if err == nil && res.Recipients[0].Status == relay.Delivered {
						mu.Lock()
						delivered++
						mu.Unlock()
					} else if err != nil {
						t.Errorf("SendRaw: %v", err)
					}
				}
			})
		}
	}
	wg.Wait()
	return delivered
}

// TestSharedConnectionCap: two transports sharing one pgstore schema, as
// two instances do, send to one MX host with a cap of 3 connections; the
// host never sees more than 3 at once, though each transport alone would
// open 3.
func TestSharedConnectionCap(t *testing.T) {
	stores := sharedStores(t, 2)
	srv, err := relaytest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	host, err := srv.AddHost("mx.shared.example", relaytest.HostConfig{TLS: relaytest.TLSNone, ReplyDelay: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv.AddDomain("shared.example", "mx.shared.example")
	var clients []*relay.Client
	for _, s := range stores {
		d := srv.Direct()
		d.Limits = relay.DestinationLimits{MaxConnections: 3, MaxMessagesPerConnection: 5}
		d.IdleTimeout = 50 * time.Millisecond
		d.SharedLimits = s
		clients = append(clients, &relay.Client{Transport: d})
	}
	if got := sendAll(t, clients, "shared.example", 60, 8); got != 120 {
		t.Errorf("%d of 120 delivered", got)
	}
	if peak := host.PeakConnections(); peak > 3 || peak < 1 {
		t.Errorf("peak connections %d, want 1..3 (the cap shared by both transports)", peak)
	}
	// Every slot is given back once the connections close.
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		sl, err := stores[0].AcquireSlot(context.Background(), "mx.shared.example", 3)
		if err != nil {
			t.Fatal(err)
		}
		if sl.ID != "" {
			stores[0].ReleaseSlot(context.Background(), "mx.shared.example", sl.ID)
		}
		if sl.Held == 1 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Error("slots still held a minute after the last connection closed")
}

// TestSharedRate: two transports share a host's 600 messages a minute
// (bursts of 60): 150 messages take at least the time the rate allows for
// those beyond the burst and the batches the two may hold, however fast
// the machine.
func TestSharedRate(t *testing.T) {
	stores := sharedStores(t, 2)
	srv, err := relaytest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := srv.AddHost("mx.rate.example", relaytest.HostConfig{TLS: relaytest.TLSNone}); err != nil {
		t.Fatal(err)
	}
	srv.AddDomain("rate.example", "mx.rate.example")
	var clients []*relay.Client
	for _, s := range stores {
		d := srv.Direct()
		d.Limits = relay.DestinationLimits{MessagesPerMinute: 600}
		d.SharedLimits = s
		clients = append(clients, &relay.Client{Transport: d})
	}
	start := time.Now()
	if got := sendAll(t, clients, "rate.example", 75, 10); got != 150 {
		t.Errorf("%d of 150 delivered", got)
	}
	// 60 at once, then one every 100 ms; each transport may hold a batch
	// of 3 turns taken early.
	if min := time.Duration(150-60-2*3) * 100 * time.Millisecond; time.Since(start) < min {
		t.Errorf("150 messages in %v at a shared 600 a minute: faster than %v allows", time.Since(start), min)
	}
}

// TestSharedPushBack: a 421 greeting seen by one transport pauses the
// host for the other, which defers without connecting.
func TestSharedPushBack(t *testing.T) {
	stores := sharedStores(t, 2)
	srv, err := relaytest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	host, err := srv.AddHost("mx.busy.example", relaytest.HostConfig{TLS: relaytest.TLSNone,
		Greeting: "421 4.3.2 too busy, come back later\r\n"})
	if err != nil {
		t.Fatal(err)
	}
	srv.AddDomain("busy.example", "mx.busy.example")
	var clients []*relay.Client
	for _, s := range stores {
		d := srv.Direct()
		d.SharedLimits = s
		clients = append(clients, &relay.Client{Transport: d})
	}
	ctx := context.Background()
	send := func(c *relay.Client) relay.RecipientResult {
		// A deferred recipient is an error too; the result says why.
		res, err := c.SendRaw(ctx, "sender@example.org", []string{"u@busy.example"},
			strings.NewReader("From: sender@example.org\r\nSubject: busy\r\n\r\nhello\r\n"))
		if res == nil || len(res.Recipients) != 1 {
			t.Fatalf("SendRaw: %+v, %v", res, err)
		}
		return res.Recipients[0]
	}
	if r := send(clients[0]); r.Status != relay.Deferred {
		t.Fatalf("first send: %+v, want deferred by the 421", r)
	}
	// The pause is written in the background: wait for it.
	deadline := time.Now().Add(time.Minute)
	var st queue.DestState
	for time.Now().Before(deadline) {
		if st, err = stores[1].DestState(ctx, "mx.busy.example"); err != nil {
			t.Fatal(err)
		}
		if !st.PausedUntil.IsZero() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !st.PausedUntil.After(time.Now()) {
		t.Fatalf("shared state after the push-back: %+v, want a pause", st)
	}
	conns := host.Connections()
	r := send(clients[1])
	if r.Status != relay.Deferred || !strings.Contains(r.Message, "another instance") {
		t.Errorf("second transport: %+v, want deferred by the push-back another instance saw", r)
	}
	if host.Connections() != conns {
		t.Errorf("the second transport connected (%d connections, %d before)", host.Connections(), conns)
	}
}
