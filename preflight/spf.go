package preflight

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mxrelay/mxrelay/mx"
)

// spfState is what the SPF checks of one domain leave for DMARC and the
// bulk-sender rules.
type spfState struct {
	valid     bool // one record that parses
	pass      bool // every source passes
	unchecked bool // the DNS could not be read
}

// probeAddr stands for "an address the record does not list" (TEST-NET-1,
// RFC 5737); only macros ever see it.
var probeAddr = netip.MustParseAddr("192.0.2.0")

// spfLocalPart is the local-part used for %{l} and %{s}: RFC 7208 §4.3's
// "postmaster" (VERP return paths have one per message).
const spfLocalPart = "postmaster"

// checkSPF checks the SPF record of the From domain and, when it differs,
// of the envelope domain.
func (ck *checker) checkSPF(ctx context.Context) {
	ck.spfDomain(ctx, ck.domain)
	if ck.envelope != ck.domain {
		ck.spfDomain(ctx, ck.envelope)
	}
}

// spfDomain checks the SPF record of domain.
func (ck *checker) spfDomain(ctx context.Context, domain string) {
	st := &spfState{}
	ck.spf[domain] = st
	// Receivers check SPF on the envelope domain (RFC 7208 §2.4); the
	// From domain's record matters less when mail leaves from another.
	sev, note := Error, ""
	if domain != ck.envelope {
		sev = Warning
		note = "; receivers check SPF on the envelope domain, " + ck.envelope + ", so only mail with a return path in " + domain + " is affected"
	}
	add := func(check string, s Severity, found, fix string, rec *Record, src string) {
		ck.add(Finding{Check: check, Severity: s, Subject: domain, Found: found, Fix: fix, Record: rec, Source: src})
	}

	txts, err := ck.r.LookupTXT(ctx, domain)
	if err != nil && !mx.IsPermanent(err) {
		st.unchecked = true
		add("spf.unchecked", Warning, "could not check: "+dnsFailure(err), "check again; if it persists, fix the domain's name servers", nil, "RFC 7208 §2.6.6")
		return
	}
	var recs []string
	for _, t := range txts {
		if isSPF(t) {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		fix := "publish an SPF record that lists the addresses mail leaves from"
		var rec *Record
		if len(ck.sources) > 0 {
			rec = &Record{Name: domain, Type: "TXT", Value: withAddrs("v=spf1 ~all", ck.sourceAddrs())}
		} else {
			fix += `, such as "v=spf1 ip4:192.0.2.1 ~all"`
		}
		add("spf.missing", sev, "no v=spf1 TXT record: receivers get none"+note, fix, rec, "RFC 7208 §2.6.1, §4.5")
		return
	case 1:
	default:
		add("spf.multiple", Error, fmt.Sprintf("%d v=spf1 records: receivers give permerror", len(recs)),
			"merge them into one record", nil, "RFC 7208 §3.2, §4.5")
		return
	}
	rec, err := parseSPF(recs[0])
	if err != nil {
		add("spf.syntax", Error, fmt.Sprintf("%q: %v: receivers give permerror", recs[0], err),
			"correct the record", nil, "RFC 7208 §4.6, §12")
		return
	}
	st.valid = true

	type issue struct {
		sev   Severity
		found string
	}
	issues := map[string]issue{}
	var order []string
	raise := func(check string, s Severity, found string) {
		if old, ok := issues[check]; ok && old.sev >= s {
			return
		} else if !ok {
			order = append(order, check)
		}
		issues[check] = issue{s, found}
	}
	usedLocal, usedPTR := false, false
	var passes, denied []string
	var deniedAddrs, viaAll []netip.Addr // viaAll: passed by the record's own all
	lookups := 0
	for _, src := range ck.sources {
		e := &spfEval{r: ck.r, ip: src.addr, local: spfLocalPart, sender: domain, helo: src.ehlo}
		res := e.eval(ctx, rec, domain)
		usedLocal = usedLocal || e.usedLocal
		usedPTR = usedPTR || e.usedPTR
		lookups = max(lookups, e.lookups)
		switch res {
		case spfPass:
			passes = append(passes, src.addr.String()+" passes ("+e.matched+")")
			if topAll(rec, e.matched) != "" {
				viaAll = append(viaAll, src.addr)
			}
		case spfPermError:
			raise(spfCheck(e.errKind), Error, fmt.Sprintf("%s gets permerror: %s", src.addr, e.errText))
		case spfTempError:
			raise("spf.unchecked", Warning, fmt.Sprintf("could not check %s: %s", src.addr, e.errText))
		default:
			how := "no mechanism matched"
			if e.matched != "" {
				how = "matched " + e.matched
			}
			denied = append(denied, fmt.Sprintf("%s gets %s (%s)", src.addr, res, how))
			deniedAddrs = append(deniedAddrs, src.addr)
		}
	}

	// An address no mechanism lists: what everyone else gets.
	probe := &spfEval{r: ck.r, ip: probeAddr, local: spfLocalPart, sender: domain, helo: ck.cfg.Hostname, probe: true}
	pres := probe.eval(ctx, rec, domain)
	usedLocal = usedLocal || probe.usedLocal
	usedPTR = usedPTR || probe.usedPTR
	switch pres {
	case spfPass:
		raise("spf.all-pass", Error, "every address passes (matched "+probe.matched+"): anyone may send as the domain")
	case spfNeutral:
		if strings.HasSuffix(probe.matched, "?all") {
			raise("spf.all-neutral", Warning, "addresses the record does not list get neutral (matched "+probe.matched+"), which protects nothing")
		} else if rec.redirect != nil {
			raise("spf.all-missing", Info, "the record its "+rec.redirect.text+" leads to ends without an all mechanism, so other addresses get neutral")
		} else {
			raise("spf.all-missing", Info, "the record ends without an all mechanism or redirect, so other addresses get neutral")
		}
	case spfPermError:
		raise(spfCheck(probe.errKind), Warning, "addresses the record does not list get permerror: "+probe.errText)
	case spfTempError:
		raise("spf.unchecked", Warning, "could not check the whole record: "+probe.errText)
	}
	if usedPTR {
		raise("spf.ptr", Warning, "the record uses the ptr mechanism or the %{p} macro, which is slow, unreliable and ignored by some receivers")
	}
	if usedLocal {
		raise("spf.macro-local-part", Info, "the result depends on the sender's local-part (%{l} or %{s}); checked with "+spfLocalPart+"@"+domain+", while VERP return paths differ per message")
	}
	// One corrected record carries every fix made to the record itself,
	// so that whichever finding is acted on, nothing else is undone.
	fixed, fixes := rec.text, map[string]bool{}
	if len(deniedAddrs) > 0 {
		fixed, fixes["spf.not-authorized"] = withAddrs(fixed, deniedAddrs), true
	}
	if _, ok := issues["spf.all-pass"]; ok {
		if t := topAll(rec, probe.matched); t != "" {
			// Sources that only the all let in must be listed first.
			fixed, fixes["spf.all-pass"] = replaceTerm(withAddrs(fixed, viaAll), t, "~all"), true
		}
	}
	if _, ok := issues["spf.all-neutral"]; ok {
		if t := topAll(rec, probe.matched); t != "" {
			fixed, fixes["spf.all-neutral"] = replaceTerm(fixed, t, "~all"), true
		}
	}
	if _, ok := issues["spf.all-missing"]; ok && rec.redirect == nil {
		fixed, fixes["spf.all-missing"] = strings.Join(strings.Fields(fixed), " ")+" ~all", true
	}
	fixRec := func(check string) *Record {
		if !fixes[check] {
			return nil
		}
		return &Record{Name: domain, Type: "TXT", Value: fixed}
	}
	if len(denied) > 0 {
		add("spf.not-authorized", sev, strings.Join(denied, "; ")+note,
			"authorise the sending addresses in the SPF record", fixRec("spf.not-authorized"), "RFC 7208 §2.6, §5.6")
	}
	for _, check := range order {
		is := issues[check]
		ck.add(Finding{Check: check, Severity: is.sev, Subject: domain, Found: is.found, Fix: spfFixes[check],
			Record: fixRec(check), Source: spfSources[check]})
	}
	errs := false
	for _, is := range issues {
		errs = errs || is.sev == Error
	}
	_, tempFail := issues["spf.unchecked"]
	st.pass = len(denied) == 0 && !errs && !tempFail
	if st.pass && len(passes) == len(ck.sources) {
		found := fmt.Sprintf("%q; %d of %d DNS lookups for an address it does not list", rec.text, probe.lookups, spfMaxLookups)
		if len(passes) > 0 {
			found = fmt.Sprintf("%q: %s; %d of %d DNS lookups at most", rec.text, strings.Join(passes, ", "), max(lookups, probe.lookups), spfMaxLookups)
		}
		add("spf.ok", OK, found, "", nil, "RFC 7208")
	}
}

// spfCheck names the check of a permerror or temperror kind.
func spfCheck(kind string) string {
	switch kind {
	case spfErrSyntax:
		return "spf.syntax"
	case spfErrMultiple:
		return "spf.multiple"
	case spfErrMissing:
		return "spf.include-missing"
	case spfErrLookups:
		return "spf.lookup-limit"
	case spfErrVoids:
		return "spf.void-limit"
	}
	return "spf.unchecked"
}

// spfFixes and spfSources complete the findings raised above.
var spfFixes = map[string]string{
	"spf.syntax":           "correct the record the evaluation reached",
	"spf.multiple":         "merge the records into one",
	"spf.include-missing":  "remove the include or redirect, or publish an SPF record at the domain it names",
	"spf.lookup-limit":     "stay within 10 lookups: replace include, a and mx terms with ip4: and ip6: terms, and drop includes of services no longer used",
	"spf.void-limit":       "remove the terms naming domains that do not exist or have no records",
	"spf.unchecked":        "check again; if it persists, fix the name servers of the domains involved",
	"spf.all-pass":         `end the record with "~all" or "-all"`,
	"spf.all-neutral":      `end the record with "~all" or "-all"`,
	"spf.all-missing":      `end the record with "~all" or "-all"`,
	"spf.ptr":              "replace ptr with ip4: and ip6: terms for the sending addresses",
	"spf.macro-local-part": "make sure every return path local-part the application uses passes",
}

var spfSources = map[string]string{
	"spf.syntax":           "RFC 7208 §4.6, §12",
	"spf.multiple":         "RFC 7208 §3.2, §4.5",
	"spf.include-missing":  "RFC 7208 §5.2, §6.1",
	"spf.lookup-limit":     "RFC 7208 §4.6.4",
	"spf.void-limit":       "RFC 7208 §4.6.4",
	"spf.unchecked":        "RFC 7208 §2.6.6",
	"spf.all-pass":         "RFC 7208 §5.1",
	"spf.all-neutral":      "RFC 7208 §2.6.2, §5.1",
	"spf.all-missing":      "RFC 7208 §4.7",
	"spf.ptr":              "RFC 7208 §5.5",
	"spf.macro-local-part": "RFC 7208 §7.2",
}

// topAll returns the all term of rec itself when it is what matched.
func topAll(rec *spfRecord, matched string) string {
	if strings.Contains(matched, "→") {
		return ""
	}
	for _, t := range rec.terms {
		if t.mech == "all" && t.text == matched {
			return t.text
		}
	}
	return ""
}

// sourceAddrs returns the addresses of the sources.
func (ck *checker) sourceAddrs() []netip.Addr {
	out := make([]netip.Addr, 0, len(ck.sources))
	for _, s := range ck.sources {
		out = append(out, s.addr)
	}
	return out
}

// withAddrs adds ip4: and ip6: terms for addrs to an SPF record, before its
// all mechanism or redirect so that they are evaluated.
func withAddrs(text string, addrs []netip.Addr) string {
	terms := strings.Fields(text)
	at := len(terms)
	for i, t := range terms[1:] {
		l := strings.ToLower(strings.TrimLeft(t, "+-~?"))
		if l == "all" || strings.HasPrefix(strings.ToLower(t), "redirect=") {
			at = i + 1
			break
		}
	}
	var add []string
	seen := map[netip.Addr]bool{}
	for _, a := range addrs {
		if seen[a] {
			continue
		}
		seen[a] = true
		if a.Is4() {
			add = append(add, "ip4:"+a.String())
		} else {
			add = append(add, "ip6:"+a.String())
		}
	}
	out := append([]string{}, terms[:at]...)
	out = append(out, add...)
	out = append(out, terms[at:]...)
	return strings.Join(out, " ")
}

// replaceTerm replaces the term old of an SPF record with repl.
func replaceTerm(text, old, repl string) string {
	terms := strings.Fields(text)
	for i, t := range terms {
		if t == old {
			terms[i] = repl
			break
		}
	}
	return strings.Join(terms, " ")
}
