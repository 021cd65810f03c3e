package relay_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"net/netip"

	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// Bodies that would end the data early or split the message on a lenient
// receiver (SMTP smuggling, CVE-2023-51764) arrive as exactly one message
// with CRLF lines.
func TestSmugglingBodies(t *testing.T) {
	bodies := map[string]string{
		"lf-dot-lf":     "a\n.\nMAIL FROM:<evil@example.org>\n",
		"crlf-dot-lf":   "a\r\n.\nRCPT TO:<evil@example.org>\r\n",
		"lf-dot-crlf":   "a\n.\r\nDATA\r\n",
		"bare-cr":       "a\r.\rb\r",
		"cr-dot-cr-lf":  "a\r\n.\r\r\nb\r\n",
		"final-no-eol":  "a\r\n.",
		"lone-dot-line": "a\r\n.\r\nQUIT\r\n",
	}
	for name, body := range bodies {
		for _, chunking := range []bool{true, false} {
			t.Run(name+map[bool]string{true: "/bdat", false: "/data"}[chunking], func(t *testing.T) {
				s := newHarness(t)
				addHost(t, s, "mx.example.com", relaytest.HostConfig{NoChunking: !chunking})
				s.AddDomain("example.com", "mx.example.com")
				msg := "From: a@example.org\r\nTo: b@example.com\r\nSubject: x\r\n\r\n" + body
				res, err := s.Client().SendRaw(ctx(t), "a@example.org", []string{"b@example.com"}, strings.NewReader(msg))
				if strings.Contains(strings.ReplaceAll(body, "\r\n", ""), "\r") {
					// A lone CR is refused before anything is sent.
					var me *relay.MessageError
					if !errors.As(err, &me) || me.Reason != "lone CR" {
						t.Fatalf("SendRaw = %v, want a lone CR *MessageError", err)
					}
					if n := len(s.WaitMessages(1, 100*time.Millisecond)); n != 0 {
						t.Fatalf("%d messages arrived, want none", n)
					}
					return
				}
				if err != nil {
					t.Fatalf("SendRaw: %v (%+v)", err, res)
				}
				msgs := s.WaitMessages(2, 200*time.Millisecond)
				if len(msgs) != 1 {
					t.Fatalf("%d messages arrived, want exactly 1", len(msgs))
				}
				if msgs[0].Chunked != chunking {
					t.Errorf("chunked = %v", msgs[0].Chunked)
				}
				data := msgs[0].Data
				for i, c := range data {
					if c == '\n' && (i == 0 || data[i-1] != '\r') {
						t.Fatalf("bare LF at %d in %q", i, data)
					}
					if c == '\r' && (i+1 == len(data) || data[i+1] != '\n') {
						t.Fatalf("bare CR at %d in %q", i, data)
					}
				}
				if !bytes.HasSuffix(data, []byte("\r\n")) {
					t.Errorf("message does not end in CRLF: %q", data)
				}
				if len(msgs[0].To) != 1 || msgs[0].To[0] != "b@example.com" {
					t.Errorf("envelope changed: %v", msgs[0].To)
				}
			})
		}
	}
}

// CR or LF in an envelope address or the EHLO name is refused before any
// connection is made.
func TestInjectionRefusedBeforeConnecting(t *testing.T) {
	s := newHarness(t)
	h := addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	msg := "From: a@example.org\r\n\r\nhi\r\n"
	c := s.Client()
	for _, env := range []struct{ from, to string }{
		{"a@example.org\r\nRCPT TO:<x@example.com>", "b@example.com"},
		{"a@example.org", "b@example.com\r\nDATA"},
		{"a@example.org", "b@example.com> NOTIFY=NEVER"},
		{"a@example.org\n", "b@example.com"},
		{"a@example.org", "b@exa\x00mple.com"},
	} {
		_, err := c.SendRaw(ctx(t), env.from, []string{env.to}, strings.NewReader(msg))
		if !errors.Is(err, relay.ErrInvalidEnvelope) {
			t.Errorf("SendRaw(%q, %q) = %v, want ErrInvalidEnvelope", env.from, env.to, err)
		}
	}
	direct(c).Hostname = "client.example\r\nMAIL FROM:<x@y>"
	res, err := c.SendRaw(ctx(t), "a@example.org", []string{"b@example.com"}, strings.NewReader(msg))
	if !errors.Is(err, relay.ErrInvalidEnvelope) || res != nil {
		t.Errorf("bad EHLO name: err=%v res=%+v", err, res)
	}
	if n := h.Connections(); n != 0 {
		t.Errorf("%d connections made, want 0", n)
	}
}

// Hostile servers defer the recipients; none crashes or hangs the client.
func TestHostileServers(t *testing.T) {
	cases := map[string]relaytest.HostConfig{
		"inject after STARTTLS": {InjectAfterSTARTTLS: "250 2.0.0 pwned\r\n"},
		"1 MB reply line":       {Greeting: "220 " + strings.Repeat("x", 1<<20) + "\r\n"},
		"10000 continuations":   {Greeting: strings.Repeat("220-hello\r\n", 10000) + "220 ok\r\n"},
		"garbage code":          {Greeting: "2x0 hello\r\n"},
		"421 greeting":          {Greeting: "421 4.3.2 too busy\r\n"},
		"never greets":          {NoGreeting: true},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			s := newHarness(t)
			h := addHost(t, s, "mx.example.com", cfg)
			s.AddDomain("example.com", "mx.example.com")
			c := s.Client()
			direct(c).ConnectTimeout = 2 * time.Second
			start := time.Now()
			res, err := c.Send(ctx(t), testMessage("b@example.com"))
			if err == nil {
				t.Fatal("Send succeeded")
			}
			r := res.Recipients[0]
			if r.Status != relay.Deferred {
				t.Errorf("status %v (%s), want deferred", r.Status, r.Message)
			}
			if h.Connections() == 0 {
				t.Error("no connection was made")
			}
			if len(s.Messages()) != 0 {
				t.Error("a message was delivered")
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// A hostile server at the first MX does not stop delivery to the second.
func TestNextMXAfterFailure(t *testing.T) {
	s := newHarness(t)
	bad := addHost(t, s, "mx1.example.com", relaytest.HostConfig{Greeting: "421 4.3.2 busy\r\n"})
	addHost(t, s, "mx2.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx1.example.com", "mx2.example.com")
	res, err := s.Client().Send(ctx(t), testMessage("b@example.com"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if r := res.Recipients[0]; r.MX != "mx2.example.com" || bad.Connections() != 1 {
		t.Errorf("result %+v, mx1 connections %d", r, bad.Connections())
	}
}

// MX records pointing at private addresses are refused when
// AllowPrivateAddrs is false, whatever the DNS says.
func TestPrivateAddressesRefused(t *testing.T) {
	s := newHarness(t)
	h := addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	s.DNS.Set("metadata.example", mxtest.Domain{A: []string{"169.254.169.254"}})
	s.DNS.Set("ula.example", mxtest.Domain{AAAA: []string{"fd00::25"}})
	// Forms the MX dialer used to let through.
	odd := map[string]mxtest.Domain{
		"nat64-local.example": {AAAA: []string{"64:ff9b:1::a00:1"}},
		"site-local.example":  {AAAA: []string{"fec0::25"}},
		"teredo.example":      {AAAA: []string{"2001:0:4136:e378:8000:63bf:3fff:fdd2"}},
		"bench.example":       {AAAA: []string{"2001:2::25"}},
		"doc.example":         {AAAA: []string{"3fff::25"}},
		"translated.example":  {AAAA: []string{"::ffff:0:a00:1"}},
		"relay6to4.example":   {A: []string{"192.88.99.1"}},
		"benchmark4.example":  {A: []string{"198.18.0.25"}},
		"reserved.example":    {A: []string{"240.0.0.25"}},
	}
	to := []string{"b@example.com", "c@metadata.example", "d@ula.example"}
	for name, d := range odd {
		s.DNS.Set(name, d)
		to = append(to, "x@"+name)
	}
	c := s.Client()
	direct(c).AllowPrivateAddrs = false
	var connected []string
	c.Trace = &relay.Trace{Connected: func(host string, addr netip.Addr, err error) {
		if err == nil {
			connected = append(connected, host)
		}
	}}
	res, err := c.Send(ctx(t), testMessage(to...))
	if err == nil {
		t.Fatal("Send succeeded")
	}
	for _, r := range res.Recipients {
		if r.Status != relay.Bounced || !strings.Contains(r.Message, "not globally reachable") {
			t.Errorf("%s: %v %q", r.Recipient, r.Status, r.Message)
		}
	}
	if h.Connections() != 0 || len(connected) != 0 {
		t.Errorf("connections made: %d %v", h.Connections(), connected)
	}
}
