package relay

import (
	"context"
	"github.com/mxrelay/mxrelay/queue"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// DefaultIdleTimeout is how long an unused connection stays open for the
// next message when Direct.IdleTimeout is zero.
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
// the idle timeout by a timer of their own, and destination state after
// the destination idle time by the sweeper (destidle.go), which stops once
// nothing is kept, so nothing runs while the pool is empty.
type pool struct {
	mu        sync.Mutex
	dests     map[string]*destination // by MX host
	lastSweep time.Time
	clock     func() time.Time // nil → time.Now; tests set it
	ttl       time.Duration    // how long unused state is kept; 0 → destIdleTTL
	shared    queue.LimitStore // Direct.SharedLimits; nil → none
	sweeper   *time.Timer      // sweeps while dests is not empty; nil when it is
}

// Destination state (open connections, shaping) is kept while it is in
// use and for destIdleTTL (Direct.DestinationIdleTime) after, so that a
// host's back-off survives between messages; then it is dropped, so that
// memory follows the hosts in use rather than every host ever mailed. The
// pool looks for such state at most every sweepEvery (or the idle time,
// if shorter), when a destination is looked up and, while any state is
// kept, from a timer (destidle.go), so that state is freed when the
// traffic stops too.
const (
	destIdleTTL = DefaultDestinationIdleTime
	sweepEvery  = time.Minute
)

func (p *pool) now() time.Time {
	if p.clock != nil {
		return p.clock()
	}
	return time.Now()
}

// destination is the state of one MX host: its open connections, its idle
// sessions and its shaping (see shaping.go).
type destination struct {
	host   string
	limits DestinationLimits

	open    int // connections open, idle ones included
	idle    []*session
	slots   []string      // shared slots (Direct.SharedLimits) of the open connections
	changed chan struct{} // closed and replaced when open or idle changes

	refs     int       // attempts holding it (dest without release); p.mu
	lastUsed time.Time // when the last of them let go; p.mu

	shaper
}

// cooling reports the end of host's back-off, if its state is kept and it
// is in one, without creating state (for a dry run).
func (p *pool) cooling(host string, now time.Time) (time.Time, bool) {
	p.mu.Lock()
	d := p.dests[host]
	p.mu.Unlock()
	if d == nil {
		return time.Time{}, false
	}
	return d.coolingUntil(now)
}

// dest returns the state of an MX host, created on first use. The caller
// hands it back with release when its attempt is over.
func (p *pool) dest(host string, limits DestinationLimits) *destination {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dests == nil {
		p.dests = make(map[string]*destination)
	}
	now := p.now()
	if now.Sub(p.lastSweep) >= p.sweepInterval() {
		p.lastSweep = now
		p.sweep(now)
	}
	d := p.dests[host]
	if d == nil {
		d = &destination{host: host, limits: limits, changed: make(chan struct{})}
		sl := limits
		if p.shared != nil {
			sl.MessagesPerMinute = 0 // the shared rate replaces the local one (shared.go)
		}
		d.shaper.init(sl)
		p.dests[host] = d
		p.armSweeper()
	}
	d.refs++
	return d
}

// release says an attempt is done with d.
func (p *pool) release(d *destination) {
	p.mu.Lock()
	d.refs--
	d.lastUsed = p.now()
	p.mu.Unlock()
}

// sweep drops the state of destinations nobody has used for the idle
// time: no attempt holds them, no connection is open and no back-off or
// back-off rule is in force; p.mu is held.
func (p *pool) sweep(now time.Time) {
	ttl := p.idleTTL()
	for host, d := range p.dests {
		if d.refs > 0 || d.open > 0 || len(d.idle) > 0 || now.Sub(d.lastUsed) < ttl {
			continue
		}
		if _, cooling := d.coolingUntil(now); cooling {
			continue
		}
		if r, _ := d.ruleInForce(now); r != nil {
			continue
		}
		delete(p.dests, host)
	}
}

// notify wakes the goroutines waiting for d; p.mu is held.
func (d *destination) notify() {
	close(d.changed)
	d.changed = make(chan struct{})
}

// take returns an idle session for key, or reserves a connection slot and
// returns nil (the caller dials, then hands the session to put or the slot
// to drop). With fresh set it never returns an idle session: after a
// reused one turned out dead, the others idle as long are no better. It
// waits while the destination is at its connection limit, until ctx ends.
func (p *pool) take(ctx context.Context, d *destination, key poolKey, fresh bool) (*session, error) {
	for {
		p.mu.Lock()
		for i := len(d.idle) - 1; i >= 0 && !fresh; i-- {
			s := d.idle[i]
			if s.key != key {
				continue
			}
			// slices.Delete clears the freed tail slot: a closed
			// session must not stay reachable from the backing array.
			d.idle = slices.Delete(d.idle, i, i+1)
			p.mu.Unlock()
			if s.timer.Stop() {
				// CheckIdle first: a byte the server sent while the
				// session sat idle would be read as the next command's
				// reply and shift every result after it.
				if s.cl.CheckIdle() == nil && (time.Since(s.idleSince) < checkAfter || s.healthy(ctx)) {
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
			d.idle = slices.Delete(d.idle, 0, 1)
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

// overLimit reports whether more connections are open to d than it is
// allowed now (after a push-back or under a back-off rule), so that a
// session coming back is closed rather than kept.
func (p *pool) overLimit(d *destination) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return d.open > d.connLimit()
}

// drop gives back a slot reserved by take whose dial failed, or the slot
// of a session closed for good.
func (p *pool) drop(d *destination) {
	p.mu.Lock()
	d.open--
	slot := p.closedConn(d)
	d.notify()
	p.mu.Unlock()
	p.releaseShared(d.host, slot)
}

// put returns a session after a transaction: kept for the next message if
// it is healthy, under its message cap and reuse is on; closed otherwise.
func (p *pool) put(d *destination, s *session, idle time.Duration) {
	if idle <= 0 || s.cl.Err() != nil || s.uses >= d.limits.MaxMessagesPerConnection || s.retire || p.overLimit(d) {
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
				d.idle = slices.Delete(d.idle, i, i+1)
				break
			}
		}
		d.open--
		slot := p.closedConn(d)
		d.notify()
		p.mu.Unlock()
		s.quit()
		p.releaseShared(d.host, slot)
	})
	d.idle = append(d.idle, s)
	d.notify()
	p.mu.Unlock()
}

// closeIdle closes every idle session.
func (p *pool) closeIdle() {
	p.mu.Lock()
	var closing []*session
	var slots [][2]string // host, slot: released once closed
	for _, d := range p.dests {
		kept := d.idle[:0]
		for _, s := range d.idle {
			if s.timer.Stop() {
				closing = append(closing, s)
				d.open--
				if slot := p.closedConn(d); slot != "" {
					slots = append(slots, [2]string{d.host, slot})
				}
			} else {
				kept = append(kept, s)
			}
		}
		clear(d.idle[len(kept):])
		d.idle = kept
		d.notify()
	}
	p.mu.Unlock()
	for _, s := range closing {
		s.quit()
	}
	for _, hs := range slots {
		p.releaseShared(hs[0], hs[1])
	}
}
