package preflight

import (
	"context"
	"errors"
	"strings"

	"github.com/mxrelay/mxrelay/mx"
)

// checkReturnPath checks that replies to the From domain and bounces to
// the envelope domain can be delivered: each has MX records or an address
// (the implicit MX of RFC 5321 §5.1), and no null MX (RFC 7505).
func (ck *checker) checkReturnPath(ctx context.Context) {
	ck.mxDomain(ctx, ck.domain)
	if ck.envelope != ck.domain {
		ck.mxDomain(ctx, ck.envelope)
	}
}

// mxDomain checks the MX of one domain.
func (ck *checker) mxDomain(ctx context.Context, domain string) {
	isEnvelope := domain == ck.envelope
	what := "replies to the From address"
	switch {
	case isEnvelope && domain == ck.domain:
		what = "replies and bounces"
	case isEnvelope:
		what = "bounces to the envelope (return-path) domain"
	}
	add := func(check string, sev Severity, found, fix, src string) {
		ck.add(Finding{Check: check, Severity: sev, Subject: domain, Found: found, Fix: fix, Source: src})
	}
	mxs, err := ck.r.LookupMX(ctx, domain)
	switch {
	case err == nil:
		hosts := make([]string, 0, len(mxs))
		for _, m := range mxs {
			hosts = append(hosts, m.Host)
		}
		found := "MX " + strings.Join(hosts, ", ")
		if len(mxs) == 1 && mxs[0].Host == domain && mxs[0].Pref == 0 {
			found = "mail goes to " + domain + " itself (MX 0 or its own address)"
		}
		add("mx.ok", OK, found+": "+what+" can be delivered", "", "RFC 5321 §5.1")
	case errors.Is(err, mx.ErrNullMX):
		if isEnvelope {
			add("mx.null", Error, "null MX (MX 0 .): "+what+" bounce, and receivers refuse mail whose return path is in a domain that accepts none",
				"publish MX records for a host that accepts "+what+", or use another BounceDomain", "RFC 7505 §3, §4.2")
		} else {
			add("mx.null", Warning, "null MX (MX 0 .): "+what+" bounce",
				"publish MX records for a host that accepts mail if people may reply, or set Reply-To to an address that does", "RFC 7505 §3")
		}
	case errors.Is(err, mx.ErrNoUsableMX):
		add("mx.unusable", Error, "the MX records name no usable host (IP literals or bad names): "+what+" cannot be delivered",
			"point the MX records at host names with address records", "RFC 5321 §5.1; RFC 7505 §3")
	case mx.IsPermanent(err):
		how := "no MX and no A or AAAA records"
		if errors.Is(err, mx.ErrNoDomain) {
			how = "the domain does not exist"
		}
		add("mx.missing", Error, how+": "+what+" cannot be delivered, and receivers refuse senders in domains that do not resolve",
			"publish MX records for a host that accepts mail for the domain", "RFC 5321 §5.1, §6.1")
	default:
		add("mx.unchecked", Warning, "could not check: "+dnsFailure(err), "check again; if it persists, fix the domain's name servers", "RFC 5321 §5.1")
	}
}
