package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/bounce"
	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/report"
)

// The tests of this file check the other half of Client.BounceDomain
// with the delivery status notifications (RFC 3464) that real MTAs
// write: the peer accepts a message from mxrelay at RCPT, fails (or
// defers) it later, and its own bounce machinery sends the notice to the
// copy's return path in bounceDomain, which the peer routes to a
// ServeInbound on a loopback port. The notice must come back as an
// asynchronous event matched to the message and recipient, and an
// address that does not exist must land on the suppression list.
//
// ServeInbound's listener keeps what its clients sent, so that a failure
// shows the DSN as the peer wrote it. With MXRELAY_INTEROP_DSN_DIR set,
// the tests also write each DSN there (postfix-real-failed.eml,
// postfix-real-delayed.eml, exim-real-failed.eml), to refresh the
// report package's samples.

// bounceDomain is the Client's BounceDomain: the peers route it to
// ServeInbound.
const bounceDomain = "bounces.example.org"

// dsnWait bounds every wait for a notice or a delivery.
const dsnWait = 60 * time.Second

// The recipients: at example.com only known exists; Postfix relays
// relayed.example.com to a backend that knows nobody there, and
// slow.example.net to a port where nothing listens.
const (
	unknownRcpt = "unknown@example.com"
	knownRcpt   = "known@example.com"
	goneRcpt    = "gone@relayed.example.com"
	slowRcpt    = "slow@slow.example.net"
)

// TestPostfixLateBounce: Postfix accepts two addresses that do not exist
// at RCPT and fails them later: unknown@example.com in its virtual
// delivery agent ("5.1.1 unknown user"), and gone@relayed.example.com,
// which it relays to a backend smtpd that refuses it at RCPT (550 5.1.1
// "User unknown in virtual mailbox table"). The bounce daemon's DSN for
// each comes back to ServeInbound as an EventBounced matched to the
// queued job, and both addresses are suppressed, so that the next message
// to them is not sent. known@example.com, in the same message, is
// delivered and stays off the list.
func TestPostfixLateBounce(t *testing.T) {
	in := listenInbound(t)
	p := startPostfixBounceMX(t, in.port())
	r := newBounceRig(t, p, in)
	ctx, cancel := context.WithTimeout(context.Background(), 2*dsnWait)
	defer cancel()

	start := time.Now()
	id, err := r.c.Enqueue(ctx, bounceMessage("postfix-late", unknownRcpt, goneRcpt, knownRcpt))
	if err != nil {
		t.Fatal(err)
	}
	// Postfix takes every copy: mxrelay sees three deliveries.
	for _, rcpt := range []string{unknownRcpt, goneRcpt, knownRcpt} {
		e, ok := r.events.wait(dsnWait, func(e relay.Event) bool {
			return !e.Async && e.MessageID == id && e.Recipient == rcpt && isOutcome(e.Type)
		})
		if !ok {
			t.Fatalf("%s: no delivery outcome in %v\nevents:\n%s\n%s", rcpt, dsnWait, r.events, p.logs())
		}
		if e.Type != relay.EventDelivered {
			t.Fatalf("%s: %v (%d %s %s), want delivered: Postfix accepts every address at RCPT\n%s", rcpt, e.Type, e.Code, e.Enhanced, e.Message, p.logs())
		}
	}
	t.Logf("postfix: accepted in %v", time.Since(start).Round(time.Millisecond))

	for _, want := range []struct {
		rcpt, file     string
		diagType, diag string
		code           int
		remoteMTA      string
	}{
		// The virtual agent's own failure: no SMTP reply, no Remote-MTA.
		{rcpt: unknownRcpt, file: "postfix-real-failed.eml", diagType: "x-postfix", diag: `unknown user: "unknown@example.com"`},
		// The backend's refusal, passed on by Postfix's smtp client.
		{rcpt: goneRcpt, diagType: "smtp", diag: "User unknown in virtual mailbox table", code: 550, remoteMTA: "127.0.0.1"},
	} {
		e := r.waitNotice(t, p, want.rcpt, relay.EventBounced)
		t.Logf("postfix: bounce for %s back after %v", want.rcpt, time.Since(start).Round(time.Millisecond))
		dsn := r.in.noticeFor(t, want.rcpt)
		if want.file != "" {
			keepDSN(t, want.file, dsn)
		}
		if e.MessageID != id {
			t.Errorf("%s: bounce for message %q, want the job %q", want.rcpt, e.MessageID, id)
		}
		checkBounced(t, e, dsn, want.rcpt, "5.1.1")
		if d := e.DSN; d != nil {
			if d.OriginalRecipient != want.rcpt || d.FinalRecipient != want.rcpt {
				t.Errorf("DSN recipients: original %q, final %q, want %s (mxrelay sends ORCPT)", d.OriginalRecipient, d.FinalRecipient, want.rcpt)
			}
			if d.DiagnosticType != want.diagType || !strings.Contains(d.DiagnosticCode, want.diag) || d.Code != want.code {
				t.Errorf("Diagnostic-Code %s; %q (code %d), want %s; ...%s... (code %d)", d.DiagnosticType, d.DiagnosticCode, d.Code, want.diagType, want.diag, want.code)
			}
			if d.RemoteMTA != want.remoteMTA || e.MX != want.remoteMTA {
				t.Errorf("Remote-MTA %q, event MX %q, want %q", d.RemoteMTA, e.MX, want.remoteMTA)
			}
			if e.Code != want.code {
				t.Errorf("event code %d, want %d", e.Code, want.code)
			}
		}
		rep := parseDSN(t, dsn)
		if rep.ReportingMTA != p.mx {
			t.Errorf("Reporting-MTA %q, want %s", rep.ReportingMTA, p.mx)
		}
		if rep.OriginalEnvelopeID == "" || !strings.HasPrefix(dsn.rcpts[0], rep.OriginalEnvelopeID+"@") {
			t.Errorf("Original-Envelope-Id %q is not the token of the return path %s (mxrelay sends ENVID)", rep.OriginalEnvelopeID, dsn.rcpts[0])
		}
		if rep.Original == nil || rep.Original.MessageID != "postfix-late.interop@example.org" {
			t.Errorf("returned header %+v, want Message-ID postfix-late.interop@example.org", rep.Original)
		}
		checkReturned(t, dsn, false)
		r.checkSuppressed(t, want.rcpt, true)
	}

	// The known recipient was stored, had no bounce, and is not
	// suppressed.
	if got := p.stored(t, 1); len(got) != 1 || got[0].rcpt != knownRcpt {
		t.Errorf("stored %d messages (%+v), want one for %s", len(got), got, knownRcpt)
	}
	r.checkSuppressed(t, knownRcpt, false)
	if n := r.in.count(); n != 2 {
		t.Errorf("%d messages came back to the bounce domain, want 2:\n%s", n, r.in.describe())
	}
	if bad := r.events.all(func(e relay.Event) bool { return e.Async && e.Recipient == knownRcpt }); len(bad) > 0 {
		t.Errorf("asynchronous events for %s: %+v", knownRcpt, bad)
	}

	// The next message to those addresses is not sent.
	res, _ := r.c.Send(ctx, bounceMessage("postfix-again", unknownRcpt, goneRcpt))
	if res == nil || len(res.Recipients) != 2 || res.Recipients[0].Status != relay.Suppressed || res.Recipients[1].Status != relay.Suppressed {
		t.Errorf("a new message to %s and %s: %+v, want both suppressed", unknownRcpt, goneRcpt, res)
	}
}

// TestPostfixDelayDSN: Postfix accepts slow@slow.example.net, cannot
// pass it on (connection refused, 4.4.1) and, with delay_warning_time
// 1s, sends a "Delayed Mail (still being retried)" notice at its first
// deferral. It comes back as an asynchronous EventDelayed matched to the
// message (sent with Send, so by its Message-ID), and the address is not
// suppressed.
func TestPostfixDelayDSN(t *testing.T) {
	in := listenInbound(t)
	p := startPostfixBounceMX(t, in.port())
	r := newBounceRig(t, p, in)
	ctx, cancel := context.WithTimeout(context.Background(), 2*dsnWait)
	defer cancel()

	start := time.Now()
	m := bounceMessage("postfix-delay", slowRcpt)
	res, err := r.c.Send(ctx, m)
	if err != nil || res == nil || len(res.Recipients) != 1 || res.Recipients[0].Status != relay.Delivered {
		t.Fatalf("Send: %v %+v, want delivered to Postfix\n%s", err, res, p.logs())
	}
	accepted := time.Since(start)

	e := r.waitNotice(t, p, slowRcpt, relay.EventDelayed)
	t.Logf("postfix: accepted in %v, delay notice back after %v", accepted.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	dsn := r.in.noticeFor(t, slowRcpt)
	keepDSN(t, "postfix-real-delayed.eml", dsn)

	if e.MessageID != m.MessageID {
		t.Errorf("delay notice for message %q, want the Message-ID %q", e.MessageID, m.MessageID)
	}
	logNotice(t, e)
	if e.DSN == nil {
		t.Fatalf("EventDelayed without DSN: %+v\nDSN:\n%s", e, dsn.data)
	}
	if e.DSN.Action != "delayed" || e.DSN.Status != "4.4.1" || e.Enhanced != "4.4.1" {
		t.Errorf("Action %q, Status %q, Enhanced %q, want delayed 4.4.1", e.DSN.Action, e.DSN.Status, e.Enhanced)
	}
	if !strings.Contains(e.DSN.DiagnosticCode, "Connection refused") {
		t.Errorf("Diagnostic-Code %q, want Postfix's connection refused", e.DSN.DiagnosticCode)
	}
	if e.DSN.WillRetryUntil.IsZero() {
		t.Error("no Will-Retry-Until")
	}
	if e.Category != bounce.Routing {
		t.Errorf("category %v, want %v for a refused connection", e.Category, bounce.Routing)
	}
	if err := e.Err(); err == nil {
		t.Error("EventDelayed.Err() is nil")
	} else if re := (*relay.Error)(nil); !errors.As(err, &re) || re.Permanent {
		t.Errorf("EventDelayed.Err() = %#v, want a temporary *relay.Error", err)
	}
	if rep := parseDSN(t, dsn); rep.ReportingMTA != p.mx {
		t.Errorf("Reporting-MTA %q, want %s", rep.ReportingMTA, p.mx)
	}
	checkReturned(t, dsn, false)
	r.checkSuppressed(t, slowRcpt, false)
	if bad := r.events.all(func(e relay.Event) bool { return e.Type == relay.EventBounced }); len(bad) > 0 {
		t.Errorf("a delay notice gave bounces: %+v", bad)
	}
}

// TestEximLateBounce: Exim 4.96 accepts unknown@example.com at RCPT and a
// redirect router fails it at delivery (":fail: Unknown user"). Exim's
// own DSN says only "Status: 5.0.0", with no Diagnostic-Code: the reason
// is in the human-readable part, and X-Failed-Recipients names the
// address. It must still come back as an invalid recipient, matched to
// the message (sent with Send: by its Message-ID) and suppressed.
//
// Exim offers DSN only to dsn_advertise_hosts, empty by default: then
// mxrelay sends no ENVID or RET, and the notice returns the whole
// message. Both ways are tried.
func TestEximLateBounce(t *testing.T) {
	for _, dsn := range []bool{false, true} {
		name := "default"
		if dsn {
			name = "dsn_advertise_hosts"
		}
		t.Run(name, func(t *testing.T) {
			in := listenInbound(t)
			p := startEximBounceMX(t, in.port(), dsn)
			r := newBounceRig(t, p, in)
			ctx, cancel := context.WithTimeout(context.Background(), 2*dsnWait)
			defer cancel()

			start := time.Now()
			m := bounceMessage("exim-late-"+name, unknownRcpt, knownRcpt)
			res, err := r.c.Send(ctx, m)
			if err != nil || res == nil || len(res.Recipients) != 2 {
				t.Fatalf("Send: %v %+v\n%s", err, res, p.logs())
			}
			for _, rr := range res.Recipients {
				if rr.Status != relay.Delivered {
					t.Fatalf("%s: %v (%d %s), want delivered: Exim accepts every address at RCPT\n%s", rr.Recipient, rr.Status, rr.Code, rr.Message, p.logs())
				}
			}
			accepted := time.Since(start)

			e := r.waitNotice(t, p, unknownRcpt, relay.EventBounced)
			t.Logf("exim (%s): accepted in %v, bounce back after %v", name, accepted.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			raw := r.in.noticeFor(t, unknownRcpt)
			if !dsn {
				keepDSN(t, "exim-real-failed.eml", raw)
			}

			if e.MessageID != m.MessageID {
				t.Errorf("bounce for message %q, want the Message-ID %q", e.MessageID, m.MessageID)
			}
			checkBounced(t, e, raw, unknownRcpt, "5.0.0")
			// The reason is only in the text, under the address.
			if e.Message != "Unknown user" {
				t.Errorf("event message %q, want the reason Exim gives under the address", e.Message)
			}
			if e.DSN != nil && e.DSN.FinalRecipient != unknownRcpt {
				t.Errorf("Final-Recipient %q, want %s", e.DSN.FinalRecipient, unknownRcpt)
			}
			rep := parseDSN(t, raw)
			if rep.ReportingMTA != p.mx {
				t.Errorf("Reporting-MTA %q, want %s", rep.ReportingMTA, p.mx)
			}
			if got := rep.Header.Get("X-Failed-Recipients"); got != unknownRcpt {
				t.Errorf("X-Failed-Recipients %q, want %s", got, unknownRcpt)
			}
			if !strings.Contains(rep.Text, "Unknown user") {
				t.Errorf("the human-readable part does not say Unknown user:\n%s", rep.Text)
			}
			if dsn && (rep.OriginalEnvelopeID == "" || !strings.HasPrefix(raw.rcpts[0], rep.OriginalEnvelopeID+"@")) {
				t.Errorf("Original-Envelope-ID %q is not the token of the return path %s", rep.OriginalEnvelopeID, raw.rcpts[0])
			}
			// Without DSN, mxrelay cannot ask for the header only.
			checkReturned(t, raw, !dsn)
			r.checkSuppressed(t, unknownRcpt, true)

			if got := p.stored(t, 1); len(got) != 1 || got[0].rcpt != knownRcpt {
				t.Errorf("stored %d messages (%+v), want one for %s", len(got), got, knownRcpt)
			}
			r.checkSuppressed(t, knownRcpt, false)
			if n := r.in.count(); n != 1 {
				t.Errorf("%d messages came back to the bounce domain, want 1:\n%s", n, r.in.describe())
			}
		})
	}
}

// checkBounced checks an asynchronous EventBounced for rcpt: an invalid
// recipient, with the DSN's Action and Status.
func checkBounced(t *testing.T, e relay.Event, dsn inboundCopy, rcpt, status string) {
	t.Helper()
	logNotice(t, e)
	if e.Category != bounce.InvalidRecipient {
		t.Errorf("category %v, want %v\nevent: %+v\nDSN:\n%s", e.Category, bounce.InvalidRecipient, e, dsn.data)
	}
	if _, domain, _ := strings.Cut(rcpt, "@"); e.Domain != domain {
		t.Errorf("domain %q, want %s", e.Domain, domain)
	}
	if e.DSN == nil {
		t.Errorf("EventBounced without DSN: %+v\nDSN:\n%s", e, dsn.data)
		return
	}
	if e.DSN.Action != "failed" || e.DSN.Status != status || e.Enhanced != status {
		t.Errorf("Action %q, Status %q, Enhanced %q, want failed %s\nDSN:\n%s", e.DSN.Action, e.DSN.Status, e.Enhanced, status, dsn.data)
	}
	if err := e.Err(); err == nil {
		t.Error("EventBounced.Err() is nil")
	}
}

// checkReturned checks whether a notice returned the message's body:
// mxrelay asks for the header only (RET=HDRS) where the server offers DSN.
func checkReturned(t *testing.T, dsn inboundCopy, body bool) {
	t.Helper()
	text := strings.TrimSuffix(bounceBody, "\n")
	if got := bytes.Contains(dsn.data, []byte(text)); got != body {
		t.Errorf("the notice holds the message body: %v, want %v (RET=HDRS is sent only where the server offers DSN)", got, body)
	}
}

// logNotice logs what an asynchronous event says.
func logNotice(t *testing.T, e relay.Event) {
	t.Helper()
	var d report.Recipient
	if e.DSN != nil {
		d = *e.DSN
	}
	t.Logf("%v %s: category %v, code %d, enhanced %s, mx %q, message %q; DSN: action %s, status %s, diagnostic %s; %q, remote-mta %q",
		e.Type, e.Recipient, e.Category, e.Code, e.Enhanced, e.MX, e.Message, d.Action, d.Status, d.DiagnosticType, d.DiagnosticCode, d.RemoteMTA)
}

// bounceBody is the text of every message the bounce tests send; a
// notice that returns only the header (RET=HDRS) does not hold it.
const bounceBody = "This message is accepted now and may come back later.\n"

// bounceMessage is a plain message from zoe@example.org to rcpts, with
// Message-ID name.interop@example.org.
func bounceMessage(name string, rcpts ...string) *mime.Message {
	m := &mime.Message{
		From:    mail.Address{Name: "Zoë Sender", Address: "zoe@example.org"},
		Subject: "late bounce: " + name, Date: time.Now(), MessageID: name + ".interop@example.org",
		Header: map[string][]string{caseField: {name}},
		Text:   bounceBody,
	}
	for _, r := range rcpts {
		m.To = append(m.To, mail.Address{Address: r})
	}
	return m
}

// isOutcome reports whether an event ends one delivery attempt of a
// recipient.
func isOutcome(t relay.EventType) bool {
	switch t {
	case relay.EventDelivered, relay.EventDeferred, relay.EventBounced, relay.EventExpired, relay.EventSuppressed:
		return true
	}
	return false
}

// parseDSN parses a notice with package report, as ServeInbound does.
func parseDSN(t *testing.T, c inboundCopy) *report.Report {
	t.Helper()
	rep, err := report.Parse(bytes.NewReader(c.data))
	if err != nil {
		t.Fatalf("report.Parse: %v\n%s", err, c.data)
	}
	if rep.Kind != report.DSN {
		t.Errorf("report kind %v, want DSN", rep.Kind)
	}
	return rep
}

// keepDSN writes a notice into MXRELAY_INTEROP_DSN_DIR under name, when
// that is set.
func keepDSN(t *testing.T, name string, c inboundCopy) {
	t.Helper()
	dir := os.Getenv("MXRELAY_INTEROP_DSN_DIR")
	if dir == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), c.data, 0o644); err != nil {
		t.Error(err)
	}
}

// bounceZone is the DNS the client sees: the peer is the MX of every
// recipient domain.
func bounceZone(p *peer) mxtest.Zone {
	return mxtest.Zone{
		"example.com":         {MX: []mx.MX{{Host: p.mx, Pref: 10}}},
		"relayed.example.com": {MX: []mx.MX{{Host: p.mx, Pref: 10}}},
		"slow.example.net":    {MX: []mx.MX{{Host: p.mx, Pref: 10}}},
		p.mx:                  {A: []string{"127.0.0.1"}},
	}
}

// bounceRig is a Client that sends to a peer from return paths in
// bounceDomain and receives what comes back with ServeInbound, with its
// queue running, its events logged and a suppression list.
type bounceRig struct {
	c      *relay.Client
	store  *queue.MemoryStore
	events *eventLog
	in     *inboundListener
}

// newBounceRig configures the Client for p and serves in until the test
// ends.
func newBounceRig(t *testing.T, p *peer, in *inboundListener) *bounceRig {
	t.Helper()
	key := make([]byte, relay.MinLinkKeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	r := &bounceRig{store: &queue.MemoryStore{}, events: &eventLog{}, in: in}
	c := newClient(t, p, bounceZone(p))
	c.Store, c.Suppressions = r.store, r.store
	c.BounceDomain, c.LinkKeys = bounceDomain, [][]byte{key}
	c.Inbound.Hostname = "inbound.example.org"
	c.Events = r.events.hook
	r.c = c

	ctx, cancel := context.WithCancel(context.Background())
	served, ran := make(chan error, 1), make(chan error, 1)
	go func() { served <- c.ServeInbound(ctx, in) }()
	go func() { ran <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for what, ch := range map[string]chan error{"ServeInbound": served, "Run": ran} {
			select {
			case err := <-ch:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("%s returned %v", what, err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("%s did not return", what)
			}
		}
	})
	return r
}

// waitNotice waits for the asynchronous event of the notice for rcpt,
// which must be of type want.
func (r *bounceRig) waitNotice(t *testing.T, p *peer, rcpt string, want relay.EventType) relay.Event {
	t.Helper()
	e, ok := r.events.wait(dsnWait, func(e relay.Event) bool {
		return e.Async && e.Recipient == rcpt && (e.Type == relay.EventBounced || e.Type == relay.EventDelayed)
	})
	if !ok {
		t.Fatalf("no notice for %s in %v\nevents:\n%s\ncame back:\n%s\nunmatched: %d\n%s",
			rcpt, dsnWait, r.events, r.in.describe(), len(r.c.Unmatched()), p.logs())
	}
	if e.Type != want {
		t.Fatalf("%v for %s, want %v: %+v\ncame back:\n%s", e.Type, rcpt, want, e, r.in.describe())
	}
	return e
}

// checkSuppressed checks whether addr is on the suppression list for all
// mail, as a hard bounce. The entry is written before the event is
// emitted; the wait is only a bound.
func (r *bounceRig) checkSuppressed(t *testing.T, addr string, want bool) {
	t.Helper()
	var got []queue.Suppression
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		got, err = r.store.Suppressed(context.Background(), "", []string{addr}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 0 == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	switch {
	case want && len(got) == 0:
		t.Errorf("%s is not on the suppression list", addr)
	case want && got[0].Reason != queue.HardBounced:
		t.Errorf("%s is suppressed as %v, want %v: %+v", addr, got[0].Reason, queue.HardBounced, got[0])
	case !want && len(got) > 0:
		t.Errorf("%s is suppressed: %+v", addr, got)
	case want:
		t.Logf("%s suppressed: %v, source %q", addr, got[0].Reason, got[0].Source)
	}
}

// eventLog keeps a Client's events.
type eventLog struct {
	mu     sync.Mutex
	events []relay.Event
}

func (l *eventLog) hook(e relay.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// all returns the events match accepts.
func (l *eventLog) all(match func(relay.Event) bool) []relay.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []relay.Event
	for _, e := range l.events {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// wait returns the first event match accepts, waiting for it up to
// timeout.
func (l *eventLog) wait(timeout time.Duration, match func(relay.Event) bool) (relay.Event, bool) {
	deadline := time.Now().Add(timeout)
	for {
		if got := l.all(match); len(got) > 0 {
			return got[0], true
		}
		if time.Now().After(deadline) {
			return relay.Event{}, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// String lists the events, one a line, for failure messages.
func (l *eventLog) String() string {
	var b strings.Builder
	for _, e := range l.all(func(relay.Event) bool { return true }) {
		fmt.Fprintf(&b, "  %v async=%v msg=%s rcpt=%s %d %s %q category=%v\n", e.Type, e.Async, e.MessageID, e.Recipient, e.Code, e.Enhanced, e.Message, e.Category)
	}
	return b.String()
}

// inboundListener is ServeInbound's listener on a loopback port. It keeps
// every byte its clients send, so that the tests can show each message
// as the peer sent it.
type inboundListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*bytes.Buffer // what each connection's client sent
}

// listenInbound opens the listener before the peer starts, since the
// peer's configuration names its port.
func listenInbound(t *testing.T) *inboundListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() }) // ServeInbound closes it too
	return &inboundListener{Listener: ln}
}

func (l *inboundListener) port() int { return l.Addr().(*net.TCPAddr).Port }

func (l *inboundListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	b := new(bytes.Buffer)
	l.mu.Lock()
	l.conns = append(l.conns, b)
	l.mu.Unlock()
	return &recordedConn{Conn: c, l: l, b: b}, nil
}

// recordedConn copies what it reads into its buffer.
type recordedConn struct {
	net.Conn
	l *inboundListener
	b *bytes.Buffer // guarded by l.mu
}

func (c *recordedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.l.mu.Lock()
		c.b.Write(p[:n])
		c.l.mu.Unlock()
	}
	return n, err
}

// inboundCopy is one message a client sent to ServeInbound.
type inboundCopy struct {
	from  string
	rcpts []string
	data  []byte // as sent (CRLF line ends), without dot-stuffing
}

// messages returns the messages sent so far, in full.
func (l *inboundListener) messages() []inboundCopy {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []inboundCopy
	for _, b := range l.conns {
		out = append(out, parseTranscript(b.Bytes())...)
	}
	return out
}

func (l *inboundListener) count() int { return len(l.messages()) }

// noticeFor returns the one message that came back about rcpt (whose
// report has a recipient group for it), failing the test if there is
// not exactly one.
func (l *inboundListener) noticeFor(t *testing.T, rcpt string) inboundCopy {
	t.Helper()
	var found []inboundCopy
	for _, m := range l.messages() {
		rep, err := report.Parse(bytes.NewReader(m.data))
		if err != nil {
			continue
		}
		if slices.ContainsFunc(rep.Recipients, func(g report.Recipient) bool { return g.FinalRecipient == rcpt }) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d messages about %s came back, want 1:\n%s", len(found), rcpt, l.describe())
	}
	if len(found[0].rcpts) != 1 || !strings.HasSuffix(found[0].rcpts[0], "@"+bounceDomain) || found[0].from != "" {
		t.Fatalf("the notice came from <%s> to %q, want from <> to one return path", found[0].from, found[0].rcpts)
	}
	return found[0]
}

// describe lists the messages that came back, for failure messages.
func (l *inboundListener) describe() string {
	var b strings.Builder
	for _, m := range l.messages() {
		fmt.Fprintf(&b, "--- from <%s> to %q, %d bytes:\n%s\n", m.from, m.rcpts, len(m.data), m.data)
	}
	if b.Len() == 0 {
		return "(nothing)"
	}
	return b.String()
}

// parseTranscript finds the messages in what an SMTP client sent: each
// MAIL, its RCPTs, and the message sent with DATA or BDAT (RFC 3030).
// It assumes the server took every command, which ServeInbound does for
// mail to valid return paths; a message still being sent is left out.
func parseTranscript(b []byte) []inboundCopy {
	var out []inboundCopy
	var cur inboundCopy
	for {
		i := bytes.Index(b, []byte("\r\n"))
		if i < 0 {
			return out
		}
		verb, arg, _ := strings.Cut(string(b[:i]), " ")
		b = b[i+2:]
		switch strings.ToUpper(verb) {
		case "MAIL":
			cur = inboundCopy{from: pathArg(arg)}
		case "RCPT":
			cur.rcpts = append(cur.rcpts, pathArg(arg))
		case "DATA":
			var body []byte
			if end, ok := bytes.CutPrefix(b, []byte(".\r\n")); ok {
				b = end
			} else {
				i := bytes.Index(b, []byte("\r\n.\r\n"))
				if i < 0 {
					return out
				}
				body, b = b[:i+2], b[i+5:]
			}
			// RFC 5321 §4.5.2: a line's first period is the client's.
			body = bytes.TrimPrefix(body, []byte("."))
			cur.data = bytes.ReplaceAll(body, []byte("\r\n."), []byte("\r\n"))
			out = append(out, cur)
			cur = inboundCopy{}
		case "BDAT":
			f := strings.Fields(arg)
			if len(f) == 0 {
				return out
			}
			n, err := strconv.Atoi(f[0])
			if err != nil || n < 0 || n > len(b) {
				return out
			}
			cur.data = append(cur.data, b[:n]...)
			b = b[n:]
			if len(f) > 1 && strings.EqualFold(f[1], "LAST") {
				out = append(out, cur)
				cur = inboundCopy{}
			}
		}
	}
}

// pathArg is the address in a MAIL or RCPT argument: "FROM:<a@b> SIZE=1"
// → "a@b".
func pathArg(arg string) string {
	_, rest, ok := strings.Cut(arg, "<")
	if !ok {
		return ""
	}
	path, _, _ := strings.Cut(rest, ">")
	return path
}

// deadPort returns a loopback port that refuses connections until the
// test ends: a socket is bound to it but never listens, so no other
// process can take the port meanwhile.
func deadPort(t *testing.T) int {
	t.Helper()
	// Close-on-exec under ForkLock, as package net does, so that the
	// peers started meanwhile do not inherit the socket.
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}

// startPostfixBounceMX starts a private Postfix for the bounce tests:
//
//   - example.com's mailboxes are virtual, and only known@ exists; with
//     smtpd_reject_unlisted_recipient = no smtpd takes every address at
//     RCPT, so that the virtual delivery agent fails the others (5.1.1
//     unknown user) and the bounce daemon reports it;
//   - relayed.example.com is a virtual domain without mailboxes that is
//     relayed (transport_maps) to a second smtpd of the same instance, a
//     backend that does reject unlisted recipients: Postfix's smtp client
//     gets 550 5.1.1 at RCPT, and the bounce daemon reports the reply and
//     the Remote-MTA;
//   - slow.example.net is relayed to a dead loopback port: every attempt
//     is deferred (4.4.1), and with delay_warning_time = 1s and backoff
//     times of 1 and 2 s the bounce daemon sends a delay notice at the
//     first deferral;
//   - bounces.example.org, where the notices go, is routed to
//     ServeInbound's port.
//
// The nexthops are bracketed addresses, so no DNS is needed. The bounce
// daemon's delay template speaks of "$delay_warning_time_hours hour(s)",
// which is 0 here: Postfix logs a warning about that and sends the notice
// anyway.
func startPostfixBounceMX(t *testing.T, inboundPort int) *peer {
	t.Helper()
	pf := newPostfix(t)
	dead, backend := deadPort(t), freePort(t)
	pf.start(t, fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
myhostname = mx.postfix.test
mydomain = postfix.test
myorigin = mx.postfix.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = slow.example.net
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_reject_unlisted_recipient = no
virtual_mailbox_domains = example.com, relayed.example.com
virtual_mailbox_base = %[1]s/mail
virtual_mailbox_maps = inline:{ %[6]s=inbox/ }
virtual_uid_maps = static:%[4]d
virtual_gid_maps = static:%[5]d
virtual_minimum_uid = 1
transport_maps = inline:{ %[7]s=smtp:[127.0.0.1]:%[2]d, slow.example.net=smtp:[127.0.0.1]:%[3]d,
    relayed.example.com=smtp:[127.0.0.1]:%[8]d }
smtp_tls_security_level = none
smtp_dns_support_level = disabled
smtp_host_lookup = native
delay_warning_time = 1s
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
alias_maps =
alias_database =
local_transport = error:no local delivery
default_transport = error:no relaying
relay_transport = error:no relaying
biff = no
`, pf.dir, inboundPort, dead, pf.nb.uid, pf.nb.gid, knownRcpt, bounceDomain, backend),
		"smtp      unix  -       -       n       -       -       smtp\n"+
			// The backend: another name, or the smtp client would see
			// mail for itself and refuse to loop.
			fmt.Sprintf("127.0.0.1:%d inet n - n - - smtpd -o myhostname=backend.postfix.test -o smtpd_reject_unlisted_recipient=yes\n", backend))
	maillog := pf.maillog()
	inbox := filepath.Join(pf.dir, "mail", "inbox")
	return &peer{
		name: "postfix", mx: "mx.postfix.test", port: pf.port, enhanced: true,
		logs: func() string { return tail(maillog, 6000) },
		stored: func(t *testing.T, n int) []stored {
			t.Helper()
			if !waitCount(n, dsnWait, func() int { return maildirCount(inbox) }) {
				t.Errorf("fewer than %d messages arrived in %v; maillog:\n%s", n, dsnWait, tail(maillog, 6000))
			}
			return readMaildir(t, inbox, "Delivered-To")
		},
	}
}

// startEximBounceMX starts a private Exim for the bounce tests: it takes
// every address at example.com at RCPT (no verify = recipient), stores
// known@ in a maildir and fails the others with a redirect router
// (":fail: Unknown user"); its bounces for bounces.example.org go to
// ServeInbound's port through a manualroute router (self = send and
// allow_localhost: the address is Exim's own). With dsn it offers DSN
// (dsn_advertise_hosts).
func startEximBounceMX(t *testing.T, inboundPort int, dsn bool) *peer {
	t.Helper()
	e := newExim(t)
	advertise := ""
	if dsn {
		advertise = "*"
	}
	local, _, _ := strings.Cut(knownRcpt, "@")
	p := e.start(t, e.mainSettings()+fmt.Sprintf(`dsn_advertise_hosts = %[6]s
tls_advertise_hosts =
domainlist local_domains = example.com
acl_smtp_rcpt = check_rcpt

begin acl

check_rcpt:
  accept domains = +local_domains
  deny message = relay not permitted

begin routers

to_inbound:
  driver = manualroute
  domains = %[2]s
  route_list = * 127.0.0.1
  self = send
  transport = inbound_smtp
  no_more

known:
  driver = accept
  domains = +local_domains
  local_parts = %[5]s
  transport = store

unknown:
  driver = redirect
  domains = +local_domains
  allow_fail
  data = :fail: Unknown user

begin transports

inbound_smtp:
  driver = smtp
  port = %[3]d
  allow_localhost

store:
  driver = appendfile
  directory = %[1]s/mail
  maildir_format
  create_directory
  user = %[4]s
  group = %[7]s
  envelope_to_add
  return_path_add
`, e.dir, bounceDomain, inboundPort, e.nb.user, local, advertise, e.nb.group))
	logs := e.logs(p)
	maildir := filepath.Join(e.dir, "mail")
	return &peer{
		name: "exim", mx: "mx.exim.test", port: e.port,
		logs: logs,
		stored: func(t *testing.T, n int) []stored {
			t.Helper()
			if !waitCount(n, dsnWait, func() int { return maildirCount(maildir) }) {
				t.Errorf("fewer than %d messages arrived in %v; log:\n%s", n, dsnWait, logs())
			}
			return readMaildir(t, maildir, "Envelope-to")
		},
	}
}
