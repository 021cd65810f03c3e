package relay_test

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

const enforcePolicy = "version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n"

func TestTLSPolicies(t *testing.T) {
	type want struct {
		status   relay.Status
		tls      bool // delivered over TLS
		verified bool
		policy   string
	}
	cases := []struct {
		name  string
		host  relaytest.HostConfig
		setup func(c *relay.Client, s *relaytest.Server, h *relaytest.Host)
		want  want
	}{
		{"opportunistic valid", relaytest.HostConfig{}, nil,
			want{relay.Delivered, true, true, "opportunistic"}},
		{"opportunistic self-signed", relaytest.HostConfig{TLS: relaytest.TLSSelfSigned}, nil,
			want{relay.Delivered, true, false, "opportunistic"}},
		{"opportunistic broken handshake falls back to plaintext", relaytest.HostConfig{TLS: relaytest.TLSBroken}, nil,
			want{relay.Delivered, false, false, "opportunistic"}},
		{"opportunistic no STARTTLS", relaytest.HostConfig{TLS: relaytest.TLSNone}, nil,
			want{relay.Delivered, false, false, "opportunistic"}},
		{"required valid", relaytest.HostConfig{}, func(c *relay.Client, _ *relaytest.Server, _ *relaytest.Host) { direct(c).RequireTLS = true },
			want{relay.Delivered, true, true, "required"}},
		{"required self-signed", relaytest.HostConfig{TLS: relaytest.TLSSelfSigned}, func(c *relay.Client, _ *relaytest.Server, _ *relaytest.Host) { direct(c).RequireTLS = true },
			want{relay.Deferred, false, false, ""}},
		{"required no STARTTLS", relaytest.HostConfig{TLS: relaytest.TLSNone}, func(c *relay.Client, _ *relaytest.Server, _ *relaytest.Host) { direct(c).RequireTLS = true },
			want{relay.Deferred, false, false, ""}},
		{"mta-sts enforce valid", relaytest.HostConfig{}, func(_ *relay.Client, s *relaytest.Server, _ *relaytest.Host) {
			s.SetSTSPolicy("example.com", enforcePolicy)
		}, want{relay.Delivered, true, true, "mta-sts"}},
		{"mta-sts enforce handshake fails", relaytest.HostConfig{TLS: relaytest.TLSBroken}, func(_ *relay.Client, s *relaytest.Server, _ *relaytest.Host) {
			s.SetSTSPolicy("example.com", enforcePolicy)
		}, want{relay.Deferred, false, false, ""}},
		{"mta-sts enforce wrong name", relaytest.HostConfig{TLS: relaytest.TLSWrongName}, func(_ *relay.Client, s *relaytest.Server, _ *relaytest.Host) {
			s.SetSTSPolicy("example.com", enforcePolicy)
		}, want{relay.Deferred, false, false, ""}},
		{"mta-sts enforce MX not in policy", relaytest.HostConfig{}, func(_ *relay.Client, s *relaytest.Server, _ *relaytest.Host) {
			s.SetSTSPolicy("example.com", "version: STSv1\nmode: enforce\nmx: mail.other.example\nmax_age: 86400\n")
		}, want{relay.Deferred, false, false, ""}},
		{"mta-sts testing self-signed", relaytest.HostConfig{TLS: relaytest.TLSSelfSigned}, func(_ *relay.Client, s *relaytest.Server, _ *relaytest.Host) {
			s.SetSTSPolicy("example.com", "version: STSv1\nmode: testing\nmx: *.example.com\nmax_age: 86400\n")
		}, want{relay.Delivered, true, false, "opportunistic"}},
		{"dane-ee match", relaytest.HostConfig{TLS: relaytest.TLSSelfSigned}, func(_ *relay.Client, s *relaytest.Server, h *relaytest.Host) {
			publishTLSA(s, h, true, false)
			signChain(s, h)
		}, want{relay.Delivered, true, true, "dane"}},
		{"dane-ee mismatch", relaytest.HostConfig{TLS: relaytest.TLSSelfSigned}, func(_ *relay.Client, s *relaytest.Server, h *relaytest.Host) {
			publishTLSA(s, h, true, true)
			signChain(s, h)
		}, want{relay.Deferred, false, false, ""}},
		{"dane-ta match", relaytest.HostConfig{}, func(_ *relay.Client, s *relaytest.Server, h *relaytest.Host) {
			sum := sha256.Sum256(s.CACertificate().Raw)
			s.DNS.Set("_25._tcp."+h.Name, mxtest.Domain{TLSA: []mx.TLSA{{Usage: 2, Selector: 0, MatchingType: 1, Data: sum[:]}}, Faults: mxtest.Faults{AD: true}})
			signChain(s, h)
		}, want{relay.Delivered, true, true, "dane"}},
		{"dane-ta wrong name", relaytest.HostConfig{TLS: relaytest.TLSWrongName}, func(_ *relay.Client, s *relaytest.Server, h *relaytest.Host) {
			sum := sha256.Sum256(s.CACertificate().Raw)
			s.DNS.Set("_25._tcp."+h.Name, mxtest.Domain{TLSA: []mx.TLSA{{Usage: 2, Selector: 0, MatchingType: 1, Data: sum[:]}}, Faults: mxtest.Faults{AD: true}})
			signChain(s, h)
		}, want{relay.Deferred, false, false, ""}},
		{"dane only unusable records stays opportunistic", relaytest.HostConfig{TLS: relaytest.TLSSelfSigned}, func(_ *relay.Client, s *relaytest.Server, h *relaytest.Host) {
			s.DNS.Set("_25._tcp."+h.Name, mxtest.Domain{TLSA: []mx.TLSA{{Usage: 1, Selector: 1, MatchingType: 1, Data: make([]byte, 32)}}, Faults: mxtest.Faults{AD: true}})
			signChain(s, h)
		}, want{relay.Delivered, true, false, "opportunistic"}},
		{"dane no STARTTLS", relaytest.HostConfig{TLS: relaytest.TLSNone}, func(_ *relay.Client, s *relaytest.Server, h *relaytest.Host) {
			s.DNS.Set("_25._tcp.mx.example.com", mxtest.Domain{TLSA: []mx.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: make([]byte, 32)}}, Faults: mxtest.Faults{AD: true}})
			signChain(s, h)
		}, want{relay.Deferred, false, false, ""}},
		{"tlsa not authenticated is ignored", relaytest.HostConfig{TLS: relaytest.TLSSelfSigned}, func(_ *relay.Client, s *relaytest.Server, h *relaytest.Host) {
			publishTLSA(s, h, false, true)
		}, want{relay.Delivered, true, false, "opportunistic"}},
		{"tlsa lookup failure on a signed chain defers", relaytest.HostConfig{}, func(_ *relay.Client, s *relaytest.Server, h *relaytest.Host) {
			s.DNS.Set("_25._tcp.mx.example.com", mxtest.Domain{Faults: mxtest.Faults{ServFail: true}})
			signChain(s, h)
		}, want{relay.Deferred, false, false, ""}},
		// RFC 7672 §2.2: no DANE unless the MX and address lookups were
		// authenticated; a failing TLSA query is then never made.
		{"tlsa lookup failure on an unsigned zone is ignored", relaytest.HostConfig{}, func(_ *relay.Client, s *relaytest.Server, h *relaytest.Host) {
			s.DNS.Set("_25._tcp.mx.example.com", mxtest.Domain{Faults: mxtest.Faults{ServFail: true}})
		}, want{relay.Delivered, true, true, "opportunistic"}},
		{"signed tlsa under an unsigned MX is not used", relaytest.HostConfig{TLS: relaytest.TLSSelfSigned}, func(_ *relay.Client, s *relaytest.Server, h *relaytest.Host) {
			publishTLSA(s, h, true, true)
			s.DNS.Update(h.Name, func(d *mxtest.Domain) { d.Faults.AD = true })
		}, want{relay.Delivered, true, false, "opportunistic"}},
		{"signed tlsa of a host with unsigned addresses is not used", relaytest.HostConfig{TLS: relaytest.TLSSelfSigned}, func(_ *relay.Client, s *relaytest.Server, h *relaytest.Host) {
			publishTLSA(s, h, true, true)
			s.DNS.Update("example.com", func(d *mxtest.Domain) { d.Faults.AD = true })
		}, want{relay.Delivered, true, false, "opportunistic"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newHarness(t)
			h := addHost(t, s, "mx.example.com", tc.host)
			s.AddDomain("example.com", "mx.example.com")
			c := s.Client()
			if tc.setup != nil {
				tc.setup(c, s, h)
			}
			res, err := c.Send(ctx(t), testMessage("b@example.com"))
			r := res.Recipients[0]
			if r.Status != tc.want.status {
				t.Fatalf("status %v (%s), want %v", r.Status, r.Message, tc.want.status)
			}
			msgs := s.Messages()
			if tc.want.status != relay.Delivered {
				if err == nil || len(msgs) != 0 {
					t.Fatalf("err=%v, %d messages received", err, len(msgs))
				}
				return
			}
			if len(msgs) != 1 {
				t.Fatalf("%d messages received", len(msgs))
			}
			if (msgs[0].TLS != nil) != tc.want.tls || (r.TLS.Version != "") != tc.want.tls {
				t.Errorf("TLS: server saw %v, result says %q, want %v", msgs[0].TLS != nil, r.TLS.Version, tc.want.tls)
			}
			if r.TLS.Verified != tc.want.verified || r.TLS.Policy != tc.want.policy {
				t.Errorf("TLS info %+v, want verified=%v policy=%q", r.TLS, tc.want.verified, tc.want.policy)
			}
		})
	}
}

// signChain makes the MX records of example.com and h's addresses
// authenticated, as a validating resolver reports a signed zone.
func signChain(s *relaytest.Server, h *relaytest.Host) {
	for _, name := range []string{"example.com", h.Name} {
		s.DNS.Update(name, func(d *mxtest.Domain) { d.Faults.AD = true })
	}
}

// publishTLSA publishes a DANE-EE SPKI SHA-256 record for h's certificate
// (or a wrong one), authenticated or not. The chain to it (MX records and
// addresses) is signed separately, by signChain.
func publishTLSA(s *relaytest.Server, h *relaytest.Host, ad, wrong bool) {
	sum := sha256.Sum256(h.Certificate().RawSubjectPublicKeyInfo)
	if wrong {
		sum[0] ^= 0xff
	}
	s.DNS.Set("_25._tcp."+h.Name, mxtest.Domain{
		TLSA:   []mx.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: sum[:]}},
		Faults: mxtest.Faults{AD: ad},
	})
}

func TestTLSRequiredError(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{TLS: relaytest.TLSNone})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	direct(c).RequireTLS = true
	res, err := c.Send(ctx(t), testMessage("b@example.com"))
	if err == nil || relay.IsPermanent(err) {
		t.Fatalf("err = %v, want a temporary error", err)
	}
	if r := res.Recipients[0]; r.Enhanced != "4.7.5" {
		t.Errorf("enhanced %q (%s)", r.Enhanced, r.Message)
	}
	var re *relay.Error
	if !errors.As(err, &re) || re.Permanent {
		t.Errorf("errors.As: %v", err)
	}
}

// A plaintext retry after a failed opportunistic handshake is visible in
// the result, the event and the transcript.
func TestTLSFallbackRecorded(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{TLS: relaytest.TLSBroken})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	var transcript lockedTranscript
	direct(c).DebugWriter = &transcript
	log := newEventLog()
	c.Events = log.hook
	res, err := c.Send(ctx(t), testMessage("a@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	r := res.Recipients[0]
	if r.TLS.Version != "" || !strings.HasPrefix(r.TLS.Fallback, "after handshake error: ") {
		t.Errorf("TLS info %+v", r.TLS)
	}
	if !strings.Contains(transcript.String(), "mx.example.com [STARTTLS failed: ") {
		t.Errorf("transcript:\n%s", transcript.String())
	}
	if e := log.waitFor(t, relay.EventDelivered, "a@example.com"); e.TLS.Fallback != r.TLS.Fallback {
		t.Errorf("event TLS %+v", e.TLS)
	}
}
