package report

import (
	"strconv"
	"strings"
)

// feedback recognises an RFC 5965 feedback report: a
// message/feedback-report part anywhere in the message, or a
// multipart/report with report-type feedback-report, whose fields may then
// also be in a text/plain part. Media types, parameter values and field
// names are compared without regard to case, so the odd casings some
// providers write pass. Failing that, it recognises Microsoft's older JMRP
// complaints (see jmrp).
func (p *parser) feedback() bool {
	fr := p.t.first("message/feedback-report")
	declared := p.t.hasReport("feedback-report")
	if fr == nil && declared {
		fr = p.t.fieldsPart(func(s string) bool { return hasLineFold(s, "feedback-type:") })
	}
	if fr == nil && !declared {
		return p.jmrp()
	}
	f := &FeedbackReport{}
	if fr != nil {
		p.feedbackFields(f, parseGroups(fr.content(1<<20)))
	}
	p.rep.Feedback = f
	p.rep.Original = p.original()
	return true
}

// feedbackFields reads the fields of RFC 5965 §3.1 and §3.2 from every
// group of the part (there should be one).
func (p *parser) feedbackFields(f *FeedbackReport, groups []Header) {
	r := p.rep
	for _, g := range groups {
		for _, fl := range g {
			n, v := fl.Name, fl.Value
			switch {
			case nameIs(n, "feedback-type"):
				if f.FeedbackType == "" {
					f.FeedbackType = firstWord(strings.ToLower(v))
				}
			case nameIs(n, "user-agent"):
				f.UserAgent = v
			case nameIs(n, "version"):
				f.Version = v
			case nameIs(n, "original-mail-from"):
				f.OriginalMailFrom = addrSpec(v)
			case nameIs(n, "original-rcpt-to"):
				if a := addrSpec(v); a != "" {
					f.OriginalRcptTo = append(f.OriginalRcptTo, a)
				}
			case nameIs(n, "arrival-date"):
				f.ArrivalDate = parseDate(v)
			case nameIs(n, "received-date"): // the ARF drafts' name, still sent
				if f.ArrivalDate.IsZero() {
					f.ArrivalDate = parseDate(v)
				}
			case nameIs(n, "source-ip"):
				f.SourceIP = strings.Trim(firstWord(v), "[]")
			case nameIs(n, "reported-domain"):
				if d := strings.ToLower(strings.TrimSuffix(v, ".")); d != "" {
					f.ReportedDomain = append(f.ReportedDomain, d)
				}
			case nameIs(n, "reported-uri"):
				if u := strings.Trim(v, "<> "); u != "" {
					f.ReportedURI = append(f.ReportedURI, u)
				}
			case nameIs(n, "authentication-results"):
				f.AuthenticationResults = v
			case nameIs(n, "incidents"):
				f.Incidents, _ = strconv.Atoi(firstWord(v))
			case nameIs(n, "reporting-mta"):
				r.ReportingMTA = mtaName(v)
			case nameIs(n, "original-envelope-id"):
				r.OriginalEnvelopeID = v
			}
		}
	}
}

func firstWord(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \t;("); i >= 0 {
		return s[:i]
	}
	return s
}

// jmrp recognises the complaints of Microsoft's Junk Mail Reporting
// Program in their older, non-ARF shape: the complained-about message
// attached as message/rfc822 (or forwarded whole) with an
// X-HmXmrOriginalRecipient field that names the complaining recipient.
// The report says abuse; OriginalRcptTo is that recipient.
func (p *parser) jmrp() bool {
	var h Header
	if _, ok := p.rep.Header.lookup("X-HmXmrOriginalRecipient"); ok {
		h = p.rep.Header
	} else {
		for _, e := range p.t.leaves {
			if e.mediaType != "message/rfc822" {
				continue
			}
			if oh := headerOf(e.body); oh != nil {
				if _, ok := oh.lookup("X-HmXmrOriginalRecipient"); ok {
					h = oh
					break
				}
			}
		}
	}
	if h == nil {
		return false
	}
	p.rep.Feedback = &FeedbackReport{
		FeedbackType:   "abuse",
		OriginalRcptTo: addrList(h.Get("X-HmXmrOriginalRecipient")),
	}
	p.rep.Original = newOriginal(h)
	return true
}
