package relay

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/relay/internal/smtpclient"
)

// Backoff is a slow-down in force on an MX host (Client.Backoffs), or the
// action a back-off rule just took (EventBackoff).
type Backoff struct {
	Host string `json:"host"` // the MX host
	// Rule names the BackoffRule; "push-back" for the automatic back-off
	// after 421s, refused connections and 4xx greetings.
	Rule string `json:"rule"`
	// Action is "slow", "suspend" or "bounce" for a rule; "pause" for the
	// automatic back-off, which also lowers the connections allowed.
	Action string    `json:"action"`
	Slow   int       `json:"slow,omitempty"`  // messages a minute, for "slow"
	Until  time.Time `json:"until,omitzero"`  // when it ends; zero for "bounce"
	Reply  string    `json:"reply,omitempty"` // the reply that set it off, "421 4.7.0 ...", in an event
	Source string    `json:"source,omitempty"`
	// Connections is how many connections the host is allowed now, in
	// Client.Backoffs.
	Connections int `json:"connections,omitempty"`
}

// action names what r does to a host.
func (r *BackoffRule) action() string {
	switch {
	case r.Suspend:
		return "suspend"
	case r.Slow > 0:
		return "slow"
	default:
		return "bounce"
	}
}

// backoff applies the back-off rule matching the reply err carries from
// d's host, if one does: it slows or suspends d and reports the action as
// an EventBackoff when it is news (a rule that is in force already is
// only extended; a bounce rule is reported once per attempt). It returns
// the rule, or nil.
func (a *attempt) backoff(ctx context.Context, d *destination, err error) *BackoffRule {
	r := a.t.ruleFor(d.host, err)
	if r == nil {
		return nil
	}
	now := time.Now()
	news := r.Bounce && !slices.Contains(a.bounceRules, r.Name)
	if news {
		a.bounceRules = append(a.bounceRules, r.Name)
	}
	if r.Slow > 0 || r.Suspend {
		if d.applyRule(r, now) {
			news = true
			a.t.shareBackoff(d)
		}
	}
	if !news {
		return r
	}
	var se *smtpclient.Error
	errors.As(err, &se)
	b := &Backoff{Host: d.host, Rule: r.Name, Action: r.action(), Slow: r.Slow, Reply: replyLine(se), Source: r.Source}
	if r.Slow > 0 || r.Suspend {
		b.Until = now.Add(r.For)
	}
	a.log.Warn("back-off rule", "mx", d.host, "rule", r.Name, "action", b.Action, "until", b.Until, "reply", b.Reply)
	emitFor(ctx, Event{Type: EventBackoff, Time: now, Domain: a.domain, MX: d.host, Code: se.Code,
		Enhanced: se.Enhanced, Message: se.Message, Backoff: b})
	return r
}

// ruleNote is added to the message of a recipient a rule bounced.
func ruleNote(r *BackoffRule) string {
	return " [bounced by back-off rule " + r.Name + ": retrying will not succeed]"
}

// Backoffs lists the MX hosts that are slowed down now: by a back-off
// rule, or by the automatic back-off after push-back; in host order.
func (t *Direct) Backoffs() []Backoff {
	now := time.Now()
	t.pool.mu.Lock()
	dests := make([]*destination, 0, len(t.pool.dests))
	for _, d := range t.pool.dests {
		dests = append(dests, d)
	}
	t.pool.mu.Unlock()
	var out []Backoff
	for _, d := range dests {
		conns := d.connLimit()
		if r, until := d.ruleInForce(now); r != nil {
			out = append(out, Backoff{Host: d.host, Rule: r.Name, Action: r.action(), Slow: r.Slow, Until: until,
				Source: r.Source, Connections: conns})
			continue
		}
		d.shaper.mu.Lock()
		until, allowed, max := d.until, d.allowed, d.max
		d.shaper.mu.Unlock()
		if now.Before(until) || int(allowed) < max {
			b := Backoff{Host: d.host, Rule: "push-back", Action: "pause", Connections: conns}
			if now.Before(until) {
				b.Until = until
			}
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b Backoff) int { return strings.Compare(a.Host, b.Host) })
	return out
}

// Backoffs lists the MX hosts the transport has slowed down now (see
// Direct.Backoffs); nil for a transport that does not shape its traffic.
func (c *Client) Backoffs() []Backoff {
	if t, ok := c.transport().(interface{ Backoffs() []Backoff }); ok {
		return t.Backoffs()
	}
	return nil
}
