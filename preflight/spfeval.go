package preflight

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mxrelay/mxrelay/mx"
)

// spfResult is a result of check_host() (RFC 7208 §2.6).
type spfResult string

const (
	spfPass      spfResult = "pass"
	spfFail      spfResult = "fail"
	spfSoftFail  spfResult = "softfail"
	spfNeutral   spfResult = "neutral"
	spfNone      spfResult = "none"
	spfPermError spfResult = "permerror"
	spfTempError spfResult = "temperror"
)

// Limits of RFC 7208 §4.6.4.
const (
	spfMaxLookups = 10 // terms that query the DNS
	spfMaxVoids   = 2  // lookups that find no such name or no records
	spfMaxMX      = 10 // MX records of one mx mechanism
	spfMaxPTR     = 10 // PTR names considered by ptr and %{p}
	spfMaxDepth   = 20 // nested records; the lookup limit stops sooner
)

// Why an evaluation ended in permerror or temperror.
const (
	spfErrSyntax      = "syntax"          // a record does not parse
	spfErrMultiple    = "multiple"        // a domain has two SPF records
	spfErrMissing     = "include-missing" // include or redirect of a domain without one
	spfErrLookups     = "lookup-limit"    // over 10 DNS lookups, or an mx over 10 MX
	spfErrVoids       = "void-limit"      // over 2 void lookups
	spfErrDNS         = "dns"             // a lookup failed
	spfErrUnsupported = "unsupported"     // a lookup the Resolver cannot make
)

// spfEval is one run of check_host() for one address (RFC 7208 §4), with
// what the checks want to know about it.
type spfEval struct {
	r      resolver
	ip     netip.Addr
	local  string // local-part of the sender
	sender string // domain of the sender
	helo   string
	// probe evaluates for an address that no ip4, ip6, a, mx, ptr or
	// exists mechanism lists: every term such an address reaches is
	// visited, which counts the lookups and finds permissive records.
	probe bool

	result    spfResult
	matched   string // the term that decided, "include:a → ip4:192.0.2.0/24"
	errKind   string // spfErr* for permerror and temperror
	errText   string
	lookups   int
	voids     int
	usedLocal bool // %{s} or %{l} was expanded
	usedPTR   bool // a ptr mechanism or %{p} was evaluated
	depth     int
	ptrDone   bool
	ptrNames  []string // validated names of ip
}

// checkHost runs check_host(ip, domain, sender) from the start: fetch the
// record, evaluate it.
func (e *spfEval) checkHost(ctx context.Context, domain string) spfResult {
	rec, res := e.fetch(ctx, domain)
	if res == "" {
		res = e.eval(ctx, rec, domain)
	}
	e.result = res
	return res
}

// fetch returns the one SPF record of domain, or the result that ends the
// evaluation: none when there is none (RFC 7208 §4.5).
func (e *spfEval) fetch(ctx context.Context, domain string) (*spfRecord, spfResult) {
	txts, err := e.r.LookupTXT(ctx, domain)
	if err != nil {
		if mx.IsPermanent(err) {
			return nil, spfNone
		}
		return nil, e.fail(spfTempError, spfErrDNS, "%s", dnsFailure(err))
	}
	var recs []string
	for _, t := range txts {
		if isSPF(t) {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return nil, spfNone
	case 1:
	default:
		return nil, e.fail(spfPermError, spfErrMultiple, "%s has %d SPF records", domain, len(recs))
	}
	rec, err := parseSPF(recs[0])
	if err != nil {
		return nil, e.fail(spfPermError, spfErrSyntax, "%s: %v", domain, err)
	}
	return rec, ""
}

// fail records why the evaluation ends (the first reason wins: it is the
// innermost) and returns res.
func (e *spfEval) fail(res spfResult, kind, format string, args ...any) spfResult {
	if e.errKind == "" {
		e.errKind, e.errText = kind, fmt.Sprintf(format, args...)
	}
	return res
}

// eval evaluates rec, the record of domain (RFC 7208 §4.6, §6.1).
func (e *spfEval) eval(ctx context.Context, rec *spfRecord, domain string) spfResult {
	e.depth++
	defer func() { e.depth-- }()
	if e.depth > spfMaxDepth {
		return e.fail(spfPermError, spfErrLookups, "records nested more than %d deep", spfMaxDepth)
	}
	for i := range rec.terms {
		t := &rec.terms[i]
		match, res := e.term(ctx, t, domain)
		if res != "" {
			return res
		}
		if match {
			if e.matched == "" {
				e.matched = t.text
			}
			switch t.qual {
			case '-':
				return spfFail
			case '~':
				return spfSoftFail
			case '?':
				return spfNeutral
			}
			return spfPass
		}
	}
	// redirect= is ignored when the record has an all mechanism (§6.1).
	if rec.redirect == nil || rec.hasAll {
		return spfNeutral
	}
	t := rec.redirect
	if !e.count(t.text) {
		return spfPermError
	}
	target, res := e.target(ctx, t, domain)
	if res != "" {
		return res
	}
	sub, res := e.fetch(ctx, target)
	switch res {
	case "":
	case spfNone:
		return e.fail(spfPermError, spfErrMissing, "%s: %s has no SPF record", t.text, target)
	default:
		return res
	}
	res = e.eval(ctx, sub, target)
	if e.matched != "" {
		e.matched = t.text + " → " + e.matched
	}
	return res
}

// term evaluates one mechanism: whether it matches, or the result that
// ends the evaluation.
func (e *spfEval) term(ctx context.Context, t *spfTerm, domain string) (bool, spfResult) {
	switch t.mech {
	case "all":
		return true, ""
	case "ip4", "ip6":
		if e.probe {
			return t.net.Bits() == 0, ""
		}
		return t.net.Contains(e.ip), ""
	}
	if !e.count(t.text) {
		return false, spfPermError
	}
	target, res := e.target(ctx, t, domain)
	if res != "" {
		return false, res
	}
	switch t.mech {
	case "include":
		return e.include(ctx, t, target)
	case "a":
		return e.addrMatch(ctx, t, target, true)
	case "mx":
		return e.mxMatch(ctx, t, target)
	case "ptr":
		e.usedPTR = true
		if e.probe {
			return false, ""
		}
		names, res := e.validated(ctx, t.text)
		for _, n := range names {
			if n == target || strings.HasSuffix(n, "."+target) {
				return true, ""
			}
		}
		return false, res
	case "exists":
		return e.addrMatch(ctx, t, target, false)
	}
	return false, e.fail(spfPermError, spfErrSyntax, "unknown mechanism %q", t.text)
}

// include evaluates include:target (RFC 7208 §5.2).
func (e *spfEval) include(ctx context.Context, t *spfTerm, target string) (bool, spfResult) {
	sub, res := e.fetch(ctx, target)
	switch res {
	case "":
	case spfNone:
		return false, e.fail(spfPermError, spfErrMissing, "%s: %s has no SPF record", t.text, target)
	default:
		return false, res
	}
	switch res := e.eval(ctx, sub, target); res {
	case spfPass:
		e.matched = t.text + " → " + e.matched
		return true, ""
	case spfFail, spfSoftFail, spfNeutral:
		e.matched = ""
		return false, ""
	default:
		return false, res
	}
}

// addrMatch evaluates a (whether an address of target is in the
// network) and exists (whether target has an A record at all).
func (e *spfEval) addrMatch(ctx context.Context, t *spfTerm, target string, isA bool) (bool, spfResult) {
	if strings.Contains(target, "_") {
		return false, e.fail(spfTempError, spfErrUnsupported,
			"%s: %s has an underscore label, and the resolver looks up addresses of host names only", t.text, target)
	}
	ips, err := e.r.LookupIP(ctx, target)
	if err != nil {
		if mx.IsPermanent(err) {
			return false, e.void(t.text, target)
		}
		return false, e.fail(spfTempError, spfErrDNS, "%s: %s", t.text, dnsFailure(err))
	}
	// a asks for the address type of the client, exists always for A
	// (RFC 7208 §5.3, §5.7).
	v4 := !isA || e.ip.Is4()
	found, match := false, false
	for _, ip := range ips {
		if ip.Is4() != v4 {
			continue
		}
		found = true
		if isA && !e.probe && e.inNetwork(ip, t) {
			match = true
		}
	}
	if !found {
		return false, e.void(t.text, target)
	}
	if !isA {
		return !e.probe, ""
	}
	return match, ""
}

// inNetwork reports whether the client address is in the network of ip
// with t's prefix lengths (RFC 7208 §5.6).
func (e *spfEval) inNetwork(ip netip.Addr, t *spfTerm) bool {
	bits := t.cidr6
	if ip.Is4() {
		bits = t.cidr4
	}
	p, err := ip.Prefix(bits)
	return err == nil && p.Contains(e.ip)
}

// mxMatch evaluates mx:target (RFC 7208 §5.4).
func (e *spfEval) mxMatch(ctx context.Context, t *spfTerm, target string) (bool, spfResult) {
	mxs, err := e.r.LookupMX(ctx, target)
	switch {
	case errors.Is(err, mx.ErrNullMX), errors.Is(err, mx.ErrNoUsableMX):
		return false, "" // records, but no host to match
	case err != nil && mx.IsPermanent(err):
		return false, e.void(t.text, target)
	case err != nil:
		return false, e.fail(spfTempError, spfErrDNS, "%s: %s", t.text, dnsFailure(err))
	}
	// SPF never applies the implicit MX of RFC 5321 (§5.4), which
	// mx.Resolver reports as the domain itself at preference 0. (An
	// explicit "MX 0 <domain>" reads the same and is treated alike: this
	// errs on the side of reporting an address as not authorised.)
	if len(mxs) == 1 && mxs[0].Host == target && mxs[0].Pref == 0 {
		return false, e.void(t.text, target)
	}
	if len(mxs) > spfMaxMX {
		return false, e.fail(spfPermError, spfErrLookups, "%s: %s has %d MX records; the limit is %d", t.text, target, len(mxs), spfMaxMX)
	}
	if e.probe {
		return false, ""
	}
	for _, m := range mxs {
		if strings.Contains(m.Host, "_") {
			continue
		}
		ips, err := e.r.LookupIP(ctx, m.Host)
		if err != nil {
			if mx.IsPermanent(err) {
				continue
			}
			return false, e.fail(spfTempError, spfErrDNS, "%s: %s", t.text, dnsFailure(err))
		}
		for _, ip := range ips {
			if ip.Is4() == e.ip.Is4() && e.inNetwork(ip, t) {
				return true, ""
			}
		}
	}
	return false, ""
}

// validated returns the validated names of the client address (RFC 7208
// §5.5): its PTR names, at most 10, that resolve back to it. A failed
// PTR lookup makes ptr fail to match; a missing one is a void lookup.
func (e *spfEval) validated(ctx context.Context, term string) ([]string, spfResult) {
	if e.ptrDone {
		return e.ptrNames, ""
	}
	e.ptrDone = true
	names, err := e.r.LookupPTR(ctx, e.ip)
	if err != nil {
		if mx.IsPermanent(err) {
			return nil, e.void(term, e.ip.String())
		}
		return nil, ""
	}
	for _, n := range names[:min(len(names), spfMaxPTR)] {
		ips, err := e.r.LookupIP(ctx, n)
		if err != nil {
			continue
		}
		for _, ip := range ips {
			if ip == e.ip {
				e.ptrNames = append(e.ptrNames, n)
				break
			}
		}
	}
	return e.ptrNames, ""
}

// count counts a term that queries the DNS and reports whether the limit
// still holds.
func (e *spfEval) count(term string) bool {
	e.lookups++
	if e.lookups > spfMaxLookups {
		e.fail(spfPermError, spfErrLookups, "%s would be DNS lookup %d; the limit is %d", term, e.lookups, spfMaxLookups)
		return false
	}
	return true
}

// void counts a lookup that found nothing; past the limit it is a
// permerror.
func (e *spfEval) void(term, name string) spfResult {
	e.voids++
	if e.voids > spfMaxVoids {
		return e.fail(spfPermError, spfErrVoids, "%s: %s is void lookup %d (no such name, or no records); the limit is %d", term, name, e.voids, spfMaxVoids)
	}
	return ""
}

// target returns the domain a term names, its domain-spec expanded, or
// the current domain.
func (e *spfEval) target(ctx context.Context, t *spfTerm, domain string) (string, spfResult) {
	if t.domain == nil {
		return domain, ""
	}
	s, res := e.expand(ctx, t.domain, domain, t.text)
	if res != "" {
		return "", res
	}
	s = strings.ToLower(strings.TrimSuffix(s, "."))
	// RFC 7208 §7.3: labels come off the left until the name fits.
	for len(s) > 253 {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			break
		}
		s = s[i+1:]
	}
	return s, ""
}
