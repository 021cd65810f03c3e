package relay_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

func TestConnectionReuse(t *testing.T) {
	s := newHarness(t)
	h := addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	s.AddDomain("example.net", "mx.example.com") // same provider: same pool
	c := s.Client()
	defer c.CloseIdleConnections()
	for i := range 5 {
		to := fmt.Sprintf("u%d@example.com", i)
		if i%2 == 1 {
			to = fmt.Sprintf("u%d@example.net", i)
		}
		if _, err := c.Send(ctx(t), testMessage(to)); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.Connections(); n != 1 {
		t.Errorf("%d connections for 5 messages, want 1", n)
	}
	c.CloseIdleConnections()
	if _, err := c.Send(ctx(t), testMessage("x@example.com")); err != nil {
		t.Fatal(err)
	}
	if n := h.Connections(); n != 2 {
		t.Errorf("%d connections after CloseIdleConnections, want 2", n)
	}

	// No reuse when IdleTimeout is negative.
	c2 := s.Client()
	direct(c2).IdleTimeout = -1
	before := h.Connections()
	for range 3 {
		if _, err := c2.Send(ctx(t), testMessage("y@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.Connections() - before; n != 3 {
		t.Errorf("%d connections without reuse, want 3", n)
	}
}

func TestMessagesPerConnectionCap(t *testing.T) {
	s := newHarness(t)
	h := addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	direct(c).Limits.MaxMessagesPerConnection = 2
	defer c.CloseIdleConnections()
	for range 5 {
		if _, err := c.Send(ctx(t), testMessage("a@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.Connections(); n != 3 {
		t.Errorf("%d connections, want 3 (2+2+1 messages)", n)
	}
}

// A connection the server closed while it sat in the pool is replaced, and
// the message goes through on a new one.
func TestStaleConnectionReplaced(t *testing.T) {
	s := newHarness(t)
	h := addHost(t, s, "mx.example.com", relaytest.HostConfig{DropAfterMessages: 1})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	defer c.CloseIdleConnections()
	for i := range 3 {
		res, err := c.Send(ctx(t), testMessage("a@example.com"))
		if err != nil {
			t.Fatalf("message %d: %v %+v", i, err, res.Recipients)
		}
	}
	if n := h.Connections(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
	if n := len(s.Messages()); n != 3 {
		t.Errorf("%d messages, want 3 (no duplicate, no loss)", n)
	}
}

func TestConnectionLimit(t *testing.T) {
	s := newHarness(t)
	h := addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	direct(c).Limits.MaxConnections = 2
	defer c.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Send(ctx(t), testMessage(fmt.Sprintf("u%d@example.com", i)))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if p := h.PeakConnections(); p > 2 || p == 0 {
		t.Errorf("peak %d connections, limit 2", p)
	}
	if n := len(s.Messages()); n != 20 {
		t.Errorf("%d messages, want 20", n)
	}
}

// A host that pushes back is left alone for a while: the next message does
// not hammer it.
func TestPushBackPauses(t *testing.T) {
	s := newHarness(t)
	h := addHost(t, s, "mx.example.com", relaytest.HostConfig{Greeting: "421 4.7.0 too many connections\r\n"})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	for range 3 {
		res, _ := c.Send(ctx(t), testMessage("a@example.com"))
		if r := res.Recipients[0]; r.Status != relay.Deferred {
			t.Fatalf("%+v", r)
		}
	}
	res, _ := c.Send(ctx(t), testMessage("a@example.com"))
	if n := h.Connections(); n != 1 {
		t.Errorf("%d connections, want 1 (then a pause)", n)
	}
	if r := res.Recipients[0]; r.Enhanced != "4.4.5" || !strings.Contains(r.Message, "pushed back") {
		t.Errorf("paused result %+v", r)
	}
}
