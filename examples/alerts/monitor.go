package main

import (
	"fmt"
	"sync"

	"github.com/mxrelay/mxrelay/relay"
)

// BounceMonitor watches relay events and raises an alert when a recipient
// domain's bounce rate goes above a threshold: bounced (and expired)
// recipients out of those whose delivery ended, over the domain's last
// Window outcomes, once there are at least MinMessages of them. It raises
// one alert when the rate crosses the threshold and one "resolved" notice
// when it falls back to it or below, not an alert per bounce.
//
// Feed it from relay.Client.Events. Its methods are safe for concurrent
// use.
type BounceMonitor struct {
	// Threshold is the bounce rate above which a domain alerts: 0.2 means
	// more than 20%.
	Threshold float64
	// MinMessages is how many outcomes a domain needs before its rate
	// means anything; fewer never alert. 0 → 10.
	MinMessages int
	// Window is how many of a domain's latest outcomes the rate is
	// computed over, so that a domain that recovers stops alerting.
	// 0 → 100; at least MinMessages.
	Window int
	// Notify receives the alerts and the resolutions. It is called with
	// the monitor's lock held, in the order the events arrived: keep it
	// short (hand the alert to a channel, a pager, a log).
	Notify func(Alert)

	mu      sync.Mutex
	domains map[string]*domainWindow
}

// Alert is a domain's bounce rate crossing the threshold (Resolved false)
// or falling back (Resolved true).
type Alert struct {
	Domain    string
	Resolved  bool
	Bounced   int         // failed outcomes in the window
	Outcomes  int         // outcomes in the window
	Threshold float64     // the monitor's threshold
	Last      relay.Event // the event that made the change
}

// Rate is Bounced ÷ Outcomes.
func (a Alert) Rate() float64 { return float64(a.Bounced) / float64(a.Outcomes) }

// String describes the alert in one line.
func (a Alert) String() string {
	if a.Resolved {
		return fmt.Sprintf("RESOLVED %s: bounce rate %.0f%% over the last %d messages (threshold %.0f%%)",
			a.Domain, 100*a.Rate(), a.Outcomes, 100*a.Threshold)
	}
	return fmt.Sprintf("ALERT %s: bounce rate %.0f%% over the last %d messages (threshold %.0f%%); last reply: %d %s %s",
		a.Domain, 100*a.Rate(), a.Outcomes, 100*a.Threshold, a.Last.Code, a.Last.Enhanced, a.Last.Message)
}

// domainWindow is a ring of a domain's latest outcomes (true = bounced).
type domainWindow struct {
	ring    []bool
	next    int // where the next outcome goes
	n       int // outcomes in the ring
	bounced int // true values in the ring
	firing  bool
}

func (m *BounceMonitor) minMessages() int {
	if m.MinMessages > 0 {
		return m.MinMessages
	}
	return 10
}

func (m *BounceMonitor) window() int {
	w := m.Window
	if w <= 0 {
		w = 100
	}
	return max(w, m.minMessages())
}

// Observe takes one event. Only final outcomes count: delivered, bounced
// and expired; the rest (queued, attempts, deferrals) are ignored.
func (m *BounceMonitor) Observe(e relay.Event) {
	var bounced bool
	switch e.Type {
	case relay.EventDelivered:
	case relay.EventBounced, relay.EventExpired:
		bounced = true
	default:
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.domains == nil {
		m.domains = make(map[string]*domainWindow)
	}
	d := m.domains[e.Domain]
	if d == nil {
		d = &domainWindow{ring: make([]bool, m.window())}
		m.domains[e.Domain] = d
	}
	if d.n == len(d.ring) { // full: the oldest outcome leaves
		if d.ring[d.next] {
			d.bounced--
		}
	} else {
		d.n++
	}
	d.ring[d.next] = bounced
	if bounced {
		d.bounced++
	}
	d.next = (d.next + 1) % len(d.ring)

	over := d.n >= m.minMessages() && float64(d.bounced) > m.Threshold*float64(d.n)
	if over == d.firing {
		return
	}
	d.firing = over
	if m.Notify != nil {
		m.Notify(Alert{Domain: e.Domain, Resolved: !over, Bounced: d.bounced, Outcomes: d.n,
			Threshold: m.Threshold, Last: e})
	}
}
