package relay

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// Tuning of Direct.SharedLimits (its doc says what they mean for a
// user).
const (
	sharedTurnsWindow = 250 * time.Millisecond
	sharedTurnsFresh  = time.Second
	// maxSlotWait bounds how long an attempt waits for a slot held by
	// other instances before its recipients are deferred.
	maxSlotWait = 2 * time.Minute
	// slotPoll is how often a waiter tries again without a release
	// announcement (they may be lost while the store reconnects).
	slotPoll = time.Second
)

// errSharedLimits wraps the store's failures: the attempt is deferred.
var errSharedLimits = errors.New("relay: shared limits unavailable")

// sharedSlot takes a slot of d's host from the shared store for a
// connection the pool has just reserved (d.open counts it), waiting while
// other instances hold them all, within maxSlotWait and ctx. The slot
// joins d.slots; the pool gives it back when the connection's count goes.
func (a *attempt) sharedSlot(ctx context.Context, d *destination) error {
	ls := a.t.SharedLimits
	if ls == nil {
		return nil
	}
	deadline := time.Now().Add(maxSlotWait)
	released := ls.SlotReleased()
	for {
		sl, err := ls.AcquireSlot(ctx, d.host, d.limits.MaxConnections)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &Error{Host: d.host, Enhanced: "4.4.5", Message: "shared connection limits unavailable: " + err.Error(),
				Err: errors.Join(errSharedLimits, err)}
		}
		a.t.mergeShared(d, sl.State)
		if sl.ID != "" {
			if r, _ := d.ruleInForce(time.Now()); r != nil && r.Suspend {
				a.t.pool.releaseShared(d.host, sl.ID)
				until, _ := d.coolingUntil(time.Now())
				return &Error{Host: d.host, Enhanced: "4.4.5",
					Message: "suspended by back-off rule " + r.Name + "; not connecting again before " + until.UTC().Format(time.RFC3339)}
			}
			a.t.pool.mu.Lock()
			d.slots = append(d.slots, sl.ID)
			a.t.pool.mu.Unlock()
			return nil
		}
		if until, cooling := d.coolingUntil(time.Now()); cooling {
			return &Error{Host: d.host, Enhanced: "4.4.5",
				Message: "the host pushed back (seen by another instance); not connecting again before " + until.UTC().Format(time.RFC3339)}
		}
		wait := min(slotPoll, time.Until(deadline))
		if wait <= 0 {
			return &Error{Host: d.host, Enhanced: "4.4.5",
				Message: "all connection slots of the host are held by this sender's instances"}
		}
		t := time.NewTimer(wait)
		select {
		case <-released:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// releaseShared gives a slot back in the background, within a bound: a
// release that fails leaves the slot to end by itself (the store stops
// renewing it).
func (p *pool) releaseShared(host, slot string) {
	if slot == "" {
		return
	}
	p.mu.Lock()
	ls := p.shared
	p.mu.Unlock()
	if ls == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ls.ReleaseSlot(ctx, host, slot) //nolint:errcheck // the slot ends by itself if this fails
	}()
}

// unreserve gives back a connection reserved by take for which no shared
// slot was taken: drop would release another connection's slot.
func (p *pool) unreserve(d *destination) {
	p.mu.Lock()
	d.open--
	d.notify()
	p.mu.Unlock()
}

// closedConn is called, p.mu held, where d.open goes down by one: it
// returns the shared slot that goes with the connection (or ""), which
// the caller releases once the connection is closed, not before, or
// another process could open one while it is still open.
func (p *pool) closedConn(d *destination) string {
	n := len(d.slots)
	if n == 0 {
		return ""
	}
	slot := d.slots[n-1]
	d.slots = d.slots[:n-1]
	return slot
}

// sharedTurn takes one turn of d's host's shared message rate: from the
// batch this instance holds if it is fresh, else from the store, waiting
// for the next turn within ctx.
func (a *attempt) sharedTurn(ctx context.Context, d *destination) error {
	ls := a.t.SharedLimits
	if ls == nil || d.limits.MessagesPerMinute <= 0 {
		return nil
	}
	perMin := float64(d.limits.MessagesPerMinute)
	burst := max(1, d.limits.MessagesPerMinute/10)
	batch := min(burst, max(1, int(math.Ceil(perMin/60*sharedTurnsWindow.Seconds()))))
	for {
		d.shaper.mu.Lock()
		if d.turns > 0 && time.Since(d.turnsAt) < sharedTurnsFresh {
			d.turns--
			d.shaper.mu.Unlock()
			return nil
		}
		d.turns = 0
		d.shaper.mu.Unlock()
		got, next, err := ls.TakeTurns(ctx, d.host, queue.Rate{PerMinute: perMin, Burst: burst}, batch)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &Error{Host: d.host, Enhanced: "4.4.5", Message: "shared message rate unavailable: " + err.Error(),
				Err: errors.Join(errSharedLimits, err)}
		}
		if got > 0 {
			d.shaper.mu.Lock()
			d.turns, d.turnsAt = got-1, time.Now()
			d.shaper.mu.Unlock()
			return nil
		}
		// As for a local MessagesPerMinute, the message waits its turn,
		// within ctx.
		t := time.NewTimer(max(time.Until(next), time.Millisecond))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// mergeShared makes d's local back-off at least as strict as the shared
// state st: a later pause, fewer connections, a rule in force (looked up
// by name among the transport's rules).
func (t *Direct) mergeShared(d *destination, st queue.DestState) {
	now := time.Now()
	d.shaper.mu.Lock()
	if st.PausedUntil.After(d.until) {
		d.until = st.PausedUntil
	}
	if st.Allowed > 0 {
		if a := float64(st.AllowedNow(now, d.max)); a < d.allowed {
			d.allowed = a
		}
	}
	d.shaper.mu.Unlock()
	if st.Rule == "" || !st.RuleUntil.After(now) {
		return
	}
	if r, until := d.ruleInForce(now); r != nil && r.Name == st.Rule && !until.Before(st.RuleUntil) {
		return
	}
	for i, r := range t.backoffRules() {
		if r.Name == st.Rule {
			rule := &t.backoffRules()[i]
			d.shaper.mu.Lock()
			d.rule, d.ruleUntil = rule, st.RuleUntil
			if rule.Slow > 0 {
				d.tokens = min(d.tokens, 1)
			}
			d.shaper.mu.Unlock()
			return
		}
	}
}

// shareBackoff writes d's back-off to the shared store in the background:
// after a push-back, its pause and the connections allowed; after a rule
// took effect, the rule.
func (t *Direct) shareBackoff(d *destination) {
	ls := t.SharedLimits
	if ls == nil {
		return
	}
	now := time.Now()
	d.shaper.mu.Lock()
	st := queue.DestState{PausedUntil: d.until}
	if d.allowed < float64(d.max) {
		st.Allowed = d.allowed
	}
	if d.ruleActive(now) {
		st.Rule, st.RuleUntil = d.rule.Name, d.ruleUntil
	}
	d.shaper.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ls.NoteBackoff(ctx, d.host, st) //nolint:errcheck // the local back-off holds meanwhile
	}()
}
