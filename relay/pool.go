package relay

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// DefaultIdleTimeout is how long an unused connection stays open for the
// next message when Client.IdleTimeout is zero.
const DefaultIdleTimeout = 5 * time.Second

// checkAfter is how long a session may sit idle before it is checked with
// NOOP on reuse; servers drop quiet connections, and a dead one found by
// NOOP costs less than a failed transaction.
const checkAfter = 15 * time.Second

// poolKey says which sessions can carry each other's messages: same MX
// host, same source address (and so the same EHLO name), same TLS policy
// satisfied.
type poolKey struct {
	host   string
	source netip.Addr
	policy string
}

// pool keeps open sessions for reuse and counts every open connection per
// MX host against that destination's limit. Idle sessions are closed after
// the idle timeout by a timer of their own, so nothing runs while the pool
// is quiet.
type pool struct {
	mu    sync.Mutex
	dests map[string]*destination // by MX host
}

// destination is the state of one MX host: its open connections, its idle
// sessions and its shaping (see shaping.go).
type destination struct {
	host   string
	limits DestinationLimits

	open    int // connections open, idle ones included
	idle    []*session
	changed chan struct{} // closed and replaced when open or idle changes

	shaper
}

func (p *pool) dest(host string, limits DestinationLimits) *destination {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dests == nil {
		p.dests = make(map[string]*destination)
	}
	d := p.dests[host]
	if d == nil {
		d = &destination{host: host, limits: limits, changed: make(chan struct{})}
		d.shaper.init(limits)
		p.dests[host] = d
	}
	return d
}

// notify wakes the goroutines waiting for d; p.mu is held.
func (d *destination) notify() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// take returns an idle session for key, or reserves a connection slot and
// returns nil (the caller dials, then hands the session to put or the slot
// to drop). It waits while the destination is at its connection limit,
// until ctx ends.
func (p *pool) take(ctx context.Context, d *destination, key poolKey) (*session, error) {
	for {
		p.mu.Lock()
		for i := len(d.idle) - 1; i >= 0; i-- {
			s := d.idle[i]
			if s.key != key {
				continue
			}
			d.idle = append(d.idle[:i], d.idle[i+1:]...)
			p.mu.Unlock()
			if s.timer.Stop() {
				if time.Since(s.idleSince) < checkAfter || s.healthy(ctx) {
					return s, nil
				}
				s.cl.Close()
				p.drop(d)
				p.mu.Lock()
				i = len(d.idle)
				continue
			}
			// Its idle timer fired and is closing it: look again.
			p.mu.Lock()
			i = len(d.idle)
		}
		if d.open < d.connLimit() {
			d.open++
			p.mu.Unlock()
			return nil, nil
		}
		// At the limit: close an idle session that is of no use to us.
		if len(d.idle) > 0 {
			s := d.idle[0]
			d.idle = d.idle[1:]
			if s.timer.Stop() {
				p.mu.Unlock()
				s.quit()
				return nil, nil // its slot is ours
			}
		}
		ch := d.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// drop gives back a slot reserved by take whose dial failed, or the slot
// of a session closed for good.
func (p *pool) drop(d *destination) {
	p.mu.Lock()
	d.open--
	d.notify()
	p.mu.Unlock()
}

// put returns a session after a transaction: kept for the next message if
// it is healthy, under its message cap and reuse is on; closed otherwise.
func (p *pool) put(d *destination, s *session, idle time.Duration) {
	if idle <= 0 || s.cl.Err() != nil || s.uses >= d.limits.MaxMessagesPerConnection {
		s.quit()
		p.drop(d)
		return
	}
	p.mu.Lock()
	s.idleSince = time.Now()
	s.timer = time.AfterFunc(idle, func() {
		p.mu.Lock()
		for i, t := range d.idle {
			if t == s {
				d.idle = append(d.idle[:i], d.idle[i+1:]...)
				break
			}
		}
		d.open--
		d.notify()
		p.mu.Unlock()
		s.quit()
	})
	d.idle = append(d.idle, s)
	d.notify()
	p.mu.Unlock()
}

// closeIdle closes every idle session.
func (p *pool) closeIdle() {
	p.mu.Lock()
	var closing []*session
	for _, d := range p.dests {
		kept := d.idle[:0]
		for _, s := range d.idle {
			if s.timer.Stop() {
				closing = append(closing, s)
				d.open--
			} else {
				kept = append(kept, s)
			}
		}
		d.idle = kept
		d.notify()
	}
	p.mu.Unlock()
	for _, s := range closing {
		s.quit()
	}
}

// CloseIdleConnections closes the connections kept open for reuse. Call it
// before the program exits to say QUIT politely; it does not affect
// deliveries in progress.
func (c *Client) CloseIdleConnections() { c.pool.closeIdle() }
