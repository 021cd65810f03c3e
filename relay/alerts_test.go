package relay_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// alertLog keeps what Notify was told.
type alertLog struct {
	mu  sync.Mutex
	got []relay.Alert
}

func (l *alertLog) notify(a relay.Alert) {
	l.mu.Lock()
	l.got = append(l.got, a)
	l.mu.Unlock()
}

func (l *alertLog) all() []relay.Alert {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]relay.Alert(nil), l.got...)
}

// check runs CheckAlerts and returns the changes as "state severity
// rule subject" lines.
func check(t *testing.T, c *relay.Client) []string {
	t.Helper()
	changes, err := c.CheckAlerts(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range changes {
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %s %s", a.State, a.Severity, a.Rule, a.Subject)))
	}
	return out
}

func wantChanges(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("%s: changes %q, want %q", what, got, want)
	}
}

// A complaint rate fires at its warning threshold, once; escalates to an
// error; stays quiet while it stays up; and resolves only once clearly
// below the warning (hysteresis), for all mail and for the domain.
func TestAlertComplaintRate(t *testing.T) {
	var log alertLog
	s, c, events, _, _ := bounceHarness(t, func(c *relay.Client) {
		c.Alerts = relay.AlertOptions{Notify: log.notify, Rules: []relay.AlertRule{{
			Name: "complaints", Kind: relay.AlertComplaintRate, Warning: 0.10, Error: 0.20,
			Window: time.Hour, MinMessages: 10, PerDomain: true,
		}}}
	})
	send := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := c.Send(ctx(t), testMessage(fmt.Sprintf("user%d@example.com", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	complain := func(i int) {
		rcpt := fmt.Sprintf("user%d@example.com", i)
		m := sentTo(t, s, rcpt)
		if _, err := c.ProcessInbound(ctx(t), m.returnPath, bytes.NewReader(arfReport(m, rcpt))); err != nil {
			t.Fatal(err)
		}
		events.waitFor(t, relay.EventComplained, rcpt)
	}

	send(0, 9)
	complain(0)
	wantChanges(t, "1 of 9: too few to judge", check(t, c))
	send(9, 10)
	wantChanges(t, "1 of 10", check(t, c), "firing warning complaints", "firing warning complaints example.com")
	wantChanges(t, "again", check(t, c))
	complain(1)
	wantChanges(t, "2 of 10", check(t, c), "firing error complaints", "firing error complaints example.com")
	send(10, 20)
	wantChanges(t, "2 of 20: at the warning, still firing", check(t, c))
	send(20, 24)
	wantChanges(t, "2 of 24: under the warning, above its 80%", check(t, c))
	if f := c.FiringAlerts(); len(f) != 2 || f[0].Subject != "" || f[1].Subject != "example.com" || f[0].Severity != relay.AlertWarning {
		t.Errorf("firing %+v", f)
	}
	send(24, 26)
	wantChanges(t, "2 of 26", check(t, c), "resolved warning complaints", "resolved warning complaints example.com")
	if f := c.FiringAlerts(); len(f) != 0 {
		t.Errorf("still firing %+v", f)
	}

	got := log.all()
	if len(got) != 6 {
		t.Fatalf("Notify got %d alerts: %v", len(got), got)
	}
	a := got[2]
	if a.Kind != relay.AlertComplaintRate || a.Value != 0.2 || a.Threshold != 0.2 || a.Since.IsZero() ||
		a.Message != "complaint rate 20.00% over 1h (2 of 10 delivered), at or above 20.00%" {
		t.Errorf("alert %+v", a)
	}
	if r := got[4]; r.Since != got[0].Since || !strings.Contains(r.Message, "below 8.00%") {
		t.Errorf("resolution %+v", r)
	}
	e := events.waitFor(t, relay.EventAlert, "")
	if e.Alert == nil || e.Alert.Rule != "complaints" || e.Alert.State != relay.AlertFiring {
		t.Errorf("event %+v", e)
	}
}

// An MX host that defers message after message fires; three deliveries
// in a row from it resolve the alert.
func TestAlertDeferralStreak(t *testing.T) {
	s := newHarness(t)
	var busy atomic.Bool
	busy.Store(true)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{RcptReply: func(string) *relaytest.Reply {
		if busy.Load() {
			return &relaytest.Reply{Code: 451, Enhanced: "4.3.0", Text: "try later"}
		}
		return nil
	}})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	c.Alerts = relay.AlertOptions{Rules: []relay.AlertRule{{Name: "streak", Kind: relay.AlertDeferrals, Warning: 3, Error: 6}}}
	send := func(n int) {
		for range n {
			// Without a Store, a deferral is Send's error.
			if res, err := c.Send(ctx(t), testMessage("a@example.com")); res == nil {
				t.Fatal(err)
			}
		}
	}
	send(2)
	wantChanges(t, "2 deferrals", check(t, c))
	send(1)
	wantChanges(t, "3 deferrals", check(t, c), "firing warning streak mx.example.com")
	send(3)
	wantChanges(t, "6 deferrals", check(t, c), "firing error streak mx.example.com")
	busy.Store(false)
	send(2)
	wantChanges(t, "2 deliveries", check(t, c))
	send(1)
	wantChanges(t, "3 deliveries", check(t, c), "resolved error streak mx.example.com")
}

// A host suspended by a back-off rule is an error alert while the rule
// lasts, and resolves when it ends.
func TestAlertBackoff(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{RcptReply: func(string) *relaytest.Reply {
		return &relaytest.Reply{Code: 421, Enhanced: "4.7.0", Text: "[TEST01] go away for a moment"}
	}})
	s.AddDomain("example.com", "mx.example.com")
	d := s.Direct()
	d.BackoffRules = []relay.BackoffRule{{Name: "test-suspend", Match: `\[TEST01\]`, Suspend: true, For: 300 * time.Millisecond}}
	c := &relay.Client{Transport: d, Alerts: relay.AlertOptions{Rules: []relay.AlertRule{{Name: "backoff", Kind: relay.AlertBackoff}}}}
	if res, err := c.Send(ctx(t), testMessage("a@example.com")); res == nil {
		t.Fatal(err)
	}
	wantChanges(t, "suspended", check(t, c), "firing error backoff mx.example.com")
	wantChanges(t, "again", check(t, c))
	for i := 0; ; i++ {
		suspended := false
		for _, b := range c.Backoffs() {
			suspended = suspended || b.Action == "suspend"
		}
		if !suspended {
			break // the automatic push-back may go on: it makes no alert
		}
		if i == 1000 {
			t.Fatalf("the suspension never ended: %+v", c.Backoffs())
		}
		time.Sleep(10 * time.Millisecond)
	}
	wantChanges(t, "ended", check(t, c), "resolved error backoff mx.example.com")
}

// The oldest queued message's wait is judged by the Client's clock.
func TestAlertQueueAge(t *testing.T) {
	c := &relay.Client{Store: &queue.MemoryStore{}, Alerts: relay.AlertOptions{Rules: []relay.AlertRule{{
		Name: "age", Kind: relay.AlertQueueAge, Warning: time.Hour.Seconds(), Error: (3 * time.Hour).Seconds()}}}}
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	relay.SetClock(c, func() time.Time { return time.Unix(0, now.Load()) })
	wantChanges(t, "empty", check(t, c))
	if _, err := c.EnqueueWith(ctx(t), testMessage("a@example.com"), &relay.EnqueueOptions{NotBefore: time.Now().Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	wantChanges(t, "new", check(t, c))
	now.Add(int64(2 * time.Hour))
	got, err := c.CheckAlerts(ctx(t))
	if err != nil || len(got) != 1 || got[0].Severity != relay.AlertWarning || got[0].Value < 7100 || !strings.Contains(got[0].Message, "at or above 1h0m0s") {
		t.Errorf("after 2h: %+v, %v", got, err)
	}
	now.Add(int64(2 * time.Hour))
	wantChanges(t, "after 4h", check(t, c), "firing error age")
	jobs, _, err := c.Queue().List(ctx(t), queue.ListRequest{})
	if err != nil || len(jobs) != 1 {
		t.Fatal(jobs, err)
	}
	if err := c.Queue().Cancel(ctx(t), jobs[0].ID); err != nil {
		t.Fatal(err)
	}
	wantChanges(t, "cancelled", check(t, c), "resolved error age")
}

// Alerts are off without Notify or Rules; rules that cannot be judged
// are refused before anything is sent.
func TestAlertConfig(t *testing.T) {
	c := &relay.Client{}
	if got, err := c.CheckAlerts(ctx(t)); got != nil || err != nil {
		t.Errorf("alerts off: %v, %v", got, err)
	}
	bad := [][]relay.AlertRule{
		{{Kind: relay.AlertBounceRate, Warning: 0.1}},
		{{Name: "x", Warning: 0.1}},
		{{Name: "x", Kind: relay.AlertBounceRate}},
		{{Name: "x", Kind: relay.AlertBounceRate, Warning: 0.2, Error: 0.1}},
		{{Name: "x", Kind: relay.AlertBounceRate, Warning: 0.1, Clear: 1.5}},
		{{Name: "x", Kind: relay.AlertBounceRate, Warning: 0.1, Window: time.Second}},
		{{Name: "x", Kind: relay.AlertBackoff}, {Name: "x", Kind: relay.AlertBackoff}},
	}
	for i, rules := range bad {
		c := &relay.Client{Alerts: relay.AlertOptions{Rules: rules}}
		if _, err := c.CheckAlerts(ctx(t)); !errors.Is(err, relay.ErrInvalidConfig) {
			t.Errorf("rules %d: %v", i, err)
		}
		if _, err := c.Send(ctx(t), testMessage("a@example.com")); !errors.Is(err, relay.ErrInvalidConfig) {
			t.Errorf("rules %d: Send: %v", i, err)
		}
	}
	c = &relay.Client{Alerts: relay.AlertOptions{Notify: func(relay.Alert) {}}}
	if _, err := c.CheckAlerts(ctx(t)); err != nil {
		t.Errorf("default rules: %v", err)
	}
}
