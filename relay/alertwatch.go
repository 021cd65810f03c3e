package relay

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// windowBuckets is how many buckets a rate's window is cut into: the
// window slides by a twelfth of its span, and a domain costs 12 × 8
// octets per rate rule while it has mail in the window.
const windowBuckets = 12

// window counts a rate's numerator and denominator over a sliding span.
type window struct {
	stamp    [windowBuckets]int64 // the bucket number each slot holds
	num, den [windowBuckets]int32
}

func (w *window) add(now time.Time, span time.Duration, num, den int32) {
	i := now.UnixNano() / int64(span/windowBuckets)
	k := i % windowBuckets
	if w.stamp[k] != i {
		w.stamp[k], w.num[k], w.den[k] = i, 0, 0
	}
	w.num[k] += num
	w.den[k] += den
}

// sum returns the counts of the buckets within span of now.
func (w *window) sum(now time.Time, span time.Duration) (num, den int64) {
	i := now.UnixNano() / int64(span/windowBuckets)
	for k := range windowBuckets {
		if s := w.stamp[k]; s > i-windowBuckets && s <= i {
			num += int64(w.num[k])
			den += int64(w.den[k])
		}
	}
	return num, den
}

// rateCounts are one rate rule's windows: all mail, and per domain.
type rateCounts struct {
	all    window
	domain map[string]*window
}

// streak counts an MX host's deferrals since its last run of deliveries.
type streak struct {
	deferrals int       // consecutive deferrals
	delivered int       // deliveries in a row since the last deferral
	last      time.Time // the last event counted; see streakIdle
}

// streakClear is how many deliveries in a row end a deferral streak.
const streakClear = 3

// alertKey names one alert: a rule and a subject.
type alertKey struct{ rule, subject string }

// alertWatch is a Client's alert state: the rules, checked once, the
// counters fed by emit and the alerts firing.
type alertWatch struct {
	once  sync.Once
	rules []AlertRule // with defaults filled in
	err   error
	on    bool

	mu      sync.Mutex
	rates   []*rateCounts // per rule; nil for other kinds
	streaks map[string]*streak
	firing  map[alertKey]*Alert
	pruned  time.Time // when prune last ran (alertprune.go)
	// maxDomains bounds each rule's per-domain windows; 0 →
	// AlertDomains (tests set it).
	maxDomains int

	eval      sync.Mutex                 // one evaluation at a time
	preflight map[string]time.Time       // per domain, when it was last checked
	baseline  map[string]map[string]bool // per domain, the warnings of its first preflight
	// per domain, what its last preflight fires
	lastPreflight map[string][]finding
}

// alertSetup checks c.Alerts once; it returns nil when alerts are off.
func (c *Client) alertSetup() (*alertWatch, error) {
	w := &c.alerts
	w.once.Do(func() {
		o := &c.Alerts
		if o.Notify == nil && o.Rules == nil {
			return
		}
		rules := o.Rules
		if rules == nil {
			rules = DefaultAlertRules()
		}
		if o.Interval < 0 || o.PreflightEvery < 0 {
			w.err = fmt.Errorf("%w: negative Alerts.Interval or PreflightEvery", ErrInvalidConfig)
			return
		}
		seen := map[string]bool{}
		for i, r := range rules {
			if err := r.check(); err != nil {
				w.err = fmt.Errorf("%w: Alerts.Rules[%d]: %v", ErrInvalidConfig, i, err)
				return
			}
			if seen[r.Name] {
				w.err = fmt.Errorf("%w: Alerts.Rules[%d]: name %q used twice", ErrInvalidConfig, i, r.Name)
				return
			}
			seen[r.Name] = true
			if r.Window == 0 {
				r.Window = 24 * time.Hour
			}
			if r.MinMessages == 0 {
				r.MinMessages = 1000
			}
			if r.Clear == 0 {
				r.Clear = 0.8
			}
			w.rules = append(w.rules, r)
			var rc *rateCounts
			if r.Kind == AlertComplaintRate || r.Kind == AlertBounceRate {
				rc = &rateCounts{domain: map[string]*window{}}
			}
			w.rates = append(w.rates, rc)
		}
		w.streaks = map[string]*streak{}
		w.firing = map[alertKey]*Alert{}
		w.preflight = map[string]time.Time{}
		w.baseline = map[string]map[string]bool{}
		w.lastPreflight = map[string][]finding{}
		w.on = true
	})
	if w.err != nil {
		return nil, w.err
	}
	if !w.on {
		return nil, nil
	}
	return w, nil
}

// check validates a rule.
func (r *AlertRule) check() error {
	switch {
	case r.Name == "" || strings.ContainsFunc(r.Name, func(c rune) bool { return c < 0x21 || c == 0x7f }):
		return fmt.Errorf("rule name %q: not empty, no space or control character", r.Name)
	case r.Kind <= 0 || int(r.Kind) >= len(alertKindNames):
		return fmt.Errorf("rule %s: unknown kind %d", r.Name, int(r.Kind))
	case r.Warning < 0 || r.Error < 0 || r.Window < 0 || r.MinMessages < 0 || r.Clear < 0 || r.Clear > 1:
		return fmt.Errorf("rule %s: negative threshold, window or count, or Clear outside 0-1", r.Name)
	case r.Warning > 0 && r.Error > 0 && r.Error < r.Warning:
		return fmt.Errorf("rule %s: Error %v under Warning %v", r.Name, r.Error, r.Warning)
	case r.Window > 0 && r.Window < windowBuckets*time.Second:
		return fmt.Errorf("rule %s: Window %v under %v", r.Name, r.Window, windowBuckets*time.Second)
	}
	switch r.Kind {
	case AlertComplaintRate, AlertBounceRate, AlertDeferrals, AlertQueueAge:
		if r.Warning == 0 && r.Error == 0 {
			return fmt.Errorf("rule %s: no threshold", r.Name)
		}
	}
	return nil
}

// observeAlert counts e for the rules; emit calls it.
func (c *Client) observeAlert(e *Event) {
	w, _ := c.alertSetup()
	if w == nil {
		return
	}
	switch e.Type {
	case EventDelivered, EventBounced, EventExpired, EventComplained, EventDeferred:
	default:
		return
	}
	domain := e.Domain
	if domain == "" {
		domain = domainOf(e.Recipient)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.prune(e.Time)
	for i, rc := range w.rates {
		if rc == nil {
			continue
		}
		r := &w.rules[i]
		var num, den int32
		switch {
		case e.Type == EventDelivered:
			den = 1
		case r.Kind == AlertComplaintRate && e.Type == EventComplained:
			num = 1
		case r.Kind == AlertBounceRate && (e.Type == EventBounced || e.Type == EventExpired):
			num, den = 1, 1
		default:
			continue
		}
		rc.all.add(e.Time, r.Window, num, den)
		if r.PerDomain && domain != "" {
			if dw := w.domainWindow(rc, domain); dw != nil {
				dw.add(e.Time, r.Window, num, den)
			}
		}
	}
	if e.MX == "" || e.Async {
		return
	}
	switch e.Type {
	case EventDeferred:
		s := w.streaks[e.MX]
		if s == nil {
			s = &streak{}
			w.streaks[e.MX] = s
		}
		s.deferrals++
		s.delivered = 0
		s.last = e.Time
	case EventDelivered:
		if s := w.streaks[e.MX]; s != nil {
			s.last = e.Time
			if s.delivered++; s.delivered >= streakClear {
				delete(w.streaks, e.MX)
			}
		}
	}
}

// firingNow returns the alerts firing now, by rule and subject.
func (w *alertWatch) firingNow() []Alert {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Alert, 0, len(w.firing))
	for _, a := range w.firing {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b Alert) int {
		return cmp.Or(strings.Compare(a.Rule, b.Rule), strings.Compare(a.Subject, b.Subject))
	})
	return out
}
