package preflight

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/idna"

	"github.com/mxrelay/mxrelay/mx"
)

// maxPTRNames bounds the PTR names of one address that are resolved.
const maxPTRNames = 10

const (
	srcRDNS = "RFC 1912 §2.1; Google Email sender guidelines, 2024; Yahoo Sender Best Practices"
	srcEHLO = "RFC 5321 §2.3.5, §4.1.1.1, §4.1.4"
)

// checkReverseDNS checks every source: its PTR record, that the PTR name
// resolves back to it, and its EHLO name.
func (ck *checker) checkReverseDNS(ctx context.Context) {
	for _, s := range ck.sources {
		ck.rdnsSource(ctx, s)
	}
}

// rdnsSource checks one source.
func (ck *checker) rdnsSource(ctx context.Context, s source) {
	subject := s.addr.String()
	add := func(check string, sev Severity, found, fix string, rec *Record, src string) {
		ck.add(Finding{Check: check, Severity: sev, Subject: subject, Found: found, Fix: fix, Record: rec, Source: src})
	}
	rev := mx.ReverseName(s.addr)
	ehlo := ck.checkEHLO(s, add)

	names, err := ck.r.LookupPTR(ctx, s.addr)
	if err != nil {
		if !mx.IsPermanent(err) {
			add("rdns.unchecked", Warning, "could not check: "+dnsFailure(err), "check again; if it persists, ask the address's provider to fix its reverse zone", nil, srcRDNS)
			return
		}
		var rec *Record
		fix := "ask the owner of the address (the hosting provider or ISP) for a PTR record naming the host"
		if ehlo != "" {
			rec = &Record{Name: rev, Type: "PTR", Value: ehlo + "."}
			fix = "ask the owner of the address (the hosting provider or ISP) for a PTR record naming the EHLO name"
		}
		add("rdns.missing", Error, "no PTR record at "+rev+": many receivers refuse mail from addresses without reverse DNS", fix, rec, srcRDNS)
		return
	}
	var confirmed []string
	failed := false
	for _, n := range names[:min(len(names), maxPTRNames)] {
		ips, err := ck.r.LookupIP(ctx, n)
		if err != nil {
			failed = failed || !mx.IsPermanent(err)
			continue
		}
		if slices.Contains(ips, s.addr) {
			confirmed = append(confirmed, n)
		}
	}
	if len(confirmed) == 0 {
		if failed {
			add("rdns.unchecked", Warning, "could not check that "+strings.Join(names, ", ")+" resolves back to "+subject, "check again", nil, srcRDNS)
			return
		}
		typ := "A"
		if s.addr.Is6() {
			typ = "AAAA"
		}
		add("rdns.unconfirmed", Error, "the PTR record names "+strings.Join(names, ", ")+", which does not resolve back to "+subject+" (no forward-confirmed reverse DNS)",
			"publish an address record for the PTR name, or have the PTR record changed to a name that resolves to the address",
			&Record{Name: names[0], Type: typ, Value: subject}, srcRDNS)
		return
	}
	if ehlo != "" && !slices.Contains(confirmed, ehlo) {
		add("rdns.ehlo-mismatch", Warning, "EHLO name "+ehlo+", PTR name "+strings.Join(confirmed, ", "),
			"give "+confirmed[0]+" as the EHLO name from this address (Source.Hostname), or have the PTR record changed to "+ehlo+" (and "+ehlo+" resolve to the address)",
			&Record{Name: rev, Type: "PTR", Value: ehlo + "."}, srcEHLO)
		return
	}
	found := subject + " → " + confirmed[0] + " → " + subject
	if ehlo != "" {
		found += "; EHLO " + ehlo
	}
	add("rdns.ok", OK, found, "", nil, srcRDNS)
}

// checkEHLO checks the EHLO name of a source and returns it normalized
// when it is a host name that can be compared with the PTR names, "" when
// not.
func (ck *checker) checkEHLO(s source, add func(check string, sev Severity, found, fix string, rec *Record, src string)) string {
	name := strings.ToLower(strings.TrimSuffix(s.ehlo, "."))
	switch {
	case name == "":
		add("rdns.ehlo-missing", Info, "no EHLO name given (Source.Hostname, Config.Hostname), so it was not checked",
			"set the EHLO name to the address's PTR name", nil, srcEHLO)
		return ""
	case strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]"):
		add("rdns.ehlo-literal", Warning, "EHLO "+s.ehlo+" is an address literal: valid, but spam filters score it",
			"give a host name, the address's PTR name, as the EHLO name", nil, srcEHLO)
		return ""
	}
	if _, err := netip.ParseAddr(name); err == nil {
		add("rdns.ehlo-ip", Error, "EHLO "+s.ehlo+" is a bare address, which is not valid EHLO syntax (an address literal needs brackets)",
			"give a host name, the address's PTR name, as the EHLO name", nil, srcEHLO)
		return ""
	}
	a, ok := hostName(name)
	if !ok {
		add("rdns.ehlo-fqdn", Error, "EHLO "+strconv.Quote(s.ehlo)+" is not a fully qualified domain name: many receivers refuse it",
			"give a fully qualified host name, the address's PTR name, as the EHLO name", nil, srcEHLO)
		return ""
	}
	return a
}

// hostName returns the A-label form of s when it is a fully qualified host
// name: two labels or more, valid for IDNA lookup, the last one not all
// digits.
func hostName(s string) (string, bool) {
	a, err := idna.Lookup.ToASCII(s)
	if err != nil || !strings.Contains(a, ".") {
		return "", false
	}
	last := a[strings.LastIndexByte(a, '.')+1:]
	return a, strings.Trim(last, "0123456789") != ""
}
