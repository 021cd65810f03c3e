package relay_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// rcptLog records every RCPT TO a host sees, whatever it answers.
type rcptLog struct {
	mu    sync.Mutex
	seen  []string
	reply func(string) *relaytest.Reply
}

func (l *rcptLog) hook(rcpt string) *relaytest.Reply {
	l.mu.Lock()
	l.seen = append(l.seen, rcpt)
	l.mu.Unlock()
	if l.reply != nil {
		return l.reply(rcpt)
	}
	return nil
}

func (l *rcptLog) count(rcpt string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.seen {
		if strings.EqualFold(r, rcpt) {
			n++
		}
	}
	return n
}

// suppressHarness is a host that logs RCPTs and a Client with a memory
// store as queue and suppression list.
func suppressHarness(t *testing.T, reply func(string) *relaytest.Reply) (*relaytest.Server, *relay.Client, *rcptLog, *queue.MemoryStore) {
	t.Helper()
	s := newHarness(t)
	log := &rcptLog{reply: reply}
	addHost(t, s, "mx.example.com", relaytest.HostConfig{RcptReply: log.hook})
	s.AddDomain("example.com", "mx.example.com")
	store := &queue.MemoryStore{}
	c := s.Client()
	c.Suppressions = store
	return s, c, log, store
}

func TestSuppressedNotContactedOnSend(t *testing.T) {
	_, c, log, _ := suppressHarness(t, nil)
	events := newEventLog()
	c.Events = events.hook
	// Matching ignores case, in the local part too, by default.
	if err := c.Suppress(ctx(t), "Gone@EXAMPLE.com", "", queue.Manual, ""); err != nil {
		t.Fatal(err)
	}
	res, err := c.Send(ctx(t), testMessage("ann@example.com", "gone@example.com"))
	if res == nil {
		t.Fatal(err)
	}
	if r := res.Recipients[0]; r.Status != relay.Delivered {
		t.Errorf("ann: %+v", r)
	}
	r := res.Recipients[1]
	if r.Status != relay.Suppressed || !errors.Is(r.Err(), relay.ErrSuppressed) || !relay.IsPermanent(r.Err()) || !strings.Contains(r.Message, "manual") {
		t.Errorf("gone: %+v (%v)", r, r.Err())
	}
	if !errors.Is(err, relay.ErrSuppressed) {
		t.Errorf("Send error %v does not say suppressed", err)
	}
	if n := log.count("gone@example.com"); n != 0 {
		t.Errorf("the host saw %d RCPT for a suppressed address", n)
	}
	if e := events.waitFor(t, relay.EventSuppressed, "gone@example.com"); !errors.Is(e.Err(), relay.ErrSuppressed) {
		t.Errorf("event %+v", e)
	}
	if st := c.Stats(); st.Total.Suppressed != 1 {
		t.Errorf("stats %+v", st.Total)
	}

	// Unsuppressed, it is sent again.
	if ok, err := c.Unsuppress(ctx(t), "gone@example.com", ""); !ok || err != nil {
		t.Fatalf("Unsuppress = %v, %v", ok, err)
	}
	if res, err := c.Send(ctx(t), testMessage("gone@example.com")); err != nil || res.Recipients[0].Status != relay.Delivered {
		t.Errorf("after Unsuppress: %v %+v", err, res)
	}
}

func TestSuppressedNotContactedWhenQueued(t *testing.T) {
	var mu sync.Mutex
	fail := true
	_, c, log, store := suppressHarness(t, func(string) *relaytest.Reply {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return &relaytest.Reply{Code: 451, Enhanced: "4.3.0", Text: "try later"}
		}
		return nil
	})
	c.Store = store
	c.Retry = &queue.BackoffPolicy{Intervals: []time.Duration{300 * time.Millisecond}, Lifetime: time.Hour}
	events := newEventLog()
	c.Events = events.hook

	// On Enqueue: suppressed before the first attempt.
	if err := c.Suppress(ctx(t), "early@example.com", "", queue.Unsubscribed, ""); err != nil {
		t.Fatal(err)
	}
	// A retry: deferred first, suppressed while it waits.
	res, _ := c.Send(ctx(t), testMessage("late@example.com", "kept@example.com"))
	if res.QueueID == "" || res.Recipients[0].Status != relay.Deferred {
		t.Fatalf("Send: %+v", res)
	}
	if log.count("late@example.com") != 1 {
		t.Fatalf("first attempt not made")
	}
	if err := c.Suppress(ctx(t), "late@example.com", "", queue.Unsubscribed, ""); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if _, err := c.Enqueue(ctx(t), testMessage("early@example.com")); err != nil {
		t.Fatal(err)
	}
	runClient(t, c)
	events.waitFor(t, relay.EventDelivered, "kept@example.com")
	events.waitFor(t, relay.EventSuppressed, "late@example.com")
	events.waitFor(t, relay.EventSuppressed, "early@example.com")
	if n := log.count("late@example.com"); n != 1 {
		t.Errorf("the retry contacted the host for a suppressed address (%d RCPTs)", n)
	}
	if n := log.count("early@example.com"); n != 0 {
		t.Errorf("a suppressed address was contacted on Enqueue's attempt (%d RCPTs)", n)
	}
}

// Bounces that say the mailbox does not exist suppress it for all mail;
// refusals about the sender do not.
func TestHardBouncesFeedTheList(t *testing.T) {
	replies := map[string]*relaytest.Reply{
		"nouser@example.com":  {Code: 550, Enhanced: "5.1.1", Text: "no such user"},
		"moved@example.com":   {Code: 551, Enhanced: "5.1.6", Text: "mailbox moved"},
		"plain@example.com":   {Code: 550, Text: "Recipient address unknown"},
		"blocked@example.com": {Code: 550, Enhanced: "5.7.1", Text: "blocked by policy"},
		"spam@example.com":    {Code: 550, Text: "message looks like spam, user unknown to our filters"},
		"full@example.com":    {Code: 552, Enhanced: "5.2.2", Text: "mailbox full"},
		"later@example.com":   {Code: 450, Enhanced: "4.1.1", Text: "mailbox busy"},
	}
	_, c, log, store := suppressHarness(t, func(r string) *relaytest.Reply { return replies[r] })
	var to []string
	for r := range replies {
		to = append(to, r)
	}
	if res, _ := c.Send(ctx(t), testMessage(to...)); res == nil {
		t.Fatal("no result")
	}
	got, err := store.Suppressions(ctx(t), queue.SuppressionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	suppressed := map[string]queue.Suppression{}
	strikes := 0
	for _, s := range got {
		switch s.Scope {
		case "":
			suppressed[s.Address] = s
		case "mxrelay.mailbox-full":
			// A full mailbox counts towards a suppression days later
			// (TestMailboxFullSuppressesAfterDays), in a scope of its own.
			if s.Address != "full@example.com" || s.Expires.IsZero() {
				t.Errorf("strike %+v", s)
			}
			strikes++
		default:
			t.Errorf("entry %+v", s)
		}
	}
	if strikes != 1 {
		t.Errorf("%d mailbox-full strikes, want 1", strikes)
	}
	for _, want := range []string{"nouser@example.com", "moved@example.com", "plain@example.com"} {
		s, ok := suppressed[want]
		if !ok || s.Reason != queue.HardBounced || s.Scope != "" || !strings.Contains(s.Source, "mx.example.com") {
			t.Errorf("%s: %+v, %v", want, s, ok)
		}
	}
	for _, not := range []string{"blocked@example.com", "spam@example.com", "full@example.com", "later@example.com"} {
		if _, ok := suppressed[not]; ok {
			t.Errorf("%s suppressed", not)
		}
	}
	before := log.count("nouser@example.com")
	res, _ := c.Send(ctx(t), testMessage("nouser@example.com"))
	if res.Recipients[0].Status != relay.Suppressed || log.count("nouser@example.com") != before {
		t.Errorf("second send to a hard bounce: %+v", res.Recipients[0])
	}
}

// A failing suppression list defers: mail never goes to an address that
// may have opted out.
func TestSuppressionListDownDefers(t *testing.T) {
	_, c, log, _ := suppressHarness(t, nil)
	c.Suppressions = brokenList{}
	res, _ := c.Send(ctx(t), testMessage("ann@example.com"))
	if r := res.Recipients[0]; r.Status != relay.Deferred || r.Enhanced != "4.3.0" || log.count("ann@example.com") != 0 {
		t.Errorf("%+v", r)
	}
}

type brokenList struct{ queue.SuppressionStore }

func (brokenList) Suppressed(_ context.Context, _ string, _ []string, _ time.Time) ([]queue.Suppression, error) {
	return nil, errors.New("database down")
}

// Hashed entries stop mail like plain ones and hold no address.
func TestHashedSuppressions(t *testing.T) {
	_, c, log, store := suppressHarness(t, nil)
	c.Suppression.HashKey = []byte("0123456789abcdef0123456789abcdef")
	if err := c.Suppress(ctx(t), "Ann@Example.com", "", queue.Unsubscribed, ""); err != nil {
		t.Fatal(err)
	}
	got, _ := store.Suppressions(ctx(t), queue.SuppressionFilter{})
	if len(got) != 1 || strings.Contains(got[0].Address, "ann") || !strings.HasPrefix(got[0].Address, "h1:") {
		t.Fatalf("stored %+v", got)
	}
	res, _ := c.Send(ctx(t), testMessage("ann@example.com"))
	if res.Recipients[0].Status != relay.Suppressed || log.count("ann@example.com") != 0 {
		t.Errorf("%+v", res.Recipients[0])
	}
}

func TestSuppressionCaseSensitiveOption(t *testing.T) {
	_, c, _, _ := suppressHarness(t, nil)
	c.Suppression.CaseSensitiveLocalParts = true
	if err := c.Suppress(ctx(t), "Ann@EXAMPLE.COM", "", queue.Manual, ""); err != nil {
		t.Fatal(err)
	}
	res, _ := c.Send(ctx(t), testMessage("Ann@example.com", "ann@example.com"))
	if res.Recipients[0].Status != relay.Suppressed || res.Recipients[1].Status != relay.Delivered {
		t.Errorf("%+v", res.Recipients)
	}
}

// IDN domains match in A-label form, whichever form is given; an API
// unsubscribe emits its event.
func TestSuppressionIDN(t *testing.T) {
	s, c, log, _ := suppressHarness(t, nil)
	addHost(t, s, "mx.xn--bcher-kva.example", relaytest.HostConfig{RcptReply: log.hook})
	s.AddDomain("xn--bcher-kva.example", "mx.xn--bcher-kva.example")
	events := newEventLog()
	c.Events = events.hook
	if err := c.Suppress(ctx(t), "ann@BÜCHER.example", "news", queue.Unsubscribed, ""); err != nil {
		t.Fatal(err)
	}
	if e := events.waitFor(t, relay.EventUnsubscribed, "ann@BÜCHER.example"); e.How != "api" || e.List != "news" {
		t.Errorf("event %+v", e)
	}
	if err := c.Suppress(ctx(t), "bob@xn--bcher-kva.example", "", queue.Manual, ""); err != nil {
		t.Fatal(err)
	}
	res, _ := c.Send(ctx(t), testMessage("bob@bücher.example"))
	if r := res.Recipients[0]; r.Status != relay.Suppressed || log.count("bob@xn--bcher-kva.example") != 0 {
		t.Errorf("%+v", r)
	}
	if ok, err := c.Unsuppress(ctx(t), "ann@xn--bcher-kva.example", "news"); !ok || err != nil {
		t.Errorf("Unsuppress by A-label = %v, %v", ok, err)
	}
}
