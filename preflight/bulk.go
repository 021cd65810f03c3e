package preflight

import "strings"

// The published rules for bulk senders, in force since February 2024.
const (
	srcGoogle = "Google Email sender guidelines, 2024"
	srcYahoo  = "Yahoo Sender Best Practices"
	srcBulk   = srcGoogle + "; " + srcYahoo
)

// checkBulk applies the Gmail and Yahoo bulk-sender requirements to list
// mail, from the outcomes of the checks before it.
func (ck *checker) checkBulk() {
	if !ck.cfg.ListMail {
		return
	}
	n := len(ck.findings)
	add := func(check string, found, fix string, rec *Record, src string) {
		ck.add(Finding{Check: check, Severity: Error, Subject: ck.domain, Found: found, Fix: fix, Record: rec, Source: src})
	}
	if ck.cfg.TLS == TLSNone {
		add("bulk.tls", "the TLS policy is none: list mail travels in plaintext",
			"send with TLS: opportunistic STARTTLS at least", nil, srcGoogle)
	}
	if !ck.cfg.ListUnsubscribe {
		add("bulk.unsubscribe", "list mail has no one-click unsubscribe",
			"set List-Unsubscribe to an https URL with List-Unsubscribe-Post (relay.Client.PublicURL and Handler)", nil, "RFC 8058; "+srcBulk)
	}
	if !ck.dmarc.valid && !ck.dmarc.unchecked {
		add("bulk.dmarc", "no usable DMARC record applies to "+ck.domain,
			"publish a DMARC record (p=none at least)", ck.dmarc.missing, srcBulk)
	}

	spfSt := ck.spf[ck.envelope]
	spfPass := spfSt != nil && spfSt.pass
	spfUnknown := spfSt == nil || spfSt.unchecked
	dkimPass, dkimUnknown := false, false
	for _, d := range ck.dkim {
		dkimPass = dkimPass || d.pass
		dkimUnknown = dkimUnknown || d.unchecked
	}
	var missing []string
	if !spfPass && !spfUnknown {
		missing = append(missing, "SPF does not pass for the envelope domain "+ck.envelope)
	}
	if !dkimPass && !dkimUnknown {
		missing = append(missing, "no DKIM signature verifies")
	}
	if len(missing) > 0 {
		add("bulk.authentication", strings.Join(missing, "; ")+": list mail needs both SPF and DKIM to pass",
			"fix the spf and dkim findings", nil, srcBulk)
	}
	if !ck.dmarc.aligned && ck.dmarc.alignKnown {
		add("bulk.alignment", "neither the DKIM d= nor the envelope domain is aligned with the From domain "+ck.domain,
			"sign with a key whose d= is "+ck.domain+", or send from an envelope domain under "+orgDomain(ck.domain)+" whose SPF record lists every source", nil, srcBulk)
	}
	if len(ck.findings) == n && !spfUnknown && !dkimUnknown && !ck.dmarc.unchecked && ck.dmarc.alignKnown {
		ck.add(Finding{Check: "bulk.ok", Severity: OK, Subject: ck.domain,
			Found:  "TLS " + ck.cfg.TLS.String() + ", one-click unsubscribe, DMARC, SPF and DKIM passing, aligned",
			Source: srcBulk})
	}
}
