package relay

import (
	"context"
	"strings"
	"sync"
	"time"
)

// Defaults for DestinationLimits, conservative like Postfix's.
const (
	DefaultMaxConnections           = 10
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
	return max(1, int(s.allowed))
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

// coolingUntil reports the end of the current back-off, if any.
func (s *shaper) coolingUntil(now time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.until, now.Before(s.until)
}

// waitTurn waits until the rate limit lets one more message go.
func (s *shaper) waitTurn(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.ratePerS == 0 {
			s.mu.Unlock()
			return nil
		}
		now := time.Now()
		if !s.lastToken.IsZero() {
			s.tokens = min(s.burst, s.tokens+now.Sub(s.lastToken).Seconds()*s.ratePerS)
		}
		s.lastToken = now
		if s.tokens >= 1 {
			s.tokens--
			s.mu.Unlock()
			return nil
		}
		wait := time.Duration((1 - s.tokens) / s.ratePerS * float64(time.Second))
		s.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}
