package relay

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/relay/internal/smtpclient"
)

// Sessions taken out of a destination's idle list must not stay reachable
// from the list's backing array, or every closed connection keeps its
// buffers alive.
func TestPoolIdleListFreesSessions(t *testing.T) {
	var p pool
	d := p.dest("mx.example.com", DestinationLimits{}.withDefaults())
	defer p.release(d)
	key := poolKey{host: d.host}
	for range 4 {
		s := &session{key: key, cl: quietClient(t), idleSince: time.Now(), timer: time.AfterFunc(time.Hour, func() {})}
		d.idle = append(d.idle, s)
		d.open++
	}
	other := &session{key: poolKey{host: "elsewhere"}, cl: quietClient(t), idleSince: time.Now(), timer: time.AfterFunc(time.Hour, func() {})}
	d.idle = append([]*session{other}, d.idle...)
	d.open++
	for range 4 {
		s, err := p.take(context.Background(), d, key, false)
		if err != nil || s == nil {
			t.Fatalf("take = %v, %v", s, err)
		}
	}
	if len(d.idle) != 1 || d.idle[0] != other {
		t.Fatalf("idle list %v", d.idle)
	}
	for i, s := range d.idle[len(d.idle):cap(d.idle)] {
		if s != nil {
			t.Errorf("backing array slot %d still holds a taken session", len(d.idle)+i)
		}
	}
}

// quietClient is a session whose server greeted and then says nothing, as
// an idle pooled session's should.
func quietClient(t *testing.T) *smtpclient.Client {
	t.Helper()
	c, srv := net.Pipe()
	t.Cleanup(func() { c.Close(); srv.Close() })
	go srv.Write([]byte("220 quiet.example ESMTP\r\n"))
	cl, err := smtpclient.NewClient(context.Background(), c, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// Destination state is dropped once unused for destIdleTTL, unless a
// connection is open, an attempt holds it, or a back-off is pending.
func TestPoolForgetsIdleDestinations(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := pool{clock: func() time.Time { return now }}
	lim := DestinationLimits{}.withDefaults()
	for _, h := range []string{"gone.example", "open.example", "held.example", "cooling.example"} {
		p.release(p.dest(h, lim))
	}
	open := p.dest("open.example", lim)
	open.open++
	p.release(open)
	held := p.dest("held.example", lim)
	cooling := p.dest("cooling.example", lim)
	p.release(cooling)

	now = now.Add(destIdleTTL + sweepEvery)
	cooling.pushedBack(now) // its back-off runs past the sweep
	p.release(p.dest("trigger.example", lim))
	for h, want := range map[string]bool{
		"gone.example": false, "open.example": true, "held.example": true, "cooling.example": true, "trigger.example": true,
	} {
		if _, ok := p.dests[h]; ok != want {
			t.Errorf("%s kept = %v, want %v", h, ok, want)
		}
	}

	// Once its connection closes, its attempt ends and the back-off is
	// over, every one goes.
	p.drop(open)
	p.release(held)
	now = now.Add(destIdleTTL + maxBackoff)
	p.release(p.dest("trigger2.example", lim))
	if len(p.dests) != 1 {
		t.Errorf("%d destinations kept, want only the one just used", len(p.dests))
	}

	// A sweep runs at most every sweepEvery.
	p.release(p.dest("x.example", lim))
	now = now.Add(destIdleTTL)
	p.lastSweep = now
	p.release(p.dest("y.example", lim))
	if _, ok := p.dests["x.example"]; !ok {
		t.Error("swept before sweepEvery passed")
	}
}

// Memory follows the hosts in use: after mail to many hosts, then none
// for a while, the pool holds nothing of them.
func BenchmarkPoolDestinationChurn(b *testing.B) {
	now := time.Now()
	p := pool{clock: func() time.Time { return now }}
	lim := DestinationLimits{}.withDefaults()
	for i := range b.N {
		p.release(p.dest(string(rune('a'+i%26))+".example"+time.Duration(i).String(), lim))
		now = now.Add(time.Second)
	}
	b.ReportMetric(float64(len(p.dests)), "dests")
}

// After a reused session turned out dead, the retry dials: it does not
// take another session that has idled as long (two stale sessions used to
// defer the message although the host took new connections).
func TestPoolRetryAfterStaleDials(t *testing.T) {
	var p pool
	d := p.dest("mx.example.com", DestinationLimits{MaxConnections: 3}.withDefaults())
	defer p.release(d)
	key := poolKey{host: d.host}
	for range 2 {
		d.idle = append(d.idle, &session{key: key, cl: quietClient(t), idleSince: time.Now(), timer: time.AfterFunc(time.Hour, func() {})})
		d.open++
	}
	s, err := p.take(context.Background(), d, key, false)
	if err != nil || s == nil {
		t.Fatalf("first take = %v, %v; want an idle session", s, err)
	}
	s, err = p.take(context.Background(), d, key, true)
	if err != nil || s != nil {
		t.Fatalf("retry take = %v, %v; want a slot to dial", s, err)
	}
	if d.open != 3 || len(d.idle) != 1 {
		t.Errorf("open %d idle %d, want 3 and 1", d.open, len(d.idle))
	}
}
