package relay

import (
	"context"
	"fmt"
	"time"
)

// AlertOptions turn what the Client sees into alerts: a complaint or
// bounce rate over a window at the thresholds providers publish, an MX
// host that keeps deferring, a host suspended by a back-off rule, a queue
// whose oldest message waits too long, a sending domain whose DNS setup
// got worse. Run evaluates the rules every Interval; each alert fires
// once, when its value crosses a threshold, again if it goes from warning
// to error, and resolves once the value has fallen clearly back (below
// Clear times the warning threshold), so a value hovering at a threshold
// does not make a stream of alerts. Each change is passed to Notify, and
// emitted as an EventAlert, which reaches Events and the webhooks.
//
// Alerts are off unless Notify or Rules is set.
type AlertOptions struct {
	// Rules are evaluated; nil with Notify set → DefaultAlertRules().
	Rules []AlertRule
	// Notify, if set, is called with each alert that fires or resolves,
	// one at a time, from Run's evaluation.
	Notify func(Alert)
	// Interval is how often Run evaluates the rules. 0 →
	// DefaultAlertInterval.
	Interval time.Duration
	// Preflight names the sending domains whose preflight
	// (Client.Preflight) is re-run every PreflightEvery, for rules of
	// kind AlertPreflight.
	Preflight []string
	// PreflightEvery is how often the domains are checked again. 0 → a
	// day.
	PreflightEvery time.Duration
}

// DefaultAlertInterval is how often Run evaluates the alert rules when
// AlertOptions.Interval is zero.
const DefaultAlertInterval = 30 * time.Second

// AlertKind says what a rule watches.
type AlertKind int

// Alert kinds, with the unit of their thresholds.
const (
	// AlertComplaintRate: spam complaints (EventComplained) ÷ delivered
	// recipients over the rule's Window; a fraction (0.001 is 0.1%).
	AlertComplaintRate AlertKind = iota + 1
	// AlertBounceRate: bounced and expired recipients ÷ those delivered,
	// bounced or expired over the Window; a fraction.
	AlertBounceRate
	// AlertDeferrals: consecutive deferrals from one MX host, with no
	// delivery between them; a count. It resolves after three deliveries
	// in a row from the host, or when the host has had no mail for
	// DeferralStreakIdle.
	AlertDeferrals
	// AlertBackoff: an MX host suspended (error) or slowed (warning) by a
	// back-off rule (Client.Backoffs); no threshold.
	AlertBackoff
	// AlertQueueAge: how long the oldest queued message has waited;
	// seconds.
	AlertQueueAge
	// AlertPreflight: a preflight finding of a domain in
	// AlertOptions.Preflight: every error, and warnings that were not
	// there at the first check; no threshold. It resolves when a later
	// check no longer finds it.
	AlertPreflight
)

var alertKindNames = [...]string{"", "complaint_rate", "bounce_rate", "deferrals", "backoff", "queue_age", "preflight"}

// String returns the kind's name, such as "complaint_rate".
func (k AlertKind) String() string {
	if k > 0 && int(k) < len(alertKindNames) {
		return alertKindNames[k]
	}
	return "unknown"
}

// MarshalText encodes the kind as its name.
func (k AlertKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// AlertRule is one condition watched.
type AlertRule struct {
	// Name identifies the rule in alerts: "complaint-rate". Required;
	// unique within the rules.
	Name string
	// Kind says what is measured, and the unit of the thresholds.
	Kind AlertKind
	// Warning and Error are the thresholds, in the kind's unit: the
	// alert fires as a warning when the value reaches Warning, as an
	// error when it reaches Error. Zero → that severity is not used (at
	// least one is needed, except for AlertBackoff and AlertPreflight).
	Warning, Error float64
	// Window is the span of a rate. 0 → a day, the span over which the
	// providers measure.
	Window time.Duration
	// MinMessages is the least denominator of a rate before it is
	// judged: a rate over a handful of messages means nothing. A firing
	// rate resolves when the window holds under half as many. 0 → 1000.
	MinMessages int
	// PerDomain judges a rate for each recipient domain on its own
	// (gmail.com, yahoo.com: each provider measures its own), besides all
	// mail together; for at most AlertDomains domains at once.
	PerDomain bool
	// Clear is the hysteresis: a firing alert resolves when its value
	// falls below Clear × Warning (or Clear × Error, for one with no
	// Warning), and an error becomes a warning below Clear × Error. 0 →
	// 0.8; at most 1.
	Clear float64
	// Source says where the thresholds come from.
	Source string
}

// DefaultAlertRules returns the rules used when AlertOptions.Rules is
// nil, with the thresholds the providers publish.
func DefaultAlertRules() []AlertRule {
	return []AlertRule{
		{
			Name: "complaint-rate", Kind: AlertComplaintRate, Warning: 0.001, Error: 0.003, PerDomain: true,
			Source: "Google Email sender guidelines (keep the spam rate below 0.1%, never reach 0.3%); Yahoo Sender Best Practices (0.3%)",
		},
		{
			Name: "bounce-rate", Kind: AlertBounceRate, Warning: 0.05, Error: 0.10, PerDomain: true, MinMessages: 200,
			Source: "Amazon SES sending review process (an account is reviewed at a 5% bounce rate and may be paused at 10%)",
		},
		{
			Name: "deferral-streak", Kind: AlertDeferrals, Warning: 20, Error: 100,
			Source: "mxrelay: a host that defers everything is refusing the sender (a block or a throttle)",
		},
		{
			Name: "backoff", Kind: AlertBackoff,
			Source: "the back-off rules (BackoffRule): the provider asked the sender to stop or slow down",
		},
		{
			Name: "queue-age", Kind: AlertQueueAge, Warning: time.Hour.Seconds(), Error: (12 * time.Hour).Seconds(),
			Source: "mxrelay: mail an hour late is late for most applications",
		},
		{
			Name: "preflight", Kind: AlertPreflight,
			Source: "Client.Preflight, re-run every AlertOptions.PreflightEvery",
		},
	}
}

// AlertSeverity is how bad an alert is.
type AlertSeverity string

// Severities.
const (
	AlertWarning AlertSeverity = "warning"
	AlertError   AlertSeverity = "error"
)

// AlertState says whether an alert fires or resolved.
type AlertState string

// States.
const (
	AlertFiring   AlertState = "firing"
	AlertResolved AlertState = "resolved"
)

// Alert is one change of an alert: it fired, went from warning to error,
// or resolved.
type Alert struct {
	Rule string    `json:"rule"` // the rule's Name
	Kind AlertKind `json:"kind"`
	// Subject is what the alert is about: "" for all mail, a recipient
	// domain (a per-domain rate), an MX host (deferrals, back-off), or
	// "example.com dkim.mismatch" (a preflight finding: domain and check).
	Subject  string        `json:"subject,omitempty"`
	Severity AlertSeverity `json:"severity"`
	State    AlertState    `json:"state"`
	// Value is what was measured, in the kind's unit, and Threshold the
	// threshold crossed (for a resolution, the level it fell below).
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold,omitempty"`
	// Message says it in words: "complaint rate 0.41% over 24h at
	// gmail.com (12 of 2,930 delivered), at or above 0.30%".
	Message string    `json:"message"`
	Since   time.Time `json:"since"` // when it fired
	Time    time.Time `json:"time"`  // when this change happened
}

// String returns the alert in one line: "firing error complaint-rate
// gmail.com: complaint rate ...".
func (a Alert) String() string {
	subject := ""
	if a.Subject != "" {
		subject = " " + a.Subject
	}
	return fmt.Sprintf("%s %s %s%s: %s", a.State, a.Severity, a.Rule, subject, a.Message)
}

// FiringAlerts returns the alerts firing now, by rule and subject.
func (c *Client) FiringAlerts() []Alert {
	w, _ := c.alertSetup()
	if w == nil {
		return nil
	}
	return w.firingNow()
}

// CheckAlerts evaluates the alert rules now, as Run does every
// AlertOptions.Interval, notifies the changes and returns them. It
// returns nil when alerts are off, and an error wrapping
// ErrInvalidConfig for rules that cannot be evaluated.
func (c *Client) CheckAlerts(ctx context.Context) ([]Alert, error) {
	a, err := c.alertSetup()
	if a == nil || err != nil {
		return nil, err
	}
	return c.evaluateAlerts(ctx, a), nil
}
