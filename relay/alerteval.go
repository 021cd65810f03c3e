package relay

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// measure is one value a rule judges for one subject.
type measure struct {
	subject string
	value   float64
	// enough says there is enough data to fire; keep, enough to stay
	// firing (a rate over a window that emptied resolves).
	enough, keep bool
	// words describes the value: "complaint rate 0.41% over 24h (12 of
	// 2930 delivered)".
	words string
}

// evaluateAlerts judges every rule, notifies the changes and returns them.
func (c *Client) evaluateAlerts(ctx context.Context, w *alertWatch) []Alert {
	w.eval.Lock()
	defer w.eval.Unlock()
	now := c.clock()
	var changes []Alert
	for i := range w.rules {
		r := &w.rules[i]
		switch r.Kind {
		case AlertComplaintRate, AlertBounceRate:
			changes = append(changes, w.judge(r, w.rateMeasures(i, now), now)...)
		case AlertDeferrals:
			changes = append(changes, w.judge(r, w.streakMeasures(now), now)...)
		case AlertQueueAge:
			if m, ok := c.queueAge(ctx, now); ok {
				changes = append(changes, w.judge(r, []measure{m}, now)...)
			}
		case AlertBackoff:
			changes = append(changes, w.present(r, c.backoffFindings(), now)...)
		case AlertPreflight:
			if f, ok := c.preflightFindings(ctx, w, now); ok {
				changes = append(changes, w.present(r, f, now)...)
			}
		}
	}
	for _, a := range changes {
		c.notifyAlert(a)
	}
	return changes
}

// notifyAlert hands a change to Notify and to the events.
func (c *Client) notifyAlert(a Alert) {
	if c.Alerts.Notify != nil {
		c.Alerts.Notify(a)
	}
	e := Event{Type: EventAlert, Time: a.Time, Message: a.String(), Alert: &a}
	switch a.Kind {
	case AlertComplaintRate, AlertBounceRate:
		e.Domain = a.Subject
	case AlertDeferrals, AlertBackoff:
		e.MX = a.Subject
	}
	c.emit(e)
	level := c.logger().Warn
	if a.State == AlertResolved {
		level = c.logger().Info
	}
	level("alert", "rule", a.Rule, "subject", a.Subject, "severity", string(a.Severity), "state", string(a.State), "message", a.Message)
}

// rateMeasures returns rule i's rate for all mail and, per domain, for
// each domain with mail in the window or an alert firing; domains whose
// window emptied are forgotten.
func (w *alertWatch) rateMeasures(i int, now time.Time) []measure {
	r := &w.rules[i]
	rc := w.rates[i]
	w.mu.Lock()
	defer w.mu.Unlock()
	out := []measure{r.rate(&rc.all, "", now)}
	for _, d := range slices.Sorted(maps.Keys(rc.domain)) {
		m := r.rate(rc.domain[d], d, now)
		if m.value == 0 && !m.keep && w.firing[alertKey{r.Name, d}] == nil {
			if num, den := rc.domain[d].sum(now, r.Window); num == 0 && den == 0 {
				delete(rc.domain, d)
			}
			continue
		}
		out = append(out, m)
	}
	// A domain forgotten while its alert fires resolves.
	for k := range w.firing {
		if k.rule == r.Name && k.subject != "" && rc.domain[k.subject] == nil {
			out = append(out, measure{subject: k.subject, words: "no mail in the window"})
		}
	}
	return out
}

// rate is r's rate over win for subject.
func (r *AlertRule) rate(win *window, subject string, now time.Time) measure {
	num, den := win.sum(now, r.Window)
	m := measure{subject: subject, enough: den >= int64(r.MinMessages), keep: 2*den >= int64(r.MinMessages)}
	if den > 0 {
		m.value = float64(num) / float64(den)
	}
	what, of := "complaint rate", "delivered"
	if r.Kind == AlertBounceRate {
		what, of = "bounce rate", "ended"
	}
	where := ""
	if subject != "" {
		where = " at " + subject
	}
	m.words = fmt.Sprintf("%s %s over %s%s (%d of %d %s)", what, percent(m.value), span(r.Window), where, num, den, of)
	return m
}

// streakMeasures returns each MX host's deferral streak, and a zero for
// hosts whose alert fires but whose streak ended or went idle (see
// DeferralStreakIdle).
func (w *alertWatch) streakMeasures(now time.Time) []measure {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []measure
	for _, h := range slices.Sorted(maps.Keys(w.streaks)) {
		if m, idle := w.idleStreak(h, now); idle {
			out = append(out, m)
			continue
		}
		n := w.streaks[h].deferrals
		out = append(out, measure{subject: h, value: float64(n), enough: true, keep: true,
			words: fmt.Sprintf("%d deferrals in a row from %s", n, h)})
	}
	for k, a := range w.firing {
		if a.Kind == AlertDeferrals && w.streaks[k.subject] == nil && !slices.ContainsFunc(out, func(m measure) bool { return m.subject == k.subject }) {
			out = append(out, measure{subject: k.subject, enough: true, keep: true,
				words: fmt.Sprintf("%s delivers again (%d in a row)", k.subject, streakClear)})
		}
	}
	return out
}

// queueAge measures how long the oldest queued message has waited. Job
// ids sort by creation time, so it is the first queued job listed.
func (c *Client) queueAge(ctx context.Context, now time.Time) (measure, bool) {
	q := c.Queue()
	if q == nil {
		return measure{}, false
	}
	jobs, _, err := q.List(ctx, queue.ListRequest{State: queue.StateQueued, Limit: 1})
	if err != nil {
		c.logger().Warn("alert: listing the queue failed", "err", err)
		return measure{}, false
	}
	m := measure{enough: true, keep: true, words: "the queue is empty"}
	if len(jobs) > 0 {
		age := max(now.Sub(jobs[0].Created), 0)
		m.value = age.Seconds()
		m.words = fmt.Sprintf("the oldest queued message (%s) has waited %s", jobs[0].ID, age.Round(time.Second))
	}
	return m, true
}

// finding is a condition that holds now, for AlertBackoff and
// AlertPreflight: it fires while present.
type finding struct {
	subject  string
	severity AlertSeverity
	words    string
}

// backoffFindings are the hosts a back-off rule suspends or slows now.
func (c *Client) backoffFindings() []finding {
	var out []finding
	for _, b := range c.Backoffs() {
		switch b.Action {
		case "suspend":
			out = append(out, finding{b.Host, AlertError, fmt.Sprintf("%s suspended by back-off rule %s", b.Host, b.Rule)})
		case "slow":
			out = append(out, finding{b.Host, AlertWarning, fmt.Sprintf("%s slowed to %d messages a minute by back-off rule %s", b.Host, b.Slow, b.Rule)})
		}
	}
	return out
}

// judge turns a rule's measures into changes: fire at a threshold,
// escalate from warning to error, step down and resolve below Clear
// times the threshold.
func (w *alertWatch) judge(r *AlertRule, ms []measure, now time.Time) []Alert {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Alert
	for _, m := range ms {
		k := alertKey{r.Name, m.subject}
		cur := w.firing[k]
		level, th := r.level(m.value)
		switch {
		case cur == nil:
			if !m.enough || level == "" {
				continue
			}
			a := &Alert{Rule: r.Name, Kind: r.Kind, Subject: m.subject, Severity: level, State: AlertFiring,
				Value: m.value, Threshold: th, Since: now, Time: now}
			a.Message = m.words + ", at or above " + r.format(th)
			w.firing[k] = a
			out = append(out, *a)
		case !m.keep || m.value < r.Clear*r.low():
			delete(w.firing, k)
			a := *cur
			a.State, a.Value, a.Threshold, a.Time = AlertResolved, m.value, r.Clear*r.low(), now
			a.Message = m.words + ", below " + r.format(a.Threshold)
			if !m.keep {
				a.Message = m.words + ", too little mail to judge"
			}
			out = append(out, a)
		case cur.Severity == AlertWarning && level == AlertError:
			cur.Severity, cur.Value, cur.Threshold, cur.Time = AlertError, m.value, th, now
			cur.Message = m.words + ", at or above " + r.format(th)
			out = append(out, *cur)
		default:
			cur.Value = m.value
			if cur.Severity == AlertError && r.Warning > 0 && m.value < r.Clear*r.Error {
				cur.Severity, cur.Threshold = AlertWarning, r.Warning // quietly: still firing
			}
		}
	}
	return out
}

// present turns the findings of a rule without thresholds into changes:
// each fires while present, once per severity, and resolves when gone.
func (w *alertWatch) present(r *AlertRule, fs []finding, now time.Time) []Alert {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Alert
	here := map[string]bool{}
	for _, f := range fs {
		here[f.subject] = true
		k := alertKey{r.Name, f.subject}
		cur := w.firing[k]
		if cur != nil && cur.Severity == f.severity {
			continue
		}
		a := &Alert{Rule: r.Name, Kind: r.Kind, Subject: f.subject, Severity: f.severity, State: AlertFiring,
			Message: f.words, Since: now, Time: now}
		if cur != nil {
			a.Since = cur.Since
		}
		w.firing[k] = a
		out = append(out, *a)
	}
	for _, k := range slices.SortedFunc(maps.Keys(w.firing), func(a, b alertKey) int { return strings.Compare(a.subject, b.subject) }) {
		if k.rule != r.Name || here[k.subject] {
			continue
		}
		a := *w.firing[k]
		delete(w.firing, k)
		a.State, a.Time, a.Message = AlertResolved, now, "no longer: "+a.Message
		out = append(out, a)
	}
	return out
}

// level returns the severity v reaches, and its threshold.
func (r *AlertRule) level(v float64) (AlertSeverity, float64) {
	switch {
	case r.Error > 0 && v >= r.Error:
		return AlertError, r.Error
	case r.Warning > 0 && v >= r.Warning:
		return AlertWarning, r.Warning
	}
	return "", 0
}

// low is the lowest threshold in use, below which (times Clear) an alert
// resolves.
func (r *AlertRule) low() float64 {
	if r.Warning > 0 {
		return r.Warning
	}
	return r.Error
}

// format writes a threshold in the rule's unit.
func (r *AlertRule) format(v float64) string {
	switch r.Kind {
	case AlertComplaintRate, AlertBounceRate:
		return percent(v)
	case AlertQueueAge:
		return (time.Duration(v * float64(time.Second))).Round(time.Second).String()
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func percent(v float64) string { return strconv.FormatFloat(100*v, 'f', 2, 64) + "%" }

// span writes a window: "24h", "90m", "30s".
func span(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	case d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return d.String()
}

// runAlerts evaluates the rules every Interval until ctx ends; Run calls
// it.
func (c *Client) runAlerts(ctx context.Context, w *alertWatch) {
	t := time.NewTicker(cmp.Or(c.Alerts.Interval, DefaultAlertInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.evaluateAlerts(ctx, w)
		}
	}
}
