package relay

import (
	"fmt"
	"time"
)

// AlertDomains is how many recipient domains each PerDomain rate rule
// keeps a window for at once. A domain costs about 300 octets a rule
// while it has mail in the rule's Window; once the bound is reached, mail
// to further domains counts toward the rate of all mail only, until
// domains whose window emptied are forgotten (every minute or so).
const AlertDomains = 10000

// DeferralStreakIdle is how long an MX host's deferral streak
// (AlertDeferrals) is kept without an event from the host. Then it is
// forgotten, and its alert, if one fires, resolves: a host no longer
// mailed tells nothing more.
const DeferralStreakIdle = time.Hour

// pruneEvery is how often the alert state is swept for what it no
// longer needs, as events arrive.
const pruneEvery = time.Minute

// domainWindow returns the window of domain in rc, created on first use,
// or nil when rc holds as many domains as it may; w.mu is held.
func (w *alertWatch) domainWindow(rc *rateCounts, domain string) *window {
	if dw := rc.domain[domain]; dw != nil {
		return dw
	}
	limit := w.maxDomains
	if limit <= 0 {
		limit = AlertDomains
	}
	if len(rc.domain) >= limit {
		return nil
	}
	dw := &window{}
	rc.domain[domain] = dw
	return dw
}

// prune forgets, at most every pruneEvery, the per-domain windows that
// emptied and the deferral streaks idle for DeferralStreakIdle whose
// alert does not fire (evaluation resolves those first), so that the
// state follows the domains and hosts mailed lately even when Run does
// not evaluate; w.mu is held.
func (w *alertWatch) prune(now time.Time) {
	if now.Sub(w.pruned) < pruneEvery {
		return
	}
	w.pruned = now
	for i, rc := range w.rates {
		if rc == nil {
			continue
		}
		span := w.rules[i].Window
		for d, dw := range rc.domain {
			if num, den := dw.sum(now, span); num == 0 && den == 0 {
				delete(rc.domain, d)
			}
		}
	}
	for h, s := range w.streaks {
		if now.Sub(s.last) >= DeferralStreakIdle && !w.streakFiring(h) {
			delete(w.streaks, h)
		}
	}
}

// streakFiring reports whether a deferrals alert fires for host; w.mu is
// held.
func (w *alertWatch) streakFiring(host string) bool {
	for i := range w.rules {
		if w.rules[i].Kind == AlertDeferrals && w.firing[alertKey{w.rules[i].Name, host}] != nil {
			return true
		}
	}
	return false
}

// idleStreak forgets host's streak if it has been idle for
// DeferralStreakIdle at now, and returns the measure that resolves its
// alert; w.mu is held.
func (w *alertWatch) idleStreak(host string, now time.Time) (measure, bool) {
	s := w.streaks[host]
	if s == nil || now.Sub(s.last) < DeferralStreakIdle {
		return measure{}, false
	}
	delete(w.streaks, host)
	return measure{subject: host, enough: true, keep: true,
		words: fmt.Sprintf("no mail to or from %s for %s", host, span(DeferralStreakIdle))}, true
}
