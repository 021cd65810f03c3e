package relay

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Defaults for DestinationLimits.
//
// DefaultMaxConnections is Postfix's default_destination_concurrency_limit,
// 20, which receivers have long seen from Postfix senders. The cap is the
// ceiling of the rate to one MX host: a pipelined transaction costs two
// round trips, so at 20 ms one connection carries at most 25 messages a
// second, and 10 connections (the earlier default) held mxrelay to 222
// messages/s where 20 reach twice that (bench/relay, 20 ms RTT rows). A
// host that wants fewer says so with 421 replies, and the AIMD back-off
// and the back-off rules slow down to what it accepts.
const (
	DefaultMaxConnections           = 20
	DefaultMaxMessagesPerConnection = 100
)

// DestinationLimits shape the traffic to one MX host. They are kept per MX
// host name, not per recipient domain, so every domain a provider hosts
// shares one budget (the "MX rollup").
type DestinationLimits struct {
	// MaxConnections caps the connections open to the host at once, idle
	// ones included. 0 → DefaultMaxConnections.
	MaxConnections int
	// MaxMessagesPerConnection caps the messages sent over one connection
	// before it is closed. 0 → DefaultMaxMessagesPerConnection.
	MaxMessagesPerConnection int
	// MessagesPerMinute caps the rate of messages to the host, with bursts
	// of up to a tenth of it. 0 → no cap.
	MessagesPerMinute int
}

func (l DestinationLimits) withDefaults() DestinationLimits {
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.MaxMessagesPerConnection <= 0 {
		l.MaxMessagesPerConnection = DefaultMaxMessagesPerConnection
	}
	return l
}

// limitsFor returns the limits for an MX host: the entry of
// Direct.DestinationLimits whose pattern matches it (an exact name, or
// "*.example.com" for any name below example.com; the longest pattern
// wins), else Direct.Limits.
func (c *Direct) limitsFor(host string) DestinationLimits {
	best, bestLen := c.Limits, -1
	for pat, l := range c.DestinationLimits {
		pat = strings.ToLower(strings.TrimSuffix(pat, "."))
		match := pat == host
		if suffix, ok := strings.CutPrefix(pat, "*"); ok && strings.HasPrefix(suffix, ".") {
			match = strings.HasSuffix(host, suffix)
		}
		if match && len(pat) > bestLen {
			best, bestLen = l, len(pat)
		}
	}
	return best.withDefaults()
}

// Backoff after a destination pushes back (421, refused connections, 4xx
// greetings): it doubles with each push-back in a row, within these bounds.
const (
	minBackoff = time.Second
	maxBackoff = 5 * time.Minute
)

// shaper adapts the traffic to one destination. Push-back halves the
// connections allowed and pauses new connections for a while; successes
// win the connections back one at a time (additive increase,
// multiplicative decrease, as TCP does).
type shaper struct {
	mu        sync.Mutex
	max       int     // MaxConnections
	allowed   float64 // connections allowed now, 1..max
	backoff   time.Duration
	until     time.Time // no new connection before this
	ratePerS  float64   // messages per second; 0: no rate limit
	burst     float64
	tokens    float64
	lastToken time.Time

	// turns of the shared rate taken from Direct.SharedLimits and not
	// used yet, taken at turnsAt (shared.go).
	turns   int
	turnsAt time.Time

	// rule is the back-off rule in force (backoffrules.go), until
	// ruleUntil; nil when none.
	rule      *BackoffRule
	ruleUntil time.Time
}

func (s *shaper) init(l DestinationLimits) {
	s.max = l.MaxConnections
	s.allowed = float64(l.MaxConnections)
	if l.MessagesPerMinute > 0 {
		s.ratePerS = float64(l.MessagesPerMinute) / 60
		s.burst = max(1, float64(l.MessagesPerMinute)/10)
		s.tokens = s.burst
	}
}

// connLimit is how many connections may be open now.
func (s *shaper) connLimit() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ruleActive(time.Now()) && s.rule.Slow > 0 {
		return 1
	}
	return max(1, int(s.allowed))
}

// ruleActive reports whether a back-off rule is in force at now; s.mu is
// held.
func (s *shaper) ruleActive(now time.Time) bool {
	return s.rule != nil && now.Before(s.ruleUntil)
}

// applyRule puts r in force from now for r.For, or extends it when it is
// in force already. It reports whether that is news: no rule was in force,
// or another one.
func (s *shaper) applyRule(r *BackoffRule, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	news := !s.ruleActive(now) || s.rule.Name != r.Name
	s.rule, s.ruleUntil = r, now.Add(r.For)
	if r.Slow > 0 {
		// The host said how it wants to be treated: the rule's pace
		// replaces the pause after its push-back.
		s.until = time.Time{}
		if news {
			s.tokens = min(s.tokens, 1)
		}
	}
	return news
}

// ruleInForce returns the back-off rule in force at now and its end.
func (s *shaper) ruleInForce(now time.Time) (*BackoffRule, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ruleActive(now) {
		return nil, time.Time{}
	}
	return s.rule, s.ruleUntil
}

// pushedBack records a 421, a refused connection or a 4xx greeting.
func (s *shaper) pushedBack(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowed = max(1, s.allowed/2)
	if s.backoff == 0 {
		s.backoff = minBackoff
	} else {
		s.backoff = min(2*s.backoff, maxBackoff)
	}
	s.until = now.Add(s.backoff)
}

// succeeded records a message accepted by the destination.
func (s *shaper) succeeded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.backoff = 0
	if s.allowed < float64(s.max) {
		s.allowed = min(float64(s.max), s.allowed+1/s.allowed)
	}
}

// coolingUntil reports the end of the current back-off, if any: the
// pause after a push-back, or a suspension by a back-off rule.
func (s *shaper) coolingUntil(now time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	until := s.until
	if s.ruleActive(now) && s.rule.Suspend {
		until = later(until, s.ruleUntil)
	}
	return until, now.Before(until)
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// maxRuleWait is the longest a message waits for its turn under a
// back-off rule's Slow rate; beyond it the recipients are deferred and
// the queue retries them.
const maxRuleWait = 5 * time.Second

// errRuleRate is waitTurn's answer when a back-off rule's rate would make
// the message wait longer than maxRuleWait.
type errRuleRate struct {
	rule *BackoffRule
	next time.Time
}

func (e *errRuleRate) Error() string {
	return fmt.Sprintf("slowed to %d messages a minute by back-off rule %s; next turn at %s",
		e.rule.Slow, e.rule.Name, e.next.UTC().Format(time.RFC3339))
}

// waitTurn waits until the rate limit lets one more message go.
func (s *shaper) waitTurn(ctx context.Context) error {
	for {
		s.mu.Lock()
		now := time.Now()
		rate, burst := s.ratePerS, s.burst
		var slow *BackoffRule
		if s.ruleActive(now) && s.rule.Slow > 0 {
			slow = s.rule
			if r := float64(slow.Slow) / 60; rate == 0 || r < rate {
				rate, burst = r, 1
			}
		}
		if rate == 0 {
			s.mu.Unlock()
			return nil
		}
		if !s.lastToken.IsZero() {
			s.tokens = min(burst, s.tokens+now.Sub(s.lastToken).Seconds()*rate)
		} else {
			s.tokens = min(s.tokens, burst)
		}
		s.lastToken = now
		if s.tokens >= 1 {
			s.tokens--
			s.mu.Unlock()
			return nil
		}
		wait := time.Duration((1 - s.tokens) / rate * float64(time.Second))
		s.mu.Unlock()
		if slow != nil && wait > maxRuleWait {
			return &errRuleRate{rule: slow, next: now.Add(wait)}
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}
