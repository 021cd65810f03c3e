package relay

import (
	"cmp"
	"context"
	"time"

	"github.com/mxrelay/mxrelay/preflight"
)

// preflightTimeout bounds one domain's preflight in an evaluation.
const preflightTimeout = time.Minute

// preflightFindings re-runs the preflight of the domains in
// AlertOptions.Preflight that are due (every PreflightEvery) and returns
// what fires for all of them: each error, and each warning that the
// domain's first check did not have. It returns false when no domain was
// checked this time, so the alerts stay as they are.
func (c *Client) preflightFindings(ctx context.Context, w *alertWatch, now time.Time) ([]finding, bool) {
	every := cmp.Or(c.Alerts.PreflightEvery, 24*time.Hour)
	ran := false
	for _, d := range c.Alerts.Preflight {
		if last, ok := w.preflight[d]; ok && now.Sub(last) < every {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, preflightTimeout)
		rep, err := c.Preflight(pctx, d)
		cancel()
		if err != nil {
			c.logger().Warn("alert: preflight failed", "domain", d, "err", err)
			continue
		}
		w.preflight[d] = now
		ran = true
		base, first := w.baseline[d]
		if !first {
			base = map[string]bool{}
			for _, f := range rep.Findings {
				if f.Severity == preflight.Warning {
					base[findingSubject(d, &f)] = true
				}
			}
			w.baseline[d] = base
		}
		var fs []finding
		for _, f := range rep.Findings {
			s := findingSubject(d, &f)
			switch {
			case f.Severity == preflight.Error:
				fs = append(fs, finding{s, AlertError, findingWords(&f)})
			case f.Severity == preflight.Warning && !base[s]:
				fs = append(fs, finding{s, AlertWarning, findingWords(&f)})
			}
		}
		w.lastPreflight[d] = fs
	}
	if !ran {
		return nil, false
	}
	var out []finding
	for _, d := range c.Alerts.Preflight {
		out = append(out, w.lastPreflight[d]...)
	}
	return out, true
}

// findingSubject names a finding in an alert: "example.com dkim.mismatch",
// with the finding's subject when it is not the domain
// ("example.com rdns.missing 192.0.2.1").
func findingSubject(domain string, f *preflight.Finding) string {
	s := domain + " " + f.Check
	if f.Subject != "" && f.Subject != domain {
		s += " " + f.Subject
	}
	return s
}

// findingWords is a finding's alert message: what was found, and the fix.
func findingWords(f *preflight.Finding) string {
	if f.Fix == "" {
		return f.Found
	}
	return f.Found + "; fix: " + f.Fix
}
