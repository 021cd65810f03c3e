package relay

import (
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// DefaultDestinationIdleTime is how long the state of an MX host (its
// shaping, its automatic back-off, the count of its connections) is kept
// after its last use when Direct.DestinationIdleTime is zero.
const DefaultDestinationIdleTime = 10 * time.Minute

// Destinations returns how many MX hosts the transport keeps state for
// now: those in use, and those used within DestinationIdleTime or under
// a back-off that has not ended. Memory follows it, not the number of
// hosts ever mailed.
func (t *Direct) Destinations() int {
	t.pool.mu.Lock()
	defer t.pool.mu.Unlock()
	return len(t.pool.dests)
}

// destinationIdleTime is DestinationIdleTime with its default.
func (t *Direct) destinationIdleTime() time.Duration {
	if t.DestinationIdleTime > 0 {
		return t.DestinationIdleTime
	}
	return DefaultDestinationIdleTime
}

// idleTTL is how long unused destination state is kept; p.mu is held.
func (p *pool) idleTTL() time.Duration {
	if p.ttl > 0 {
		return p.ttl
	}
	return destIdleTTL
}

// sweepInterval is how often the pool looks for state to drop: every
// sweepEvery, or every idle time if that is shorter; p.mu is held.
func (p *pool) sweepInterval() time.Duration {
	return min(sweepEvery, p.idleTTL())
}

// armSweeper starts the timer that sweeps while the pool keeps any state,
// so that state is dropped when traffic stops as well as when it goes on;
// it stops once nothing is kept, so nothing runs while the pool is empty.
// p.mu is held.
func (p *pool) armSweeper() {
	if p.sweeper != nil {
		return
	}
	p.sweeper = time.AfterFunc(p.sweepInterval(), p.timedSweep)
}

// timedSweep is the sweeper's work.
func (p *pool) timedSweep() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.lastSweep = now
	p.sweep(now)
	if len(p.dests) == 0 {
		p.sweeper = nil
		return
	}
	p.sweeper.Reset(p.sweepInterval())
}

// destFor is dest for a transport whose idle time is ttl and whose shared
// limits are shared.
func (p *pool) destFor(host string, limits DestinationLimits, ttl time.Duration, shared queue.LimitStore) *destination {
	p.mu.Lock()
	p.ttl, p.shared = ttl, shared
	p.mu.Unlock()
	return p.dest(host, limits)
}
