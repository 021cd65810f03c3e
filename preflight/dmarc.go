package preflight

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/mxrelay/mxrelay/mx"
)

// dmarcState is what the DMARC checks leave for the bulk-sender rules.
type dmarcState struct {
	valid     bool // a usable record applies to the From domain
	unchecked bool // the DNS could not be read
	aligned   bool // an identifier that passes is aligned
	// alignKnown is false when an SPF or DKIM check could not be made
	// and nothing aligned: the answer is unknown.
	alignKnown bool
	missing    *Record // the record to publish when there is none, nil otherwise
}

// dmarcRecord is a parsed DMARC record (RFC 7489 §6.3).
type dmarcRecord struct {
	text        string
	policy      string // p=
	subPolicy   string // sp=, "" when absent
	adkim, aspf byte   // 'r' or 's'
	pct         int
	rua         []string // aggregate report URIs, "!size" removed
}

// isDMARC reports whether a TXT record at _dmarc is a DMARC record: it
// starts with the tag v=DMARC1 (RFC 7489 §6.6.3 discards the others; the
// tag name is case-insensitive, "DMARC1" is not).
func isDMARC(txt string) bool {
	s := strings.TrimLeft(txt, " \t")
	if !strings.HasPrefix(s, "v") && !strings.HasPrefix(s, "V") {
		return false
	}
	s = strings.TrimLeft(s[1:], " \t")
	if !strings.HasPrefix(s, "=") {
		return false
	}
	s = strings.TrimLeft(s[1:], " \t")
	if !strings.HasPrefix(s, "DMARC1") {
		return false
	}
	s = strings.TrimLeft(s[len("DMARC1"):], " \t")
	return s == "" || s[0] == ';'
}

// parseDMARC parses a DMARC record (RFC 7489 §6.3, §6.4).
func parseDMARC(txt string) (*dmarcRecord, error) {
	tl, err := parseTagList(txt)
	if err != nil {
		return nil, err
	}
	if len(tl.order) == 0 || tl.order[0] != "v" || tl.tags["v"] != "DMARC1" {
		return nil, errors.New("v=DMARC1 must be the first tag")
	}
	rec := &dmarcRecord{text: txt, adkim: 'r', aspf: 'r', pct: 100}
	p, ok := tl.get("p")
	if !ok {
		return nil, errors.New("no p= tag (none, quarantine or reject)")
	}
	if rec.policy, err = dmarcPolicy("p", p); err != nil {
		return nil, err
	}
	if sp, ok := tl.get("sp"); ok {
		if rec.subPolicy, err = dmarcPolicy("sp", sp); err != nil {
			return nil, err
		}
	}
	for _, tag := range []string{"adkim", "aspf"} {
		v, ok := tl.get(tag)
		if !ok {
			continue
		}
		v = strings.ToLower(v)
		if v != "r" && v != "s" {
			return nil, fmt.Errorf("%s=%s: want r or s", tag, v)
		}
		if tag == "adkim" {
			rec.adkim = v[0]
		} else {
			rec.aspf = v[0]
		}
	}
	if v, ok := tl.get("pct"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			return nil, fmt.Errorf("pct=%s: want 0 to 100", v)
		}
		rec.pct = n
	}
	if v, ok := tl.get("rua"); ok {
		for u := range strings.SplitSeq(v, ",") {
			u = strings.TrimSpace(u)
			if i := strings.LastIndexByte(u, '!'); i >= 0 {
				u = u[:i]
			}
			scheme, rest, ok := strings.Cut(u, ":")
			if !ok || scheme == "" || rest == "" {
				return nil, fmt.Errorf("rua: %q is not a URI", u)
			}
			if strings.EqualFold(scheme, "mailto") && !strings.Contains(rest, "@") {
				return nil, fmt.Errorf("rua: %q has no address", u)
			}
			rec.rua = append(rec.rua, u)
		}
	}
	return rec, nil
}

func dmarcPolicy(tag, v string) (string, error) {
	switch l := strings.ToLower(v); l {
	case "none", "quarantine", "reject":
		return l, nil
	}
	return "", fmt.Errorf("%s=%s: want none, quarantine or reject", tag, v)
}

// orgDomain returns the organizational domain of d (RFC 7489 §3.2): the
// public suffix plus one label, or d itself when it is a public suffix.
func orgDomain(d string) string {
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}

// aligned reports whether an authenticated domain is aligned with the
// From domain: the same organizational domain in relaxed mode ('r'), the
// same name in strict mode ('s') (RFC 7489 §3.1).
func aligned(id, from string, mode byte) bool {
	if mode == 's' {
		return id == from
	}
	return orgDomain(id) == orgDomain(from)
}

// dmarcRecords returns the DMARC records at name: none when the name has
// no TXT records; err only for a failed lookup.
func (ck *checker) dmarcRecords(ctx context.Context, name string) ([]string, error) {
	txts, err := ck.r.LookupTXT(ctx, name)
	if err != nil {
		if mx.IsPermanent(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, t := range txts {
		if isDMARC(t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// checkDMARC finds the DMARC record that applies to the From domain
// (RFC 7489 §6.6.3) and checks it and the alignment of SPF and DKIM.
func (ck *checker) checkDMARC(ctx context.Context) {
	st := &ck.dmarc
	name := "_dmarc." + ck.domain
	org := orgDomain(ck.domain)
	missingSev, missingWhy := Warning, "receivers apply no DMARC policy, and some treat unauthenticated mail from the domain with suspicion"
	if ck.cfg.ListMail {
		missingSev, missingWhy = Error, "the bulk-sender rules require a DMARC record"
	}
	add := func(check string, sev Severity, subject, found, fix string, rec *Record, src string) {
		ck.add(Finding{Check: check, Severity: sev, Subject: subject, Found: found, Fix: fix, Record: rec, Source: src})
	}
	unchecked := func(subject string, err error) {
		st.unchecked = true
		add("dmarc.unchecked", Warning, subject, "could not check: "+dnsFailure(err), "check again; if it persists, fix the domain's name servers", nil, "RFC 7489 §6.6.3")
	}

	at, atDomain := name, ck.domain
	recs, err := ck.dmarcRecords(ctx, name)
	if err != nil {
		unchecked(name, err)
		return
	}
	fallback := false
	if len(recs) == 0 && org != ck.domain {
		at, atDomain, fallback = "_dmarc."+org, org, true
		if recs, err = ck.dmarcRecords(ctx, at); err != nil {
			unchecked(at, err)
			return
		}
	}
	var rec *dmarcRecord
	switch len(recs) {
	case 0:
		st.missing = &Record{Name: name, Type: "TXT", Value: "v=DMARC1; p=none; rua=mailto:dmarc@" + ck.domain}
		where := name
		if fallback {
			where += " nor at " + at
		}
		add("dmarc.missing", missingSev, name, "no v=DMARC1 record at "+where+": "+missingWhy,
			"publish a DMARC record; p=none is the minimum the bulk-sender rules accept", st.missing, "RFC 7489 §6.6.3; Google Email sender guidelines, 2024")
	case 1:
		rec, err = parseDMARC(recs[0])
		if err != nil {
			add("dmarc.syntax", Error, at, fmt.Sprintf("%q: %v: receivers may ignore it", clip(recs[0]), err),
				`correct the record; the smallest valid one is "v=DMARC1; p=none"`, nil, "RFC 7489 §6.3, §6.6.3")
			rec = nil
		}
	default:
		add("dmarc.multiple", Error, at, fmt.Sprintf("%d v=DMARC1 records: receivers apply none of them", len(recs)),
			"keep one record", nil, "RFC 7489 §6.6.3")
	}
	adkim, aspf := byte('r'), byte('r')
	if rec != nil {
		st.valid = true
		adkim, aspf = rec.adkim, rec.aspf
		ck.dmarcPolicy(ctx, rec, at, atDomain, fallback)
	}
	ck.dmarcAlignment(rec, at, adkim, aspf)
}

// dmarcPolicy reports on the policy of a valid record found at at.
func (ck *checker) dmarcPolicy(ctx context.Context, rec *dmarcRecord, at, atDomain string, fallback bool) {
	policy, which := rec.policy, "p"
	if fallback {
		if rec.subPolicy != "" {
			policy, which = rec.subPolicy, "sp"
		}
		ck.add(Finding{Check: "dmarc.org-fallback", Severity: Info, Subject: "_dmarc." + ck.domain,
			Found:  "no record at _dmarc." + ck.domain + "; the organizational domain's record at " + at + " applies (" + which + "=" + policy + ")",
			Source: "RFC 7489 §6.6.3"})
	}
	if policy == "none" {
		ck.add(Finding{Check: "dmarc.policy-none", Severity: Info, Subject: at,
			Found:  which + "=none: receivers report but do not act on failures (the minimum the bulk-sender rules accept)",
			Fix:    "once the aggregate reports show all mail passing, move to p=quarantine, then p=reject",
			Source: "RFC 7489 §6.3; Google Email sender guidelines, 2024"})
	}
	if rec.pct < 100 {
		ck.add(Finding{Check: "dmarc.pct", Severity: Info, Subject: at,
			Found:  fmt.Sprintf("pct=%d: the policy applies to %d%% of failing mail", rec.pct, rec.pct),
			Fix:    "raise pct to 100 (or drop it) once reports show all mail passing",
			Source: "RFC 7489 §6.3"})
	}
	if len(rec.rua) == 0 {
		ck.add(Finding{Check: "dmarc.no-rua", Severity: Info, Subject: at,
			Found:  "no rua= tag: no aggregate reports come back, so failures go unseen",
			Fix:    "add an address for aggregate reports",
			Record: &Record{Name: at, Type: "TXT", Value: strings.TrimRight(rec.text, "; ") + "; rua=mailto:dmarc@" + atDomain},
			Source: "RFC 7489 §7.2"})
	}
	for _, u := range rec.rua {
		scheme, addr, _ := strings.Cut(u, ":")
		if !strings.EqualFold(scheme, "mailto") {
			continue
		}
		dest := strings.ToLower(addr[strings.LastIndexByte(addr, '@')+1:])
		if i := strings.IndexByte(dest, '?'); i >= 0 {
			dest = dest[:i]
		}
		if dest == "" || orgDomain(dest) == orgDomain(atDomain) {
			continue
		}
		// RFC 7489 §7.1: a report address in another organization must
		// agree to receive them.
		name := atDomain + "._report._dmarc." + dest
		recs, err := ck.dmarcRecords(ctx, name)
		if err != nil || len(recs) > 0 {
			continue
		}
		ck.add(Finding{Check: "dmarc.rua-unauthorized", Severity: Warning, Subject: at,
			Found:  "rua " + u + " is in another organization, and " + name + " does not authorise it: receivers send it no reports",
			Fix:    "have " + dest + " publish the authorisation record, or send reports to an address under " + atDomain,
			Record: &Record{Name: name, Type: "TXT", Value: "v=DMARC1"},
			Source: "RFC 7489 §7.1"})
	}
}

// dmarcAlignment checks that SPF or DKIM gives an aligned identifier
// (RFC 7489 §3.1, §4.2). Without a record the defaults (relaxed) apply,
// for the bulk-sender rules.
func (ck *checker) dmarcAlignment(rec *dmarcRecord, at string, adkim, aspf byte) {
	st := &ck.dmarc
	mode := func(m byte) string {
		if m == 's' {
			return "strict"
		}
		return "relaxed"
	}
	var dkimNotes []string
	dkimAligned, dkimUnknown, unknown := false, false, false
	for _, d := range ck.dkim {
		id := "d=" + d.domain + " s=" + d.selector
		switch {
		case !aligned(d.domain, ck.domain, adkim):
			dkimNotes = append(dkimNotes, id+" is not aligned")
		case d.pass:
			dkimAligned = true
			dkimNotes = append(dkimNotes, id+" is aligned")
		case d.unchecked:
			unknown, dkimUnknown = true, true
			dkimNotes = append(dkimNotes, id+" is aligned but could not be checked")
		default:
			dkimNotes = append(dkimNotes, id+" is aligned but does not verify")
		}
	}
	if len(ck.keys) == 0 {
		dkimNotes = append(dkimNotes, "mail is unsigned")
	}
	spfSt := ck.spf[ck.envelope]
	spfNote := "SPF: envelope domain " + ck.envelope
	spfAligned, spfUnknown := false, false
	switch {
	case !aligned(ck.envelope, ck.domain, aspf):
		spfNote += " is not aligned"
	case spfSt != nil && spfSt.pass:
		spfAligned = true
		spfNote += " is aligned"
	case spfSt != nil && spfSt.unchecked:
		unknown, spfUnknown = true, true
		spfNote += " is aligned but could not be checked"
	default:
		spfNote += " is aligned but does not pass for every source"
	}
	found := fmt.Sprintf("DKIM (%s): %s; %s (%s)", mode(adkim), strings.Join(dkimNotes, ", "), spfNote, mode(aspf))
	st.aligned = dkimAligned || spfAligned
	st.alignKnown = st.aligned || !unknown
	if rec == nil {
		return
	}
	src := "RFC 7489 §3.1, §4.2"
	switch {
	case !st.aligned && unknown:
		// A check could not be made; its finding says so.
	case !st.aligned:
		ck.add(Finding{Check: "dmarc.unaligned", Severity: Error, Subject: at, Found: found + ": DMARC fails",
			Fix:    "sign with a key whose d= is " + ck.domain + ck.alignHint(adkim) + ", or send from an envelope domain under " + orgDomain(ck.domain) + " whose SPF record lists every source",
			Source: src})
	case !dkimAligned && len(ck.keys) > 0 && !dkimUnknown:
		ck.add(Finding{Check: "dmarc.dkim-unaligned", Severity: Warning, Subject: at, Found: found + ": only SPF aligns, and forwarded mail fails DMARC",
			Fix:    "sign with a key whose d= is " + ck.domain + ck.alignHint(adkim),
			Source: src + "; Google Email sender guidelines, 2024"})
	case !spfAligned && !spfUnknown:
		ck.add(Finding{Check: "dmarc.spf-unaligned", Severity: Info, Subject: at, Found: found + ": only DKIM aligns",
			Source: src})
	}
	if st.aligned {
		ck.add(Finding{Check: "dmarc.ok", Severity: OK, Subject: at, Found: fmt.Sprintf("%q; %s", rec.text, found), Source: "RFC 7489"})
	}
}

// alignHint says which d= values relaxed alignment also accepts.
func (ck *checker) alignHint(mode byte) string {
	if mode == 's' {
		return " exactly (adkim=s)"
	}
	return " or another name under " + orgDomain(ck.domain)
}
