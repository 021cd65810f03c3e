package relay_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// The sentinels the package documents work with errors.Is on the error of
// Send, SendRaw and Result.Err, and on each recipient's Err, and the host
// that failed is named even when no transaction began.
func TestSentinelsSurvive(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{HideSTARTTLS: true})
	s.AddDomain("example.com", "mx.example.com")
	s.DNS.Set("metadata.example", mxtest.Domain{A: []string{"169.254.169.254"}})

	tlsc := s.Client()
	direct(tlsc).RequireTLS = true
	private := s.Client()
	direct(private).AllowPrivateAddrs = false
	raw := "From: a@example.org\r\nTo: b@example.com\r\n\r\nhi\r\n"
	for _, tc := range []struct {
		name     string
		c        *relay.Client
		to       string
		sentinel error
		mx       string
	}{
		{"tls-required", tlsc, "b@example.com", relay.ErrTLSRequired, "mx.example.com"},
		{"forbidden", private, "b@metadata.example", relay.ErrForbiddenAddress, "metadata.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.c.Send(ctx(t), testMessage(tc.to))
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, tc.sentinel) {
					t.Errorf("%s: %v does not match %v", what, err, tc.sentinel)
				}
			}
			check("Send", err)
			check("Result.Err", res.Err())
			r := res.Recipients[0]
			check("RecipientResult.Err", r.Err())
			if r.MX != tc.mx {
				t.Errorf("MX %q, want %q", r.MX, tc.mx)
			}
			var re *relay.Error
			if !errors.As(err, &re) || re.Recipient != tc.to || re.Host != tc.mx {
				t.Errorf("errors.As: %+v", re)
			}
			_, err = tc.c.SendRaw(ctx(t), "a@example.org", []string{tc.to}, strings.NewReader(raw))
			check("SendRaw", err)
		})
	}
}

// A queued deferral keeps its cause in the event and result of the
// attempt that deferred it.
func TestDeferredEventHasCause(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{HideSTARTTLS: true})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	direct(c).RequireTLS = true
	c.Store = &queue.MemoryStore{}
	log := newEventLog()
	c.Events = log.hook
	var transcript lockedTranscript
	direct(c).DebugWriter = &transcript
	res, err := c.Send(ctx(t), testMessage("b@example.com"))
	if err != nil || res.QueueID == "" {
		t.Fatalf("Send: %v, %+v", err, res)
	}
	e := log.waitFor(t, relay.EventDeferred, "b@example.com")
	if !errors.Is(e.Err(), relay.ErrTLSRequired) || e.MX != "mx.example.com" {
		t.Errorf("event %+v: Err %v", e, e.Err())
	}
}
