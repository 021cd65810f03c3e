package relay_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// backoffEvents collects a client's EventBackoff events.
type backoffEvents struct {
	mu  sync.Mutex
	got []relay.Event
	ch  chan struct{}
}

func watchBackoffs(c *relay.Client) *backoffEvents {
	b := &backoffEvents{ch: make(chan struct{}, 100)}
	c.Events = func(e relay.Event) {
		if e.Type != relay.EventBackoff {
			return
		}
		b.mu.Lock()
		b.got = append(b.got, e)
		b.mu.Unlock()
		b.ch <- struct{}{}
	}
	return b
}

// wait returns the first n events, failing the test if they do not come.
func (b *backoffEvents) wait(t *testing.T, n int) []relay.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		b.mu.Lock()
		if len(b.got) >= n {
			out := append([]relay.Event(nil), b.got...)
			b.mu.Unlock()
			return out
		}
		b.mu.Unlock()
		select {
		case <-b.ch:
		case <-deadline:
			t.Fatalf("waited for %d back-off events", n)
		}
	}
}

// A Yahoo host answering [TSS04] at RCPT is suspended: the event names
// the rule, Backoffs lists it, and the next message is not even tried.
func TestBackoffYahooSuspends(t *testing.T) {
	s := newHarness(t)
	tss04 := &relaytest.Reply{Code: 421, Enhanced: "4.7.0",
		Text: "[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"}
	h := addHost(t, s, "mta5.am0.yahoodns.net", relaytest.HostConfig{RcptReply: func(string) *relaytest.Reply { return tss04 }})
	s.AddDomain("yahoo.example", "mta5.am0.yahoodns.net")
	c := s.Client()
	ev := watchBackoffs(c)

	res, _ := c.Send(ctx(t), testMessage("a@yahoo.example"))
	if r := res.Recipients[0]; r.Status != relay.Deferred || r.Code != 421 {
		t.Fatalf("first message: %+v", r)
	}
	e := ev.wait(t, 1)[0]
	if e.MX != "mta5.am0.yahoodns.net" || e.Backoff == nil || e.Backoff.Rule != "yahoo-tss04" ||
		e.Backoff.Action != "suspend" || time.Until(e.Backoff.Until) < time.Hour || !strings.Contains(e.Backoff.Reply, "[TSS04]") {
		t.Fatalf("event: %+v %+v", e, e.Backoff)
	}
	bs := c.Backoffs()
	if len(bs) != 1 || bs[0].Host != "mta5.am0.yahoodns.net" || bs[0].Rule != "yahoo-tss04" || bs[0].Action != "suspend" {
		t.Fatalf("Backoffs = %+v", bs)
	}
	conns := h.Connections()
	res, _ = c.Send(ctx(t), testMessage("b@yahoo.example"))
	if r := res.Recipients[0]; r.Status != relay.Deferred || !strings.Contains(r.Message, "suspended by back-off rule yahoo-tss04") {
		t.Fatalf("second message: %+v", r)
	}
	if got := h.Connections(); got != conns {
		t.Errorf("the suspended host was connected to: %d connections, had %d", got, conns)
	}
}

// Yahoo's "retrying will NOT succeed", given as a 421, bounces the
// recipient at once and suspends the host.
func TestBackoffYahooBounces(t *testing.T) {
	s := newHarness(t)
	tss09 := &relaytest.Reply{Code: 421, Enhanced: "4.7.0",
		Text: "[TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes"}
	addHost(t, s, "mta6.am0.yahoodns.net", relaytest.HostConfig{RcptReply: func(string) *relaytest.Reply { return tss09 }})
	s.AddDomain("yahoo.example", "mta6.am0.yahoodns.net")
	c := s.Client()
	ev := watchBackoffs(c)

	res, _ := c.Send(ctx(t), testMessage("a@yahoo.example", "b@yahoo.example"))
	for _, r := range res.Recipients {
		if r.Status != relay.Bounced || !strings.Contains(r.Message, "back-off rule yahoo-permanently-deferred") {
			t.Errorf("%s: %v %q, want bounced by the rule", r.Recipient, r.Status, r.Message)
		}
	}
	e := ev.wait(t, 1)[0]
	if e.Backoff.Rule != "yahoo-permanently-deferred" || e.Backoff.Action != "suspend" {
		t.Errorf("event %+v", e.Backoff)
	}
	if bs := c.Backoffs(); len(bs) != 1 || bs[0].Action != "suspend" {
		t.Errorf("Backoffs = %+v", bs)
	}
}

// Gmail's 4.7.28 at the end of data slows the host to 60 messages a
// minute over one connection; later messages still go.
func TestBackoffGmailSlows(t *testing.T) {
	s := newHarness(t)
	var mu sync.Mutex
	n := 0
	h := addHost(t, s, "gmail-smtp-in.l.google.com", relaytest.HostConfig{DataReply: func(*relaytest.Message) *relaytest.Reply {
		mu.Lock()
		defer mu.Unlock()
		if n++; n == 1 {
			return &relaytest.Reply{Code: 421, Enhanced: "4.7.28", Text: "[192.0.2.1 15] Gmail has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited."}
		}
		return nil
	}})
	s.AddDomain("gmail.example", "gmail-smtp-in.l.google.com")
	c := s.Client()
	ev := watchBackoffs(c)

	res, _ := c.Send(ctx(t), testMessage("a@gmail.example"))
	if r := res.Recipients[0]; r.Status != relay.Deferred {
		t.Fatalf("first message: %+v", r)
	}
	e := ev.wait(t, 1)[0]
	if e.Backoff.Rule != "gmail-rate-limited" || e.Backoff.Action != "slow" || e.Backoff.Slow != 60 {
		t.Fatalf("event %+v", e.Backoff)
	}
	bs := c.Backoffs()
	if len(bs) != 1 || bs[0].Action != "slow" || bs[0].Connections != 1 {
		t.Fatalf("Backoffs = %+v", bs)
	}
	// Three messages at once: the rule lets one connection carry them,
	// one a second; none is refused or bounced.
	before := h.PeakConnections()
	var wg sync.WaitGroup
	results := make([]*relay.Result, 3)
	for i := range results {
		wg.Go(func() { results[i], _ = c.Send(ctx(t), testMessage("b@gmail.example")) })
	}
	wg.Wait()
	for i, res := range results {
		if r := res.Recipients[0]; r.Status != relay.Delivered {
			t.Errorf("message %d under the slow rule: %+v", i, r)
		}
	}
	if before <= 1 && h.PeakConnections() > 1 {
		t.Errorf("peak connections %d under a one-connection rule", h.PeakConnections())
	}
	if got := len(ev.wait(t, 1)); got != 1 {
		t.Errorf("%d back-off events; the rule fired once", got)
	}
}

// Microsoft's S3150 block at MAIL suspends the host; the recipient
// bounces on the 550 itself.
func TestBackoffMicrosoftBlocked(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "example-com.mail.protection.outlook.com", relaytest.HostConfig{MailReply: func(string) *relaytest.Reply {
		return &relaytest.Reply{Code: 550, Enhanced: "5.7.1", Text: "Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150)."}
	}})
	s.AddDomain("outlook.example", "example-com.mail.protection.outlook.com")
	c := s.Client()
	ev := watchBackoffs(c)
	res, _ := c.Send(ctx(t), testMessage("a@outlook.example"))
	if r := res.Recipients[0]; r.Status != relay.Bounced || r.Code != 550 {
		t.Fatalf("recipient: %+v", r)
	}
	if e := ev.wait(t, 1)[0]; e.Backoff.Rule != "microsoft-blocked" || e.Backoff.Action != "suspend" {
		t.Fatalf("event %+v", e.Backoff)
	}
	res, _ = c.Send(ctx(t), testMessage("b@outlook.example"))
	if r := res.Recipients[0]; r.Status != relay.Deferred || !strings.Contains(r.Message, "microsoft-blocked") {
		t.Fatalf("after the block: %+v", r)
	}
}

// With BackoffRules empty, the same reply is only a deferral.
func TestBackoffRulesOff(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mta5.am0.yahoodns.net", relaytest.HostConfig{RcptReply: func(string) *relaytest.Reply {
		return &relaytest.Reply{Code: 421, Enhanced: "4.7.0", Text: "[TSS04] Messages from 192.0.2.1 temporarily deferred"}
	}})
	s.AddDomain("yahoo.example", "mta5.am0.yahoodns.net")
	c := s.Client()
	direct(c).BackoffRules = []relay.BackoffRule{}
	res, _ := c.Send(ctx(t), testMessage("a@yahoo.example"))
	if r := res.Recipients[0]; r.Status != relay.Deferred {
		t.Fatalf("recipient: %+v", r)
	}
	for _, b := range c.Backoffs() {
		if b.Rule != "push-back" {
			t.Errorf("a rule acted with none configured: %+v", b)
		}
	}
}
