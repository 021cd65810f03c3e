package relay_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
)

// TestServeInboundThousandSessions holds 1,000 sessions open at once, each
// in the middle of a transaction, checks that the server's memory stays
// bounded, then has every one deliver its bounce: all 1,000 are processed.
func TestServeInboundThousandSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 sessions: not in -short")
	}
	const n = 1000
	s, c, events, store, inAddr := bounceHarness(t)
	c.EventBuffer = 4 * n
	rcpts := make([]string, n)
	for i := range rcpts {
		rcpts[i] = fmt.Sprintf("gone%d@example.com", i)
	}
	m := testMessage(rcpts...)
	m.To = m.To[:0]
	m.Bcc = nil
	for _, r := range rcpts {
		m.Bcc = append(m.Bcc, addr(r))
	}
	if _, err := c.Send(ctx(t), m); err != nil {
		t.Fatal(err)
	}
	sents := make([]sent, n)
	for i, r := range rcpts {
		sents[i] = sentTo(t, s, r)
	}

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	sessions := make([]*smtpSession, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var fails []string
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ses := dialInbound(t, inAddr)
			ses.cmd("EHLO mta%d.example.net", i)
			ses.cmd("MAIL FROM:<>")
			if code, msg := ses.cmd("RCPT TO:<%s>", sents[i].returnPath); code != 250 {
				mu.Lock()
				fails = append(fails, fmt.Sprintf("RCPT %d: %d %s", i, code, msg))
				mu.Unlock()
			}
			sessions[i] = ses
		}()
	}
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("%d sessions failed, first: %s", len(fails), fails[0])
	}
	var during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&during)
	grown := int64(during.HeapInuse) - int64(before.HeapInuse)
	t.Logf("%d sessions open: heap in use grew by %.1f MiB (%d goroutines)", n, float64(grown)/(1<<20), runtime.NumGoroutine())
	// Both ends of every session live in this process; a session's
	// buffers are a few KiB.
	if grown > 128<<20 {
		t.Errorf("heap grew by %d MiB for %d sessions", grown>>20, n)
	}

	for i, ses := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _ := ses.cmd("DATA"); code != 354 {
				mu.Lock()
				fails = append(fails, fmt.Sprintf("DATA %d: %d", i, code))
				mu.Unlock()
				return
			}
			w := ses.tp.DotWriter()
			w.Write(postfixDSN(sents[i], "failed", "5.1.1", "550 5.1.1 User unknown"))
			w.Close()
			if code, msg := ses.read(); code != 250 {
				mu.Lock()
				fails = append(fails, fmt.Sprintf("end of data %d: %d %s", i, code, msg))
				mu.Unlock()
			}
			ses.cmd("QUIT")
		}()
	}
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("%d deliveries failed, first: %s", len(fails), fails[0])
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		bounced := 0
		for _, e := range events.all() {
			if e.Type == relay.EventBounced && e.Async {
				bounced++
			}
		}
		if bounced == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d bounces reported", bounced, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	list, err := store.Suppressions(ctx(t), queue.SuppressionFilter{Limit: 2 * n})
	if err != nil || len(list) != n {
		t.Errorf("%d suppressed (%v), want %d", len(list), err, n)
	}
}
