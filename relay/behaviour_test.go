package relay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

func TestRcptMaxSplitsTransactions(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{MaxRecipients: 2})
	s.AddDomain("example.com", "mx.example.com")
	var to []string
	for i := range 5 {
		to = append(to, fmt.Sprintf("u%d@example.com", i))
	}
	res, err := s.Client().Send(ctx(t), testMessage(to...))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.Count(relay.Delivered) != 5 {
		t.Fatalf("%+v", res)
	}
	msgs := s.Messages()
	if len(msgs) != 3 {
		t.Fatalf("%d transactions, want 3", len(msgs))
	}
	for _, m := range msgs {
		if len(m.To) > 2 {
			t.Errorf("transaction with %d recipients", len(m.To))
		}
	}
}

// "Too many recipients" sends the rest again in a further transaction, in
// each of the forms RFC 5321 §4.5.3.1.10 allows: 452, 451 4.5.3 and the
// old 552; when a transaction takes none, they are deferred, not bounced.
func TestTooManyRecipientsRetriedInNextTransaction(t *testing.T) {
	for _, tooMany := range []relaytest.Reply{
		{Code: 452, Enhanced: "4.5.3", Text: "too many recipients"},
		{Code: 451, Enhanced: "4.5.3", Text: "too many recipients"},
		{Code: 552, Enhanced: "5.5.3", Text: "too many recipients"},
		{Code: 552, Text: "recipient storage exceeded"},
	} {
		t.Run(fmt.Sprintf("%d %s", tooMany.Code, tooMany.Enhanced), func(t *testing.T) {
			s := newHarness(t)
			var mu sync.Mutex
			accepted, cap := 0, 2
			addHost(t, s, "mx.example.com", relaytest.HostConfig{
				MailReply: func(string) *relaytest.Reply {
					mu.Lock()
					accepted = 0
					mu.Unlock()
					return nil
				},
				RcptReply: func(string) *relaytest.Reply {
					mu.Lock()
					defer mu.Unlock()
					if accepted == cap {
						return &tooMany
					}
					accepted++
					return nil
				},
			})
			s.AddDomain("example.com", "mx.example.com")
			c := s.Client()
			res, err := c.Send(ctx(t), testMessage("a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"))
			if err != nil || res.Count(relay.Delivered) != 5 {
				t.Fatalf("err %v, %+v", err, res)
			}
			if n := len(s.Messages()); n != 3 {
				t.Errorf("%d transactions, want 3", n)
			}
			// A server that takes none: deferred, whatever the code.
			mu.Lock()
			cap = 0
			mu.Unlock()
			res, _ = c.Send(ctx(t), testMessage("f@example.com"))
			if r := res.Recipients[0]; r.Status != relay.Deferred {
				t.Errorf("none accepted: %v %d %s", r.Status, r.Code, r.Message)
			}
		})
	}
}

func TestSizeLimitBounces(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{MaxSize: 1000})
	s.AddDomain("example.com", "mx.example.com")
	m := testMessage("a@example.com")
	m.Text = strings.Repeat("long text ", 500)
	res, err := s.Client().Send(ctx(t), m)
	if err == nil || res.Recipients[0].Status != relay.Bounced || res.Recipients[0].Enhanced != "5.3.4" {
		t.Fatalf("err %v, %+v", err, res.Recipients)
	}
	if len(s.Messages()) != 0 {
		t.Error("an oversize message was sent")
	}
}

func TestSMTPUTF8(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	addHost(t, s, "mx.example.net", relaytest.HostConfig{NoSMTPUTF8: true})
	s.AddDomain("example.com", "mx.example.com")
	s.AddDomain("example.net", "mx.example.net")
	m := testMessage("jörg@example.com", "jörg@example.net", "plain@example.net")
	res, _ := s.Client().Send(ctx(t), m)
	got := map[string]relay.RecipientResult{}
	for _, r := range res.Recipients {
		got[r.Recipient] = r
	}
	if r := got["jörg@example.com"]; r.Status != relay.Delivered {
		t.Errorf("UTF-8 to SMTPUTF8 server: %+v", r)
	}
	if r := got["jörg@example.net"]; r.Status != relay.Bounced || r.Enhanced != "5.6.7" || !strings.Contains(r.Message, "SMTPUTF8") {
		t.Errorf("UTF-8 to ASCII-only server: %+v", r)
	}
	// The To field holds the UTF-8 addresses: the message needs SMTPUTF8
	// for every recipient (RFC 6531 §3.2), not only the UTF-8 ones.
	if r := got["plain@example.net"]; r.Status != relay.Bounced || r.Enhanced != "5.6.7" {
		t.Errorf("ASCII recipient of a UTF-8 header, ASCII-only server: %+v", r)
	}
	for _, m := range s.Messages() {
		if m.Host == "mx.example.net" || !m.SMTPUTF8 {
			t.Errorf("message to %s, SMTPUTF8 %v", m.Host, m.SMTPUTF8)
		}
	}
	// An ASCII envelope with a UTF-8 header asks for SMTPUTF8 too, by
	// Send and by SendRaw.
	m = testMessage("plain@example.com")
	m.ReplyTo = append(m.ReplyTo, addr("jörg@example.org"))
	res, err := s.Client().SendWith(ctx(t), m, nil)
	if err != nil {
		t.Fatalf("Send: %v %+v", err, res)
	}
	raw := "From: jörg@example.org\r\nTo: plain@example.com\r\n\r\nhi\r\n"
	if _, err := s.Client().SendRaw(ctx(t), "a@example.org", []string{"plain@example.com", "plain@example.net"}, strings.NewReader(raw)); err == nil {
		t.Error("SendRaw of a UTF-8 header to an ASCII-only server succeeded")
	}
	msgs := s.Messages()
	for _, m := range msgs[len(msgs)-2:] {
		if !m.SMTPUTF8 || m.Host != "mx.example.com" {
			t.Errorf("message to %s, SMTPUTF8 %v", m.Host, m.SMTPUTF8)
		}
	}
}

func TestEightBitOnlyWhenNeeded(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	for _, body := range []string{"plain ascii\r\n", "caf\xc3\xa9 8-bit\r\n"} {
		raw := "From: a@example.org\r\nTo: b@example.com\r\n\r\n" + body
		if _, err := c.SendRaw(ctx(t), "a@example.org", []string{"b@example.com"}, strings.NewReader(raw)); err != nil {
			t.Fatal(err)
		}
	}
	msgs := s.Messages()
	if len(msgs) != 2 || msgs[0].Body8Bit || !msgs[1].Body8Bit {
		t.Errorf("BODY=8BITMIME: ascii %v, 8-bit %v", msgs[0].Body8Bit, msgs[1].Body8Bit)
	}
}

// A connection dropped after the data defers: the server may or may not
// have the message, and a duplicate beats a loss.
func TestDropAfterDataDefers(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{
		DataReply: func(*relaytest.Message) *relaytest.Reply { return &relaytest.Reply{Drop: true} },
	})
	s.AddDomain("example.com", "mx.example.com")
	res, err := s.Client().Send(ctx(t), testMessage("a@example.com"))
	if err == nil || res.Recipients[0].Status != relay.Deferred {
		t.Fatalf("err %v, %+v", err, res.Recipients)
	}
	if msgs := s.Messages(); len(msgs) != 1 || !msgs[0].Dropped {
		t.Errorf("server record: %v", msgs)
	}
}

// A dead address of a host is skipped for the next one.
func TestNextAddress(t *testing.T) {
	s := newHarness(t)
	h := addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.DNS.Set("mx.example.com", mxtest.Domain{A: []string{"127.0.0.254", h.IP}})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	var tried []netip.Addr
	var mu sync.Mutex
	c.Trace = &relay.Trace{Connected: func(_ string, a netip.Addr, _ error) {
		mu.Lock()
		tried = append(tried, a)
		mu.Unlock()
	}}
	res, err := c.Send(ctx(t), testMessage("a@example.com"))
	if err != nil {
		t.Fatalf("Send: %v %+v", err, res)
	}
	if len(tried) != 2 || tried[0].String() != "127.0.0.254" {
		t.Errorf("tried %v", tried)
	}
}

func TestImplicitMX(t *testing.T) {
	s := newHarness(t)
	h := addHost(t, s, "example.com", relaytest.HostConfig{})
	res, err := s.Client().Send(ctx(t), testMessage("a@example.com"))
	if err != nil || res.Recipients[0].MX != "example.com" {
		t.Fatalf("err %v %+v (host %s)", err, res, h.IP)
	}
}

func TestTranscriptTraceAndLog(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	var transcript lockedTranscript
	var logs bytes.Buffer
	direct(c).DebugWriter = &transcript
	c.Logger = newTextLogger(&logs)
	var events []string
	var mu sync.Mutex
	add := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	c.Trace = &relay.Trace{
		MXResolved:    func(d string, h []mx.MX, err error) { add("mx " + d) },
		Connected:     func(h string, _ netip.Addr, err error) { add("connected " + h) },
		TLSDone:       func(h string, info relay.TLSInfo, err error) { add("tls " + info.Version) },
		RecipientDone: func(r relay.RecipientResult) { add("rcpt " + r.Recipient + " " + r.Status.String()) },
		AttemptDone:   func(d string, rs []relay.RecipientResult) { add("done " + d) },
	}
	m := testMessage("a@example.com")
	m.Text = "SECRET BODY TEXT"
	if _, err := c.Send(ctx(t), m); err != nil {
		t.Fatal(err)
	}
	want := "mx example.com|connected mx.example.com|tls TLS 1.3|rcpt a@example.com delivered|done example.com"
	if got := strings.Join(events, "|"); got != want {
		t.Errorf("trace:\n got %s\nwant %s", got, want)
	}
	tr := transcript.String()
	if !strings.Contains(tr, "mx.example.com C: MAIL FROM:<sender@example.org>") || !strings.Contains(tr, "STARTTLS") {
		t.Errorf("transcript lacks commands:\n%s", tr)
	}
	if strings.Contains(tr, "SECRET") {
		t.Error("transcript contains the message body")
	}
	if !strings.Contains(logs.String(), "rcpt=a@example.com") {
		t.Errorf("log: %s", logs.String())
	}
}

func TestBadInput(t *testing.T) {
	s := newHarness(t)
	c := s.Client()
	c.MaxMessageSize = 100
	if _, err := c.Send(ctx(t), nil); !errors.Is(err, relay.ErrInvalidMessage) {
		t.Errorf("nil message: %v", err)
	}
	if _, err := c.Send(ctx(t), &mime.Message{From: mail.Address{Address: "a@example.org"}, Text: "x"}); !errors.Is(err, relay.ErrInvalidMessage) || !errors.Is(err, mime.ErrNoRecipients) {
		t.Errorf("no recipients: %v", err)
	}
	if _, err := c.SendRaw(ctx(t), "a@example.org", []string{"b@example.com"}, strings.NewReader(strings.Repeat("x", 101))); !errors.Is(err, relay.ErrMessageTooLarge) {
		t.Errorf("oversize: %v", err)
	}
	if _, err := c.SendRaw(ctx(t), "a@example.org", nil, strings.NewReader("x")); !errors.Is(err, relay.ErrInvalidEnvelope) {
		t.Errorf("no recipients: %v", err)
	}
	if _, err := c.SendRaw(ctx(t), "a@example.org", []string{"b@example.com"}, nil); !errors.Is(err, relay.ErrInvalidMessage) {
		t.Errorf("nil reader: %v", err)
	}
	// A done context still gives a Result with every recipient, deferred.
	c.MaxMessageSize = 0
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := c.Send(cctx, testMessage("a@example.com", "b@example.net"))
	if !errors.Is(err, context.Canceled) || res == nil || len(res.Recipients) != 2 {
		t.Fatalf("canceled context: %v, %+v", err, res)
	}
	for _, r := range res.Recipients {
		if r.Status != relay.Deferred || !errors.Is(r.Err(), context.Canceled) {
			t.Errorf("canceled context: %+v", r)
		}
	}
}

// Every string that reaches an SMTP command line is checked up front: a
// bad EHLO name, in Hostname or a Source, fails the first call instead of
// every connection of a five-day retry schedule.
func TestBadHelloNameRefusedUpFront(t *testing.T) {
	for _, bad := range []string{"mäil.example.org", "-mail.example.org", "mail..example.org", "mail example.org", "[300.1.2.3]", "mail.example.org."} {
		s := newHarness(t)
		h := addHost(t, s, "mx.example.com", relaytest.HostConfig{})
		s.AddDomain("example.com", "mx.example.com")
		c := s.Client()
		direct(c).Hostname = bad
		c.Store = &queue.MemoryStore{}
		if res, err := c.Send(ctx(t), testMessage("a@example.com")); !errors.Is(err, relay.ErrInvalidEnvelope) || res != nil {
			t.Errorf("Hostname %q: Send %v, %+v", bad, err, res)
		}
		if _, err := c.Enqueue(ctx(t), testMessage("a@example.com")); !errors.Is(err, relay.ErrInvalidEnvelope) {
			t.Errorf("Hostname %q: Enqueue %v", bad, err)
		}
		if err := c.Run(ctx(t)); !errors.Is(err, relay.ErrInvalidEnvelope) {
			t.Errorf("Hostname %q: Run %v", bad, err)
		}
		direct(c).Hostname = ""
		c.Sources = []relay.Source{{Addr: netip.MustParseAddr("127.0.0.1"), Hostname: bad}}
		if _, err := c.Send(ctx(t), testMessage("a@example.com")); !errors.Is(err, relay.ErrInvalidEnvelope) {
			t.Errorf("Source Hostname %q: Send %v", bad, err)
		}
		if n := h.Connections(); n != 0 {
			t.Errorf("Hostname %q: %d connections", bad, n)
		}
	}
	for _, good := range []string{"xn--mil-ila.example.org", "mail-1.example.org", "[127.0.0.1]", "[IPv6:::1]", "localhost"} {
		s := newHarness(t)
		addHost(t, s, "mx.example.com", relaytest.HostConfig{})
		s.AddDomain("example.com", "mx.example.com")
		c := s.Client()
		direct(c).Hostname = good
		if _, err := c.Send(ctx(t), testMessage("a@example.com")); err != nil {
			t.Errorf("Hostname %q: %v", good, err)
		}
	}
}

// A 503 to RCPT after MAIL was accepted means the server lost track of
// the transaction (mox answers so when it kept an earlier one's state):
// the recipients are deferred, never bounced, and the session is not
// reused.
func TestBadSequenceDeferredNotBounced(t *testing.T) {
	s := newHarness(t)
	var mu sync.Mutex
	confused := true
	h := addHost(t, s, "mx.example.com", relaytest.HostConfig{
		RcptReply: func(string) *relaytest.Reply {
			mu.Lock()
			defer mu.Unlock()
			if confused {
				return &relaytest.Reply{Code: 503, Enhanced: "5.5.1", Text: "bad sequence of commands"}
			}
			return nil
		},
	})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	defer c.CloseIdleConnections()
	res, _ := c.Send(ctx(t), testMessage("a@example.com", "b@example.com"))
	for _, r := range res.Recipients {
		if r.Status != relay.Deferred {
			t.Errorf("%s: %v %d %s, want deferred", r.Recipient, r.Status, r.Code, r.Message)
		}
	}
	mu.Lock()
	confused = false
	mu.Unlock()
	before := h.Connections()
	if _, err := c.Send(ctx(t), testMessage("a@example.com")); err != nil {
		t.Fatal(err)
	}
	if h.Connections() == before {
		t.Error("the confused session was reused")
	}
}

// MaxMessageSize bounds Send and Enqueue as it bounds SendRaw: nothing is
// sent or stored.
func TestMaxMessageSizeBoundsEveryEntry(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	c.MaxMessageSize = 2000
	c.Store = &queue.MemoryStore{}
	m := testMessage("a@example.com")
	m.Text = strings.Repeat("long text ", 300)
	if res, err := c.Send(ctx(t), m); !errors.Is(err, relay.ErrMessageTooLarge) || res != nil {
		t.Errorf("Send: %v, %v", res, err)
	}
	if _, err := c.Enqueue(ctx(t), m); !errors.Is(err, relay.ErrMessageTooLarge) {
		t.Errorf("Enqueue: %v", err)
	}
	raw := "From: a@example.org\r\n\r\n" + strings.Repeat("long text\r\n", 300)
	if _, err := c.SendRaw(ctx(t), "a@example.org", []string{"a@example.com"}, strings.NewReader(raw)); !errors.Is(err, relay.ErrMessageTooLarge) {
		t.Errorf("SendRaw: %v", err)
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d messages sent", n)
	}
	if st, err := c.Queue().Stats(ctx(t)); err != nil || st.Queued != 0 {
		t.Errorf("queue %+v, %v", st, err)
	}
}
