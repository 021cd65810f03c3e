package relay

import (
	"context"
	"testing"
	"time"
)

func TestLimitsFor(t *testing.T) {
	c := &Direct{
		Limits: DestinationLimits{MaxConnections: 3},
		DestinationLimits: map[string]DestinationLimits{
			"*.google.com":             {MaxConnections: 20},
			"aspmx.l.google.com":       {MaxConnections: 30},
			"*.protection.outlook.com": {MessagesPerMinute: 60},
		},
	}
	for host, want := range map[string]int{
		"mx.example.com":                3,
		"alt1.l.google.com":             20,
		"aspmx.l.google.com":            30,
		"google.com":                    3,
		"x.mail.protection.outlook.com": DefaultMaxConnections,
	} {
		if got := c.limitsFor(host).MaxConnections; got != want {
			t.Errorf("%s: %d connections, want %d", host, got, want)
		}
	}
	if got := c.limitsFor("mx.example.com").MaxMessagesPerConnection; got != DefaultMaxMessagesPerConnection {
		t.Errorf("default messages per connection %d", got)
	}
}

func TestShaperAIMD(t *testing.T) {
	var s shaper
	s.init(DestinationLimits{MaxConnections: 8}.withDefaults())
	now := time.Now()
	s.pushedBack(now)
	s.pushedBack(now)
	if got := s.connLimit(); got != 2 {
		t.Errorf("after two push-backs: %d connections, want 2", got)
	}
	if until, ok := s.coolingUntil(now); !ok || until.Sub(now) != 2*minBackoff {
		t.Errorf("cooling until %v (%v)", until.Sub(now), ok)
	}
	for range 100 {
		s.succeeded()
	}
	if got := s.connLimit(); got != 8 {
		t.Errorf("after recovery: %d, want 8", got)
	}
	if _, ok := s.coolingUntil(now.Add(time.Hour)); ok {
		t.Error("still cooling an hour later")
	}
}

func TestShaperRate(t *testing.T) {
	var s shaper
	s.init(DestinationLimits{MessagesPerMinute: 60}.withDefaults()) // burst 6, one a second
	ctx := context.Background()
	for i := range 6 {
		if err := s.waitTurn(ctx); err != nil {
			t.Fatalf("turn %d: %v", i, err)
		}
	}
	// The bucket is empty: the next turn must wait, so a context that
	// is already over fails it.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.waitTurn(done); err == nil {
		t.Error("7th message went without waiting")
	}
}
