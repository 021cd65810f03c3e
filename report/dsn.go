package report

import "strings"

// maxRecipients bounds Report.Recipients, ten times the 100 recipients a
// server must accept per message (RFC 5321 §4.5.3.1.8).
const maxRecipients = 1000

// RFC 3464 §2.1 and RFC 6533 §6: the machine-readable part of a DSN.
var statusTypes = [...]string{"message/delivery-status", "message/global-delivery-status"}

// dsn recognises a delivery status notification (RFC 3464, RFC 6522): a
// message/delivery-status or message/global-delivery-status part anywhere
// in the message (not inside a returned message), or a multipart/report
// with report-type delivery-status, whose status part may then also be a
// text/plain part that holds delivery-status fields.
func (p *parser) dsn() bool {
	st := p.t.first(statusTypes[:]...)
	declared := p.t.hasReport("delivery-status", "global-delivery-status")
	if st == nil && declared {
		st = p.t.fieldsPart(looksLikeDSN)
	}
	if st == nil && !declared {
		return false
	}
	r := p.rep
	if st != nil {
		p.statusFields(parseGroups(st.content(1 << 20)))
	}
	if len(r.Recipients) == 0 {
		// Exim names the failed addresses in X-Failed-Recipients; use them
		// when the report has no per-recipient group.
		for _, a := range addrList(strings.Join(r.Header.Values("X-Failed-Recipients"), ",")) {
			if len(r.Recipients) < maxRecipients {
				r.Recipients = append(r.Recipients, Recipient{FinalRecipient: a, Action: "failed"})
			}
		}
	}
	r.Original = p.original()
	return true
}

// fieldsPart returns the first text/plain part after the first leaf of a
// multipart/report whose content passes looks, for reports whose
// machine-readable part is mislabelled.
func (t *tree) fieldsPart(looks func(string) bool) *entity {
	for _, e := range t.leaves {
		if e.reportType == "" || e.mediaType != "text/plain" || e.index == 0 {
			continue
		}
		if looks(e.content(64 << 10)) {
			return e
		}
	}
	return nil
}

// looksLikeDSN reports whether s holds delivery-status fields: a line that
// starts with Final-Recipient or Original-Recipient and one with Action or
// Status.
func looksLikeDSN(s string) bool {
	return hasLineFold(s, "final-recipient:", "original-recipient:") &&
		hasLineFold(s, "action:", "status:")
}

// hasLineFold reports whether a line of s starts with one of the
// lower-case prefixes, without regard to case.
func hasLineFold(s string, prefixes ...string) bool {
	for i := 0; i < len(s); {
		line, next := nextLine(s, i)
		for _, p := range prefixes {
			if hasPrefixFold(line, p) {
				return true
			}
		}
		i = next
	}
	return false
}

// nameIs reports whether a field name is the lower-case name, without
// regard to case.
func nameIs(name, lower string) bool {
	return len(name) == len(lower) && hasPrefixFold(name, lower)
}

// statusFields reads the field groups of a delivery-status part (RFC 3464
// §2.2, §2.3). The first group holds the per-message fields, the others
// one recipient each; leniently, per-message fields are taken from any
// group, a group that repeats Final-Recipient or Original-Recipient holds
// more than one recipient (a missing blank line), and the first group is a
// recipient when it has recipient fields.
func (p *parser) statusFields(groups []Header) {
	r := p.rep
	var spare Recipient // where fields go past maxRecipients
	for _, g := range groups {
		var cur *Recipient
		start := func() {
			if len(r.Recipients) >= maxRecipients {
				spare, cur = Recipient{}, &spare
				return
			}
			r.Recipients = append(r.Recipients, Recipient{})
			cur = &r.Recipients[len(r.Recipients)-1]
		}
		for _, f := range g {
			n, v := f.Name, f.Value
			switch {
			case nameIs(n, "reporting-mta"):
				if r.ReportingMTA == "" {
					r.ReportingMTA = mtaName(v)
				}
			case nameIs(n, "original-envelope-id"):
				if r.OriginalEnvelopeID == "" {
					r.OriginalEnvelopeID = v
				}
			case nameIs(n, "received-from-mta"):
				if r.ReceivedFromMTA == "" {
					r.ReceivedFromMTA = mtaName(v)
				}
			case nameIs(n, "arrival-date"):
				if r.ArrivalDate.IsZero() {
					r.ArrivalDate = parseDate(v)
				}
			case nameIs(n, "final-recipient"):
				if cur == nil || cur.FinalRecipient != "" {
					start()
				}
				cur.FinalRecipient = recipientAddr(v)
			case nameIs(n, "original-recipient"):
				if cur == nil || cur.OriginalRecipient != "" {
					start()
				}
				cur.OriginalRecipient = recipientAddr(v)
			case nameIs(n, "action"):
				if cur == nil {
					start()
				}
				a := strings.ToLower(v)
				if i := strings.IndexAny(a, " \t(;"); i >= 0 {
					a = a[:i] // "failed (bad mailbox)"
				}
				cur.Action = a
			case nameIs(n, "status"):
				if cur == nil {
					start()
				}
				cur.Status = findStatus(v)
			case nameIs(n, "diagnostic-code"):
				if cur == nil {
					start()
				}
				cur.DiagnosticType, cur.DiagnosticCode = typed(v)
			case nameIs(n, "remote-mta"):
				if cur == nil {
					start()
				}
				cur.RemoteMTA = mtaName(v)
			case nameIs(n, "last-attempt-date"):
				if cur == nil {
					start()
				}
				cur.LastAttemptDate = parseDate(v)
			case nameIs(n, "will-retry-until"):
				if cur == nil {
					start()
				}
				cur.WillRetryUntil = parseDate(v)
			}
		}
	}
	kept := r.Recipients[:0]
	for _, x := range r.Recipients {
		if x.FinalRecipient == "" {
			x.FinalRecipient = x.OriginalRecipient
		}
		if x.FinalRecipient == "" && x.Action == "" && x.Status == "" {
			continue // a group of nothing we know
		}
		finishRecipient(&x)
		kept = append(kept, x)
	}
	r.Recipients = kept
}

// finishRecipient fills what a recipient's other fields imply: Status
// from the diagnostic when the group has none, Action from Status when it
// has none, Code from an SMTP diagnostic.
func finishRecipient(x *Recipient) {
	x.DiagnosticCode = joinReply(x.DiagnosticCode)
	if x.Status == "" {
		x.Status = findStatus(x.DiagnosticCode)
	}
	if x.Action == "" {
		switch {
		case strings.HasPrefix(x.Status, "5."):
			x.Action = "failed"
		case strings.HasPrefix(x.Status, "4."):
			x.Action = "delayed"
		case strings.HasPrefix(x.Status, "2."):
			x.Action = "delivered"
		}
	}
	if x.Code == 0 && (x.DiagnosticType == "smtp" || x.DiagnosticType == "") {
		x.Code = findCode(x.DiagnosticCode)
	}
}

// joinReply turns a multi-line SMTP reply that was unfolded onto one line
// ("550-5.1.1 The email account ... 550-5.1.1 double-checking ... 550 5.1.1
// https://...", as Gmail's DSNs carry it) into one reply: "550 5.1.1 The
// email account ... double-checking ... https://...". Other text is
// returned as it is.
func joinReply(s string) string {
	if len(s) < 5 || s[3] != '-' || findCode(s[:4]) == 0 {
		return s
	}
	f := strings.Fields(s)
	code, enh := f[0][:3], f[0][4:]
	out := make([]string, 0, len(f))
	out = append(out, code)
	if enh != "" {
		if findStatus(enh) == "" {
			out = append(out, enh) // "550-Mailbox ..."
			enh = ""
		} else {
			out = append(out, enh)
		}
	}
	for i := 1; i < len(f); i++ {
		t := f[i]
		switch {
		case t == code+"-"+enh, t == code+"-":
			continue // a continuation line's prefix
		case t == code && enh != "" && i+1 < len(f) && f[i+1] == enh:
			i++ // the last line's "550 5.1.1"
			continue
		case t == code && enh == "":
			continue
		case enh == "" && len(t) > 4 && strings.HasPrefix(t, code+"-"):
			t = t[4:] // "550-try": a prefix glued to the word
		}
		out = append(out, t)
	}
	return strings.Join(out, " ")
}
