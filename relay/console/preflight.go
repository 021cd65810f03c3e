package console

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/preflight"
	"github.com/mxrelay/mxrelay/relay"
)

type preflightData struct {
	Domain   string   // in the form: the domain asked for, else the first of Domains
	Domains  []string // the client's sending domains, offered as links
	Ran      bool     // a check was asked for
	Err      string   // why it could not be made
	Report   *preflight.Report
	Errors   int
	Warnings int
	Families []pfFamily
}

// pfFamily is the findings of one family of checks ("spf", "dkim"),
// errors first.
type pfFamily struct {
	Name, Title string
	Worst       preflight.Severity
	Findings    []preflight.Finding
}

// pfFamilies are the families of checks (preflight.Finding.Check before
// the dot), in the order the page shows families of equal severity.
var pfFamilies = []struct{ Name, Title string }{
	{"spf", "SPF"}, {"dkim", "DKIM"}, {"dmarc", "DMARC"}, {"rdns", "Reverse DNS and EHLO names"},
	{"mx", "MX of the From and bounce domains"}, {"bulk", "Bulk-sender rules"}, {"config", "Configuration"},
}

// preflightTimeout bounds one check: a few dozen DNS lookups, each
// bounded by the resolver's own timeout.
const preflightTimeout = 30 * time.Second

// preflightPage shows the form, and with ?domain= runs Client.Preflight:
// DNS lookups, so only when asked, never on another page's render.
func (k *server) preflightPage(w http.ResponseWriter, r *http.Request, _ string) {
	d := &preflightData{Domains: k.sendingDomains()}
	q := r.URL.Query()
	_, d.Ran = q["domain"]
	d.Domain = strings.TrimSpace(q.Get("domain"))
	if !d.Ran {
		if len(d.Domains) > 0 {
			d.Domain = d.Domains[0]
		}
		k.render(w, r, "preflight", "Preflight", d)
		return
	}
	code := http.StatusOK
	switch {
	case d.Domain == "":
		d.Err, code = "Enter the domain your mail is sent from (the From address's domain).", http.StatusBadRequest
	case len(d.Domain) > 253:
		d.Err, code = "That is not a domain name: it is longer than 253 characters.", http.StatusBadRequest
	default:
		ctx, cancel := context.WithTimeout(r.Context(), preflightTimeout)
		defer cancel()
		rep, err := k.c.Preflight(ctx, d.Domain)
		switch {
		case errors.Is(err, relay.ErrInvalidConfig):
			d.Err = "This client cannot be checked: " + err.Error()
		case errors.Is(err, preflight.ErrInvalidConfig):
			d.Err, code = "The domain cannot be checked: "+err.Error(), http.StatusBadRequest
		case err != nil:
			d.Err = "The check did not finish: " + err.Error()
		default:
			d.Report = rep
			d.Errors, d.Warnings = len(rep.Errors()), len(rep.Warnings())
			d.Families = groupFindings(rep.Findings)
		}
	}
	title := "Preflight"
	if d.Report != nil {
		title = "Preflight of " + d.Report.Domain
	}
	k.renderStatus(w, r, code, "preflight", title, d)
}

// sendingDomains are the domains the client is known to send from: those
// its alerts re-check (Alerts.Preflight), then its DKIM keys' domains.
func (k *server) sendingDomains() []string {
	var out []string
	add := func(d string) {
		d = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(d), "."))
		if d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	for _, d := range k.c.Alerts.Preflight {
		add(d)
	}
	for _, key := range k.c.Signer.Keys() {
		add(key.Domain)
	}
	return out
}

// groupFindings groups fs by family: the families with the worst
// findings first (then in the order of pfFamilies, then any other by
// name), and in each family errors first, in the report's order.
func groupFindings(fs []preflight.Finding) []pfFamily {
	var out []pfFamily
	rank := func(name string) int {
		if i := slices.IndexFunc(pfFamilies, func(f struct{ Name, Title string }) bool { return f.Name == name }); i >= 0 {
			return i
		}
		return len(pfFamilies)
	}
	for _, f := range fs {
		name, _, _ := strings.Cut(f.Check, ".")
		i := slices.IndexFunc(out, func(g pfFamily) bool { return g.Name == name })
		if i < 0 {
			title := name
			if j := rank(name); j < len(pfFamilies) {
				title = pfFamilies[j].Title
			}
			out = append(out, pfFamily{Name: name, Title: title})
			i = len(out) - 1
		}
		out[i].Findings = append(out[i].Findings, f)
		out[i].Worst = max(out[i].Worst, f.Severity)
	}
	for i := range out {
		slices.SortStableFunc(out[i].Findings, func(a, b preflight.Finding) int { return cmp.Compare(b.Severity, a.Severity) })
	}
	slices.SortStableFunc(out, func(a, b pfFamily) int {
		return cmp.Or(cmp.Compare(b.Worst, a.Worst), cmp.Compare(rank(a.Name), rank(b.Name)), strings.Compare(a.Name, b.Name))
	})
	return out
}
