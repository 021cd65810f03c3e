package relay_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/bounce"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

const bounceDomain = "bounces.example.org"

// bounceHarness is a suppression harness whose Client sends from return
// paths in bounceDomain to a host that offers DSN, and serves
// ServeInbound on a loopback port, whose address it returns.
func bounceHarness(t *testing.T, configure ...func(*relay.Client)) (*relaytest.Server, *relay.Client, *eventLog, *queue.MemoryStore, string) {
	t.Helper()
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{DSN: true, RcptReply: func(rcpt string) *relaytest.Reply {
		if strings.HasPrefix(rcpt, "nobody@") {
			return &relaytest.Reply{Code: 550, Enhanced: "5.1.1", Text: "<" + rcpt + ">: Recipient address rejected: User unknown"}
		}
		return nil
	}})
	s.AddDomain("example.com", "mx.example.com")
	store := &queue.MemoryStore{}
	c := s.Client()
	c.Suppressions = store
	c.BounceDomain = bounceDomain
	c.LinkKeys = [][]byte{linkKey}
	c.Store = store
	events := newEventLog()
	c.Events = events.hook
	for _, f := range configure {
		f(c)
	}
	return s, c, events, store, serveInbound(t, c)
}

// serveInbound runs c.ServeInbound on a loopback port until the test ends.
func serveInbound(t *testing.T, c *relay.Client) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.ServeInbound(sctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("ServeInbound returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("ServeInbound did not return")
		}
	})
	return ln.Addr().String()
}

// smtpSession is a minimal SMTP client for the inbound tests: it speaks
// line by line so that a test sees every reply.
type smtpSession struct {
	t  *testing.T
	tp *textproto.Conn
	nc net.Conn
}

func dialInbound(t *testing.T, addr string) *smtpSession {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
	s := &smtpSession{t: t, tp: textproto.NewConn(nc), nc: nc}
	t.Cleanup(func() { nc.Close() })
	if code, msg := s.read(); code != 220 {
		t.Fatalf("greeting %d %s", code, msg)
	}
	return s
}

func (s *smtpSession) read() (int, string) {
	code, msg, err := s.tp.ReadResponse(0)
	if err != nil && code == 0 {
		s.t.Fatalf("reading a reply: %v", err)
	}
	return code, msg
}

// cmd sends one command and returns the reply.
func (s *smtpSession) cmd(format string, args ...any) (int, string) {
	s.t.Helper()
	if err := s.tp.PrintfLine(format, args...); err != nil {
		s.t.Fatal(err)
	}
	return s.read()
}

// send delivers one message from <from> to rcpts and returns the final
// reply code (or the first refusal's).
func (s *smtpSession) send(from string, rcpts []string, msg []byte) (int, string) {
	s.t.Helper()
	if code, m := s.cmd("EHLO mta.example.net"); code != 250 {
		return code, m
	}
	if code, m := s.cmd("MAIL FROM:<%s>", from); code != 250 {
		return code, m
	}
	for _, r := range rcpts {
		if code, m := s.cmd("RCPT TO:<%s>", r); code != 250 {
			return code, m
		}
	}
	if code, m := s.cmd("DATA"); code != 354 {
		return code, m
	}
	w := s.tp.DotWriter()
	w.Write(msg)
	w.Close()
	return s.read()
}

// deliverInbound sends one message to ServeInbound in a session of its own.
func deliverInbound(t *testing.T, addr, from, rcpt string, msg []byte) (int, string) {
	t.Helper()
	s := dialInbound(t, addr)
	code, m := s.send(from, []string{rcpt}, msg)
	s.cmd("QUIT")
	return code, m
}

// sent is what a host received for one recipient: its return path and
// the copy's header fields that bounce generators return.
type sent struct {
	rcpt, returnPath, envID, messageID string
	header                             string
}

var headerRE = regexp.MustCompile(`(?s)^(.*?)\r\n\r\n`)

func sentTo(t *testing.T, s *relaytest.Server, rcpt string) sent {
	t.Helper()
	for _, m := range s.Messages() {
		if len(m.To) == 1 && m.To[0] == rcpt {
			h := headerRE.FindSubmatch(m.Data)
			id := regexp.MustCompile(`(?mi)^Message-ID: <([^>]+)>`).FindSubmatch(m.Data)
			if h == nil || id == nil {
				t.Fatalf("no header or Message-ID in\n%s", m.Data)
			}
			return sent{rcpt: rcpt, returnPath: m.From, envID: m.EnvelopeID, messageID: string(id[1]), header: string(h[1])}
		}
	}
	t.Fatalf("no message for %s among %d", rcpt, len(s.Messages()))
	return sent{}
}

// postfixDSN is a bounce in the shape Postfix's bounce daemon writes
// (RFC 3464, with a text/rfc822-headers part for RET=HDRS).
func postfixDSN(m sent, action, status, diag string) []byte {
	subject, human := "Undelivered Mail Returned to Sender", "I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients."
	if action == "delayed" {
		subject, human = "Delayed Mail (still being retried)", "This is a warning only: the mail system has not been able to deliver the message yet."
	}
	return []byte(strings.ReplaceAll(fmt.Sprintf(`From: MAILER-DAEMON@mx.example.com (Mail Delivery System)
Subject: %[1]s
To: %[2]s
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"
Message-Id: <20261203.dsn@mx.example.com>

--B1
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.com.

%[3]s

<%[4]s>: %[7]s

--B1
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
X-Postfix-Queue-ID: 4AbCdE
Original-Envelope-Id: %[8]s
Arrival-Date: Thu,  3 Dec 2026 10:00:00 +0000 (UTC)

Final-Recipient: rfc822; %[4]s
Original-Recipient: rfc822;%[4]s
Action: %[5]s
Status: %[6]s
Remote-MTA: dns; mx.example.com
Diagnostic-Code: smtp; %[7]s

--B1
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

%[9]s

--B1--
`, subject, m.returnPath, human, m.rcpt, action, status, diag, m.envID, strings.ReplaceAll(m.header, "\r\n", "\n")), "\n", "\r\n"))
}

func TestVERPReturnPaths(t *testing.T) {
	s, c, _, _, _ := bounceHarness(t)
	res, err := c.Send(ctx(t), testMessage("ann@example.com", "bob@example.com"))
	if err != nil {
		t.Fatal(err, res)
	}
	msgs := s.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want one per recipient", len(msgs))
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		local, domain, _ := strings.Cut(m.From, "@")
		if domain != bounceDomain || len(local) > 64 || !regexp.MustCompile(`^b[a-z2-7]+$`).MatchString(local) {
			t.Errorf("return path %q", m.From)
		}
		if seen[m.From] {
			t.Errorf("two recipients share the return path %q", m.From)
		}
		seen[m.From] = true
		if m.EnvelopeID != local || m.Return != "HDRS" || len(m.OriginalRecipients) != 1 || m.OriginalRecipients[0] != m.To[0] {
			t.Errorf("DSN parameters: ENVID %q RET %q ORCPT %q for %v", m.EnvelopeID, m.Return, m.OriginalRecipients, m.To)
		}
	}

	// Without a BounceDomain nothing changes: the From address, one
	// transaction, no DSN parameters.
	s.Reset()
	c2 := s.Client()
	if _, err := c2.Send(ctx(t), testMessage("ann@example.com", "bob@example.com")); err != nil {
		t.Fatal(err)
	}
	if msgs := s.Messages(); len(msgs) != 1 || msgs[0].From != "sender@example.org" || msgs[0].EnvelopeID != "" {
		t.Errorf("without BounceDomain: %d messages, from %q", len(msgs), msgs[0].From)
	}
}

func TestBounceDomainNeedsKeys(t *testing.T) {
	s := newHarness(t)
	c := s.Client()
	c.BounceDomain = bounceDomain
	if _, err := c.Send(ctx(t), testMessage("ann@example.com")); !errors.Is(err, relay.ErrInvalidConfig) {
		t.Errorf("without LinkKeys: %v", err)
	}
	c = s.Client()
	c.BounceDomain, c.LinkKeys = "not a domain", [][]byte{linkKey}
	if _, err := c.Send(ctx(t), testMessage("ann@example.com")); !errors.Is(err, relay.ErrInvalidConfig) {
		t.Errorf("bad domain: %v", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	if err := s.Client().ServeInbound(ctx(t), ln); !errors.Is(err, relay.ErrInvalidConfig) {
		t.Errorf("ServeInbound without BounceDomain: %v", err)
	}
}

func TestLateBounceSuppresses(t *testing.T) {
	s, c, events, store, addr := bounceHarness(t)
	if _, err := c.Enqueue(ctx(t), testMessage("gone@example.com")); err != nil {
		t.Fatal(err)
	}
	runClient(t, c)
	s.WaitMessages(1, 20*time.Second)
	m := sentTo(t, s, "gone@example.com")

	dsn := postfixDSN(m, "failed", "5.1.1", "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown in virtual mailbox table")
	if code, msg := deliverInbound(t, addr, "", m.returnPath, dsn); code != 250 {
		t.Fatalf("DSN refused: %d %s", code, msg)
	}
	e := events.waitFor(t, relay.EventBounced, "gone@example.com")
	if !e.Async || e.Category != bounce.InvalidRecipient || e.DSN == nil || e.DSN.Status != "5.1.1" || e.DSN.RemoteMTA != "mx.example.com" || e.Enhanced != "5.1.1" || e.Code != 550 {
		t.Errorf("event %+v dsn %+v", e, e.DSN)
	}
	if e.MessageID == "" || e.Inbound == "" {
		t.Errorf("event does not name the job (%q) or the inbound message (%q)", e.MessageID, e.Inbound)
	}
	hits, err := store.Suppressed(ctx(t), "", []string{"gone@example.com"}, time.Now())
	if err != nil || len(hits) != 1 || hits[0].Reason != queue.HardBounced {
		t.Fatalf("suppression: %v %+v", err, hits)
	}
	if _, err := c.Send(ctx(t), testMessage("gone@example.com")); !errors.Is(err, relay.ErrSuppressed) {
		t.Errorf("after the late bounce, Send says %v", err)
	}
}

func TestDelayDSNDoesNotSuppress(t *testing.T) {
	s, c, events, store, addr := bounceHarness(t)
	if _, err := c.Send(ctx(t), testMessage("slow@example.com")); err != nil {
		t.Fatal(err)
	}
	m := sentTo(t, s, "slow@example.com")
	dsn := postfixDSN(m, "delayed", "4.4.1", "connect to mail.example.com[192.0.2.1]:25: Connection timed out")
	if code, msg := deliverInbound(t, addr, "", m.returnPath, dsn); code != 250 {
		t.Fatalf("DSN refused: %d %s", code, msg)
	}
	e := events.waitFor(t, relay.EventDelayed, "slow@example.com")
	if !e.Async || e.DSN == nil || e.DSN.Action != "delayed" {
		t.Errorf("event %+v", e)
	}
	if hits, _ := store.Suppressed(ctx(t), "", []string{"slow@example.com"}, time.Now()); len(hits) != 0 {
		t.Errorf("a delay suppressed: %+v", hits)
	}
}

func TestProcessInboundMatchesByEnvelopeID(t *testing.T) {
	s, c, _, store, _ := bounceHarness(t)
	if _, err := c.Send(ctx(t), testMessage("gone@example.com")); err != nil {
		t.Fatal(err)
	}
	m := sentTo(t, s, "gone@example.com")
	dsn := postfixDSN(m, "failed", "5.1.1", "550 5.1.1 user unknown")
	// The application's own MTA hands it over, without the address.
	res, err := c.ProcessInbound(ctx(t), "", bytes.NewReader(dsn))
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != relay.InboundBounce || res.Match != relay.MatchEnvelopeID || res.MessageID != m.messageID ||
		len(res.Suppressed) != 1 || res.Suppressed[0] != "gone@example.com" {
		t.Errorf("result %+v", res)
	}
	if hits, _ := store.Suppressed(ctx(t), "", []string{"gone@example.com"}, time.Now()); len(hits) != 1 {
		t.Errorf("not suppressed")
	}

	// The same report naming another address suppresses nothing: the
	// token says whom the message went to.
	forged := bytes.ReplaceAll(dsn, []byte("gone@example.com"), []byte("victim@example.com"))
	res, err = c.ProcessInbound(ctx(t), m.returnPath, bytes.NewReader(forged))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Suppressed) != 0 || len(res.Recipients) != 0 {
		t.Errorf("forged recipient: %+v", res)
	}
	if hits, _ := store.Suppressed(ctx(t), "", []string{"victim@example.com"}, time.Now()); len(hits) != 0 {
		t.Errorf("a forged recipient was suppressed")
	}

	// An address outside the bounce domain, or a bad token, is refused.
	for _, rcpt := range []string{"ann@example.com", "bxyz@" + bounceDomain, flip(m.returnPath)} {
		if _, err := c.ProcessInbound(ctx(t), rcpt, bytes.NewReader(dsn)); !errors.Is(err, relay.ErrNotInbound) {
			t.Errorf("ProcessInbound(%q) = %v", rcpt, err)
		}
	}
}

// flip changes one character of a return path's token.
func flip(addr string) string {
	b := []byte(addr)
	i := 10
	if b[i] == 'a' {
		b[i] = 'b'
	} else {
		b[i] = 'a'
	}
	return string(b)
}

func TestServeInboundRefuses(t *testing.T) {
	s, c, _, _, addr := bounceHarness(t, func(c *relay.Client) { c.Inbound.MaxMessageSize = 64 << 10 })
	if _, err := c.Send(ctx(t), testMessage("ann@example.com")); err != nil {
		t.Fatal(err)
	}
	m := sentTo(t, s, "ann@example.com")
	ses := dialInbound(t, addr)
	ses.cmd("EHLO mta.example.net")
	if code, _ := ses.cmd("MAIL FROM:<>"); code != 250 {
		t.Fatalf("MAIL %d", code)
	}
	for _, rcpt := range []string{
		"ann@example.com",                      // relaying
		"postmaster@example.com",               // relaying
		"someone@" + bounceDomain,              // not a token
		flip(m.returnPath),                     // forged token
		m.returnPath[:20] + "@" + bounceDomain, // truncated
	} {
		if code, msg := ses.cmd("RCPT TO:<%s>", rcpt); code != 550 {
			t.Errorf("RCPT %s: %d %s", rcpt, code, msg)
		}
	}
	// A token survives an MTA that upper-cases the local part.
	if code, msg := ses.cmd("RCPT TO:<%s>", strings.ToUpper(m.returnPath)); code != 250 {
		t.Errorf("upper-cased token: %d %s", code, msg)
	}
	if code, msg := ses.cmd("RCPT TO:<postmaster@%s>", bounceDomain); code != 250 {
		t.Errorf("postmaster: %d %s", code, msg)
	}
	ses.cmd("RSET")

	// Too many recipients.
	ses.cmd("MAIL FROM:<>")
	var last int
	for i := 0; i < relay.DefaultInboundRecipients+1; i++ {
		last, _ = ses.cmd("RCPT TO:<%s>", m.returnPath)
	}
	if last != 452 {
		t.Errorf("recipient %d: %d, want 452", relay.DefaultInboundRecipients+1, last)
	}
	ses.cmd("RSET")

	// Oversize: refused, and the session goes on.
	big := postfixDSN(m, "failed", "5.1.1", "550 5.1.1 unknown"+strings.Repeat("\n padding", 10000))
	if code, msg := ses.send("", []string{m.returnPath}, big); code != 552 {
		t.Errorf("oversize: %d %s", code, msg)
	}
}

func TestServeInboundSessionLimit(t *testing.T) {
	cc := &relay.Client{BounceDomain: bounceDomain, LinkKeys: [][]byte{linkKey}, Inbound: relay.InboundOptions{MaxSessions: 2}}
	addr := serveInbound(t, cc)
	a, b := dialInbound(t, addr), dialInbound(t, addr)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	line, _ := textproto.NewReader(bufio.NewReader(nc)).ReadLine()
	if !strings.HasPrefix(line, "421 ") {
		t.Errorf("third session: %q", line)
	}
	a.cmd("QUIT")
	b.cmd("QUIT")
}

func TestComplaint(t *testing.T) {
	s, c, events, store, addr := bounceHarness(t)
	if _, err := c.Send(ctx(t), testMessage("ann@example.com")); err != nil {
		t.Fatal(err)
	}
	m := sentTo(t, s, "ann@example.com")
	arf := arfReport(m, "ann@example.com")
	// Feedback loops send to the address registered with them: abuse@.
	if code, msg := deliverInbound(t, addr, "fbl@feedback.example.net", "abuse@"+bounceDomain, arf); code != 250 {
		t.Fatalf("ARF refused: %d %s", code, msg)
	}
	e := events.waitFor(t, relay.EventComplained, "ann@example.com")
	if !e.Async || e.Feedback == nil || e.Feedback.FeedbackType != "abuse" || e.Feedback.UserAgent == "" {
		t.Errorf("event %+v", e)
	}
	hits, _ := store.Suppressed(ctx(t), "", []string{"ann@example.com"}, time.Now())
	if len(hits) != 1 || hits[0].Reason != queue.Complained {
		t.Errorf("suppression %+v", hits)
	}
}

// arfReport is a complaint (RFC 5965) about m, as mailbox providers send
// them: the recipient may be redacted, the returned header is whole.
func arfReport(m sent, rcpt string) []byte {
	return []byte(strings.ReplaceAll(fmt.Sprintf(`From: <staff@feedback.example.net>
Date: Thu, 3 Dec 2026 12:00:00 +0000
Subject: FW: complaint
To: <abuse@%[1]s>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="part1"

--part1
Content-Type: text/plain; charset="US-ASCII"

This is an email abuse report for an email message received from IP
192.0.2.25 on Thu, 3 Dec 2026 11:00:00 +0000.

--part1
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Original-Mail-From: <%[2]s>
Original-Rcpt-To: <%[3]s>
Arrival-Date: Thu, 3 Dec 2026 11:00:00 +0000
Source-IP: 192.0.2.25

--part1
Content-Type: text/rfc822-headers

%[4]s

--part1--
`, bounceDomain, m.returnPath, rcpt, strings.ReplaceAll(m.header, "\r\n", "\n")), "\n", "\r\n"))
}

func TestAutoReplyIsNotABounce(t *testing.T) {
	s, c, events, store, addr := bounceHarness(t)
	if _, err := c.Send(ctx(t), testMessage("ann@example.com")); err != nil {
		t.Fatal(err)
	}
	m := sentTo(t, s, "ann@example.com")
	reply := []byte("From: Ann <ann@example.com>\r\nTo: " + m.returnPath + "\r\nSubject: Out of Office: " + "Grüße" +
		"\r\nAuto-Submitted: auto-replied\r\nDate: Thu, 3 Dec 2026 12:00:00 +0000\r\nMessage-ID: <ooo@example.com>\r\n\r\nI am away until Monday; your mail is not forwarded.\r\n")
	if code, msg := deliverInbound(t, addr, "ann@example.com", m.returnPath, reply); code != 250 {
		t.Fatalf("refused: %d %s", code, msg)
	}
	events.waitFor(t, relay.EventAutoReplied, "ann@example.com")
	if hits, _ := store.Suppressed(ctx(t), "", []string{"ann@example.com"}, time.Now()); len(hits) != 0 {
		t.Errorf("an auto-reply suppressed: %+v", hits)
	}
	for _, e := range events.all() {
		if e.Type == relay.EventBounced {
			t.Errorf("an auto-reply made a bounce: %+v", e)
		}
	}
}

func TestUnmatchedIsKept(t *testing.T) {
	s, c, events, _, addr := bounceHarness(t)
	if _, err := c.Send(ctx(t), testMessage("ann@example.com")); err != nil {
		t.Fatal(err)
	}
	m := sentTo(t, s, "ann@example.com")
	human := []byte("From: Ann <ann@example.com>\r\nTo: " + m.returnPath + "\r\nSubject: Re: your order\r\nDate: Thu, 3 Dec 2026 12:00:00 +0000\r\n\r\nThanks, but I ordered two.\r\n")
	if code, msg := deliverInbound(t, addr, "ann@example.com", m.returnPath, human); code != 250 {
		t.Fatalf("refused: %d %s", code, msg)
	}
	e := events.waitFor(t, relay.EventUnmatched, "")
	kept := c.Unmatched()
	if len(kept) != 1 || kept[0].ID != e.Inbound || !bytes.Contains(kept[0].Data, []byte("I ordered two")) || kept[0].Subject != "Re: your order" {
		t.Errorf("kept %+v for event %+v", kept, e)
	}
}

func TestUnsubscribeByMail(t *testing.T) {
	s, c, _, store, _ := listHarness(t)
	c.BounceDomain = bounceDomain
	events := newEventLog()
	c.Events = events.hook
	addr := serveInbound(t, c)
	if _, err := c.SendWith(ctx(t), testMessage("ann@example.com"), &relay.SendOptions{List: "news"}); err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	mt := regexp.MustCompile(`<mailto:([^?>]+)\?subject=([^>]+)>`).FindSubmatch(msgs[0].Data)
	if mt == nil {
		t.Fatalf("no mailto: in\n%s", msgs[0].Data[:600])
	}
	to, subject := string(mt[1]), strings.ReplaceAll(string(mt[2]), "%20", " ")
	if local, _, _ := strings.Cut(to, "@"); len(local) > 64 {
		t.Errorf("mailto local part of %d octets", len(local))
	}
	mail := []byte("From: Ann <ann@example.com>\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nDate: Thu, 3 Dec 2026 12:00:00 +0000\r\n\r\nunsubscribe\r\n")
	if code, msg := deliverInbound(t, addr, "ann@example.com", to, mail); code != 250 {
		t.Fatalf("refused: %d %s", code, msg)
	}
	e := events.waitFor(t, relay.EventUnsubscribed, "ann@example.com")
	if e.How != "mail" || e.List != "news" {
		t.Errorf("event %+v", e)
	}
	hits, _ := store.Suppressed(ctx(t), "news", []string{"ann@example.com"}, time.Now())
	if len(hits) != 1 || hits[0].Scope != "news" || hits[0].Reason != queue.Unsubscribed {
		t.Errorf("suppression %+v", hits)
	}
}

func TestMailboxFullSuppressesAfterDays(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{RcptReply: func(rcpt string) *relaytest.Reply {
		return &relaytest.Reply{Code: 552, Enhanced: "5.2.2", Text: "The email account that you tried to reach is over quota."}
	}})
	s.AddDomain("example.com", "mx.example.com")
	store := &queue.MemoryStore{}
	c := s.Client()
	c.Suppressions = store
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	relay.SetClock(c, func() time.Time { return now })
	full := func() []queue.Suppression {
		hits, err := store.Suppressed(ctx(t), "", []string{"full@example.com"}, now)
		if err != nil {
			t.Fatal(err)
		}
		return hits
	}
	for day := range 3 {
		res, _ := c.Send(ctx(t), testMessage("full@example.com"))
		if r := res.Recipients[0]; r.Category != bounce.MailboxFull {
			t.Fatalf("day %d: %+v", day, r)
		}
		if h := full(); len(h) != 0 {
			t.Fatalf("suppressed on day %d: %+v", day, h)
		}
		now = now.Add(24 * time.Hour)
	}
	// Full for three days running: an abandoned mailbox.
	c.Send(ctx(t), testMessage("full@example.com"))
	if h := full(); len(h) != 1 || h[0].Reason != queue.HardBounced || !strings.Contains(h[0].Source, "mailbox full since 2026-12-01") {
		t.Errorf("after three days: %+v", h)
	}

	// A gap of a week starts afresh.
	c.Unsuppress(ctx(t), "full@example.com", "")
	now = now.Add(7 * 24 * time.Hour)
	c.Send(ctx(t), testMessage("full@example.com"))
	now = now.Add(24 * time.Hour)
	c.Send(ctx(t), testMessage("full@example.com"))
	if h := full(); len(h) != 0 {
		t.Errorf("suppressed a day after a gap: %+v", h)
	}
}

func TestReturnPathsSurviveKeyRotation(t *testing.T) {
	s, c, events, _, _ := bounceHarness(t)
	if _, err := c.Send(ctx(t), testMessage("gone@example.com")); err != nil {
		t.Fatal(err)
	}
	m := sentTo(t, s, "gone@example.com")
	newKey := bytes.Repeat([]byte("n"), 32)
	rotated := s.Client()
	rotated.Suppressions, rotated.BounceDomain, rotated.Events = c.Suppressions, bounceDomain, events.hook
	rotated.LinkKeys = [][]byte{newKey, linkKey}
	dsn := postfixDSN(m, "failed", "5.1.1", "550 5.1.1 user unknown")
	if res, err := rotated.ProcessInbound(ctx(t), m.returnPath, bytes.NewReader(dsn)); err != nil || len(res.Suppressed) != 1 {
		t.Errorf("after rotation: %v %+v", err, res)
	}
	dropped := s.Client()
	dropped.BounceDomain, dropped.LinkKeys = bounceDomain, [][]byte{newKey}
	if _, err := dropped.ProcessInbound(ctx(t), m.returnPath, bytes.NewReader(dsn)); !errors.Is(err, relay.ErrNotInbound) {
		t.Errorf("with the old key dropped: %v", err)
	}
}

// all returns every event so far.
func (l *eventLog) all() []relay.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]relay.Event(nil), l.events...)
}

// qmailBounce is a bounce in qmail's QSBMF (cr.yp.to/proto/qsbmf.txt):
// no DSN, the recipient and the reason in the text, the copy below.
func qmailBounce(m sent) []byte {
	return []byte(strings.ReplaceAll(fmt.Sprintf(`Date: 3 Dec 2026 12:00:00 -0000
From: MAILER-DAEMON@mx.example.com
To: %[1]s
Subject: failure notice

Hi. This is the qmail-send program at mx.example.com.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<%[2]s>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

%[3]s

Hello.
`, m.returnPath, m.rcpt, strings.ReplaceAll(m.header, "\r\n", "\n")), "\n", "\r\n"))
}

func TestTextBounceSuppresses(t *testing.T) {
	s, c, events, store, addr := bounceHarness(t)
	if _, err := c.Send(ctx(t), testMessage("ghost@example.com")); err != nil {
		t.Fatal(err)
	}
	m := sentTo(t, s, "ghost@example.com")
	if code, msg := deliverInbound(t, addr, "", m.returnPath, qmailBounce(m)); code != 250 {
		t.Fatalf("refused: %d %s", code, msg)
	}
	e := events.waitFor(t, relay.EventBounced, "ghost@example.com")
	if !e.Async || e.Category != bounce.InvalidRecipient || e.MessageID != m.messageID {
		t.Errorf("event %+v", e)
	}
	if hits, _ := store.Suppressed(ctx(t), "", []string{"ghost@example.com"}, time.Now()); len(hits) != 1 {
		t.Errorf("not suppressed: %+v", hits)
	}
}

// A report that matches only by the returned Message-ID is reported, with
// the address it names, but suppresses nothing: nothing authenticates it.
func TestMessageIDMatchDoesNotSuppress(t *testing.T) {
	s, c, events, store, _ := bounceHarness(t)
	if _, err := c.Send(ctx(t), testMessage("gone@example.com")); err != nil {
		t.Fatal(err)
	}
	m := sentTo(t, s, "gone@example.com")
	m.envID = ""
	res, err := c.ProcessInbound(ctx(t), "", bytes.NewReader(postfixDSN(m, "failed", "5.1.1", "550 5.1.1 user unknown")))
	if err != nil {
		t.Fatal(err)
	}
	if res.Match != relay.MatchMessageID || res.MessageID != m.messageID || len(res.Suppressed) != 0 || len(res.Recipients) != 0 {
		t.Errorf("result %+v", res)
	}
	if e := events.waitFor(t, relay.EventBounced, "gone@example.com"); e.Category != bounce.InvalidRecipient {
		t.Errorf("event %+v", e)
	}
	if hits, _ := store.Suppressed(ctx(t), "", []string{"gone@example.com"}, time.Now()); len(hits) != 0 {
		t.Errorf("suppressed by an unauthenticated report: %+v", hits)
	}
}

// A complaint about a list message whose report keeps neither the return
// path nor the recipient is still matched, by the sealed link in the
// returned List-Unsubscribe.
func TestComplaintMatchedByLink(t *testing.T) {
	s, c, _, store, _ := listHarness(t)
	c.BounceDomain = bounceDomain
	if _, err := c.SendWith(ctx(t), testMessage("ann@example.com"), &relay.SendOptions{List: "news"}); err != nil {
		t.Fatal(err)
	}
	m := sentTo(t, s, "ann@example.com")
	m.returnPath = "redacted@feedback.example.net"
	// A provider that redacts the recipient everywhere.
	m.header = strings.ReplaceAll(m.header, "ann@example.com", "redacted@example.com")
	res, err := c.ProcessInbound(ctx(t), "abuse@"+bounceDomain, bytes.NewReader(arfReport(m, "redacted@example.com")))
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != relay.InboundComplaint || res.Match != relay.MatchLink || len(res.Suppressed) != 1 || res.Suppressed[0] != "ann@example.com" {
		t.Errorf("result %+v", res)
	}
	if hits, _ := store.Suppressed(ctx(t), "", []string{"ann@example.com"}, time.Now()); len(hits) != 1 || hits[0].Reason != queue.Complained {
		t.Errorf("suppression %+v", hits)
	}
}
