package relay

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// waitFor polls cond until it holds or a generous bound passes; the bound
// only stops a broken test, it asserts nothing about time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("gave up waiting: %s", what)
}

func (p *pool) kept(host string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dests[host] != nil
}

// The sweeper frees idle destination state when traffic stops, with no
// lookup to trigger it, and then stops itself; a host suspended by a
// back-off rule is kept while the suspension holds.
func TestPoolSweeperFreesIdleState(t *testing.T) {
	tr := &Direct{DestinationIdleTime: time.Millisecond}
	p := &tr.pool
	lim := DestinationLimits{}.withDefaults()
	for i := range 100 {
		p.release(p.destFor(fmt.Sprintf("mx%d.example", i), lim, tr.destinationIdleTime(), nil))
	}
	suspended := p.destFor("suspended.example", lim, tr.destinationIdleTime(), nil)
	suspended.applyRule(&BackoffRule{Name: "blocked", Suspend: true, For: time.Hour}, time.Now())
	p.release(suspended)

	waitFor(t, "idle destinations freed", func() bool { return tr.Destinations() == 1 })
	if !p.kept("suspended.example") {
		t.Fatal("the suspended host's state was freed while its suspension holds")
	}
	if _, cooling := suspended.coolingUntil(time.Now()); !cooling {
		t.Fatal("the suspension ended early")
	}
	// Once it ends, it goes too, and the sweeper stops.
	suspended.shaper.mu.Lock()
	suspended.ruleUntil = time.Now().Add(-time.Second)
	suspended.shaper.mu.Unlock()
	waitFor(t, "the state freed once the suspension ended", func() bool { return tr.Destinations() == 0 })
	waitFor(t, "the sweeper stopped", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.sweeper == nil
	})
}

// A push-back pause keeps its host with an injected clock, and the host
// goes once the pause and the idle time are over.
func TestPoolKeepsPausedHost(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := pool{clock: func() time.Time { return now }, ttl: time.Minute}
	lim := DestinationLimits{}.withDefaults()
	d := p.dest("paused.example", lim)
	for range 20 {
		d.pushedBack(now) // a pause of maxBackoff
	}
	p.release(d)
	now = now.Add(2 * time.Minute) // past the idle time, not the pause
	p.release(p.dest("other.example", lim))
	if !p.kept("paused.example") {
		t.Fatal("a paused host's state was freed before its pause ended")
	}
	now = now.Add(maxBackoff)
	p.release(p.dest("third.example", lim))
	if p.kept("paused.example") {
		t.Fatal("a host kept after its pause and the idle time were over")
	}
	p.mu.Lock()
	if p.sweeper != nil {
		p.sweeper.Stop()
	}
	p.mu.Unlock()
}

// Stats per domain and MX host stay within their bound however many
// domains are mailed; the busiest keep their names, the rest add up in
// StatsOther, and nothing is lost from the totals.
func TestStatsBounded(t *testing.T) {
	s := statsRecorder{maxKeys: 10}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		s.record(&Event{Type: EventDelivered, Time: at, Domain: fmt.Sprintf("d%d.example", i), MX: fmt.Sprintf("mx%d.example", i)})
		s.record(&Event{Type: EventDelivered, Time: at, Domain: "busy.example", MX: "mx.busy.example"})
		if len(s.byDomain) > 10 || len(s.byMX) > 10 {
			t.Fatalf("after %d domains: %d domains, %d MX hosts kept; bound 10", i+1, len(s.byDomain), len(s.byMX))
		}
	}
	if c := s.byDomain["busy.example"]; c == nil || c.Delivered != 1000 {
		t.Errorf("busiest domain: %+v, want 1000 delivered", c)
	}
	if s.byMX["mx.busy.example"] == nil {
		t.Error("busiest MX host folded away")
	}
	for _, m := range []map[string]*Counts{s.byDomain, s.byMX} {
		var sum int64
		for _, c := range m {
			sum += c.Delivered
		}
		if sum != 2000 || s.byDomain[StatsOther] == nil {
			t.Errorf("entries add up to %d delivered (want 2000), %s present: %v", sum, StatsOther, s.byDomain[StatsOther] != nil)
		}
	}
}

// merge adds every field of Counts.
func TestCountsMergeAllFields(t *testing.T) {
	var a, b Counts
	va, vb := reflect.ValueOf(&a).Elem(), reflect.ValueOf(&b).Elem()
	for i := range va.NumField() {
		va.Field(i).SetInt(1)
		vb.Field(i).SetInt(int64(i + 2))
	}
	a.merge(&b)
	for i := range va.NumField() {
		if got := va.Field(i).Int(); got != int64(i+3) {
			t.Errorf("merge: %s = %d, want %d", va.Type().Field(i).Name, got, i+3)
		}
	}
}

// Alert state per domain is bounded, and emptied windows and idle
// deferral streaks are forgotten as events arrive, without Run.
func TestAlertStateBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Client{Alerts: AlertOptions{Rules: []AlertRule{
		{Name: "bounces", Kind: AlertBounceRate, Warning: 0.1, PerDomain: true, Window: time.Hour},
		{Name: "deferrals", Kind: AlertDeferrals, Warning: 5},
	}}}
	w, err := c.alertSetup()
	if err != nil || w == nil {
		t.Fatal(err)
	}
	w.maxDomains = 50
	for i := range 500 {
		c.observeAlert(&Event{Type: EventDeferred, Time: now, Domain: fmt.Sprintf("d%d.example", i), MX: fmt.Sprintf("mx%d.example", i)})
		c.observeAlert(&Event{Type: EventBounced, Time: now, Domain: fmt.Sprintf("d%d.example", i)})
	}
	if n := len(w.rates[0].domain); n != 50 {
		t.Errorf("%d domain windows kept, want the bound 50", n)
	}
	if num, den := w.rates[0].all.sum(now, time.Hour); num != 500 || den != 500 {
		t.Errorf("all mail counts %d/%d, want 500/500", num, den)
	}
	// Much later: the windows emptied and the streaks went idle.
	later := now.Add(DeferralStreakIdle + 2*time.Hour)
	c.observeAlert(&Event{Type: EventDelivered, Time: later, Domain: "new.example", MX: "mx.new.example"})
	if n, s := len(w.rates[0].domain), len(w.streaks); n != 1 || s != 0 {
		t.Errorf("after the idle time: %d domain windows (want 1), %d streaks (want 0)", n, s)
	}
}

// A firing deferrals alert keeps its streak through the prune, and
// resolves when evaluation finds the streak idle.
func TestIdleStreakResolves(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Client{now: func() time.Time { return now }, Alerts: AlertOptions{Notify: func(Alert) {},
		Rules: []AlertRule{{Name: "deferrals", Kind: AlertDeferrals, Warning: 3}}}}
	w, err := c.alertSetup()
	if err != nil || w == nil {
		t.Fatal(err)
	}
	for range 3 {
		c.observeAlert(&Event{Type: EventDeferred, Time: now, MX: "mx.slow.example"})
	}
	if ch := c.evaluateAlerts(t.Context(), w); len(ch) != 1 || ch[0].State != AlertFiring {
		t.Fatalf("changes %+v, want one firing", ch)
	}
	now = now.Add(DeferralStreakIdle + pruneEvery)
	c.observeAlert(&Event{Type: EventDelivered, Time: now, MX: "mx.other.example"})
	if w.streaks["mx.slow.example"] == nil {
		t.Fatal("a firing alert's streak was pruned before evaluation resolved it")
	}
	ch := c.evaluateAlerts(t.Context(), w)
	if len(ch) != 1 || ch[0].State != AlertResolved || ch[0].Subject != "mx.slow.example" {
		t.Fatalf("changes %+v, want mx.slow.example resolved", ch)
	}
	if len(w.streaks) != 0 {
		t.Errorf("%d streaks kept", len(w.streaks))
	}
}
