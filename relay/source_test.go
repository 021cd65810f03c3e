package relay_test

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

func TestSources(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	a, b := netip.MustParseAddr("127.0.0.61"), netip.MustParseAddr("127.0.0.62")
	c := s.Client()
	c.Sources = []relay.Source{{Addr: a, Hostname: "out1.example.org", Weight: 1}, {Addr: b, Hostname: "out2.example.org", Weight: 3}}
	defer c.CloseIdleConnections()

	used := map[string]int{}
	for range 40 {
		res, err := c.Send(ctx(t), testMessage("u@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		used[res.Recipients[0].Source]++
	}
	if used[a.String()] == 0 || used[b.String()] <= used[a.String()] || len(used) != 2 {
		t.Errorf("sources used %v, want both, %s about three times as often", used, b)
	}
	for _, m := range s.Messages() {
		host, _, _ := net.SplitHostPort(m.RemoteAddr)
		want := map[string]string{a.String(): "out1.example.org", b.String(): "out2.example.org"}[host]
		if m.Helo != want {
			t.Fatalf("connection from %s said EHLO %q, want %q", host, m.Helo, want)
		}
	}

	// A caller's choice holds, for Send and for queued messages.
	res, err := c.SendWith(ctx(t), testMessage("u@example.com"), &relay.SendOptions{Source: a})
	if err != nil || res.Recipients[0].Source != a.String() {
		t.Errorf("SendWith(Source) = %+v, %v", res, err)
	}
	if _, err := c.SendWith(ctx(t), testMessage("u@example.com"), &relay.SendOptions{Source: netip.MustParseAddr("127.0.0.99")}); !errors.Is(err, relay.ErrUnknownSource) {
		t.Errorf("unknown source: %v", err)
	}
	log := newEventLog()
	c.Store = &queue.MemoryStore{}
	c.Events = log.hook
	runClient(t, c)
	if _, err := c.EnqueueWith(ctx(t), testMessage("q@example.com"), &relay.EnqueueOptions{Source: b}); err != nil {
		t.Fatal(err)
	}
	if e := log.waitFor(t, relay.EventDelivered, "q@example.com"); e.Source != b.String() {
		t.Errorf("queued message went from %s, want %s", e.Source, b)
	}
}
