package report

import "strings"

// Phrases that mark a non-standard bounce, in lower case. Each is written
// by an MTA's bounce template:
//   - qmail-send (QSBMF, cr.yp.to/proto/qsbmf.txt): the body begins with
//     "Hi. This is the", checked apart;
//   - Exim (the "bounce_message_file" default text);
//   - Postfix (bounce(5) templates; "This is the Postfix program" before
//     version 2.3);
//   - Sendmail (the "----- The following addresses had ..." lines);
//   - Microsoft Exchange and Outlook (2003, 2007 and later texts);
//   - Lotus Notes / Domino;
//   - Gmail's text bounces before it sent DSNs.
var bouncePhrases = [...]string{
	"this message was created automatically by mail delivery software",
	"could not be delivered to one or more of its recipients",
	"this is the mail system at host",
	"this is the postfix program at host",
	"the following addresses had permanent fatal errors",
	"the following addresses had transient non-fatal errors",
	"the following addresses had delivery problems",
	"----- transcript of session follows -----",
	"delivery to the following recipients failed",
	"delivery to the following recipient failed",
	"delivery to the following recipients has been delayed",
	"delivery to the following recipient has been delayed",
	"delivery has failed to these recipients or groups",
	"your message did not reach some or all of the intended recipients",
	"the following recipient(s) cannot be reached",
	"your message couldn't be delivered",
	"your message could not be delivered",
	"was not delivered to:",
	"message could not be delivered to",
	"unable to deliver your message",
	"permanent delivery failure",
}

// Phrases that make a bounce only a warning: the MTA is still trying.
var warningPhrases = [...]string{
	"this is a warning only",
	"has not yet been delivered",
	"delivery attempts will continue",
	"has been delayed",
	"still being retried",
	"will be retried",
	"will continue to try",
	"transient non-fatal errors",
	"i'll keep trying",
}

// Phrases that say the failure is final, which overrule a warning phrase.
var permanentPhrases = [...]string{
	"this is a permanent error",
	"failed permanently",
	"permanent fatal errors",
	"i've given up",
}

// Lines that introduce the quoted copy of the returned message (or its
// header) after a bounce text.
var originalPhrases = [...]string{
	"this is a copy of the message",            // Exim
	"copy of the message's headers",            // Exim, headers only
	"below this line is a copy of the message", // qmail
	"enclosed are the original headers",        // qmail
	"original message follows",                 // Sendmail
	"message header follows",                   // Sendmail
	"original message headers",                 // Exchange
	"headers of the original message",
	"-----original message-----",
	"----- original message -----",
	"------ original message ------",
}

// isDaemon reports whether an address is a mail system's own: the local
// part names MAILER-DAEMON, postmaster or Exchange's system mailbox.
func isDaemon(addr string) bool {
	lp := addr
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		lp = addr[:i]
	}
	lp = strings.ToLower(lp)
	switch lp {
	case "postmaster", "mail-daemon", "maildaemon", "mail.daemon", "mdaemon":
		return true
	}
	return strings.Contains(lp, "mailer-daemon") || strings.Contains(lp, "mailer_daemon") ||
		strings.Contains(lp, "mailerdaemon") || strings.HasPrefix(lp, "microsoftexchange")
}

// textBounce recognises a non-standard bounce: from the null sender or a
// mailer-daemon, with a body of a known shape or an X-Failed-Recipients
// field. The recipients come from the text; the quoted original from a
// message part or from the header block after the bounce text.
func (p *parser) textBounce() bool {
	r := p.rep
	if !r.NullSender && !isDaemon(r.From) {
		return false
	}
	full := ""
	if e := p.t.textPart(); e != nil {
		full = bodyText(e, 256<<10)
	}
	text, quoted, hasQuote := splitQuoted(full)
	failed := addrList(strings.Join(r.Header.Values("X-Failed-Recipients"), ","))
	qmail := strings.HasPrefix(strings.TrimSpace(text), "Hi. This is the")
	if !qmail && len(failed) == 0 && !containsAny(text, bouncePhrases[:]) {
		return false
	}
	action := "failed"
	if isWarning(text, r.Subject) {
		action = "delayed"
	}
	for _, x := range bounceRecipients(text) {
		if len(r.Recipients) >= maxRecipients {
			break
		}
		x.Action = action
		finishRecipient(&x)
		r.Recipients = append(r.Recipients, x)
	}
	for _, a := range failed {
		if len(r.Recipients) < maxRecipients && !hasRecipient(r.Recipients, a) {
			r.Recipients = append(r.Recipients, Recipient{FinalRecipient: a, Action: action})
		}
	}
	r.Original = p.original()
	if r.Original == nil && hasQuote {
		if h := headerOf(quoted); looksLikeHeader(h) {
			r.Original = newOriginal(h)
		}
	}
	r.Text = finishText(full, MaxText)
	return true
}

func containsAny(s string, phrases []string) bool {
	for _, ph := range phrases {
		if containsFold(s, ph) {
			return true
		}
	}
	return false
}

func hasRecipient(rs []Recipient, addr string) bool {
	for _, x := range rs {
		if strings.EqualFold(x.FinalRecipient, addr) {
			return true
		}
	}
	return false
}

// isWarning reports whether a bounce says delivery is only delayed.
func isWarning(text, subject string) bool {
	if containsAny(text, permanentPhrases[:]) {
		return false
	}
	if hasPrefixFold(subject, "warning:") || containsFold(subject, "delayed") || containsFold(subject, "(delay)") {
		return true
	}
	return containsAny(text, warningPhrases[:])
}

// splitQuoted cuts a bounce text at the line that introduces the copy of
// the returned message: the bounce's own text, and what follows that line.
func splitQuoted(s string) (text, quoted string, ok bool) {
	for i := 0; i < len(s); {
		line, next := nextLine(s, i)
		if len(line) < 200 && containsAny(line, originalPhrases[:]) {
			if containsFold(line, "without the headers") {
				return s[:i], "", false
			}
			return s[:i], s[next:], true
		}
		i = next
	}
	return s, "", false
}

// looksLikeHeader reports whether a block read from quoted text is a
// message header rather than prose that happens to have a colon.
func looksLikeHeader(h Header) bool {
	for _, f := range h {
		switch strings.ToLower(f.Name) {
		case "received", "return-path", "from", "to", "subject", "message-id", "date", "mime-version", "delivered-to":
			return true
		}
	}
	return false
}

// bounceRecipients reads the recipients a bounce text names and the text
// that explains each. Two layouts are understood: paragraphs that start
// with "<address>:" (QSBMF, and Postfix's text), and addresses listed after
// a line such as "The following address(es) failed:" with their
// explanation on the lines below, indented deeper (Exim) or not
// (Exchange, Sendmail, Lotus Notes).
func bounceRecipients(text string) []Recipient {
	lines := strings.Split(text, "\n")
	if len(lines) > 2000 {
		lines = lines[:2000]
	}
	if rs := paragraphRecipients(lines); len(rs) > 0 {
		return rs
	}
	return listRecipients(lines)
}

// paragraphRecipients reads QSBMF recipient paragraphs (QSBMF §2): a
// paragraph whose first line is "<address>:" followed by its explanation.
func paragraphRecipients(lines []string) []Recipient {
	var (
		rs        []Recipient
		diag      []string
		cur       = -1
		paraStart = true
	)
	end := func() {
		if cur >= 0 {
			rs[cur].DiagnosticCode = oneLine(strings.Join(diag, " "))
		}
		cur, diag = -1, diag[:0]
	}
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" {
			end()
			paraStart = true
			continue
		}
		first := paraStart
		paraStart = false
		if first && strings.HasPrefix(t, "<") {
			if j := strings.Index(t, ">:"); j > 1 && isAddrLike(t[1:j]) {
				rs = append(rs, Recipient{FinalRecipient: normAddr(t[1:j])})
				cur = len(rs) - 1
				if rest := strings.TrimSpace(t[j+2:]); rest != "" {
					diag = append(diag, rest)
				}
				continue
			}
		}
		if cur >= 0 {
			diag = append(diag, t)
		}
	}
	end()
	return rs
}

// listRecipients reads addresses listed after an introducing line.
func listRecipients(lines []string) []Recipient {
	var (
		rs        []Recipient
		diags     [][]string
		reason    []string // Lotus Notes: the lines after "because:"
		cur       = -1
		curIndent int
		listing   bool
		because   bool
		diagOpen  bool
	)
	for _, l := range lines {
		t := strings.TrimSpace(l)
		indent := len(l) - len(strings.TrimLeft(l, " \t"))
		if t == "" {
			diagOpen = false
			continue
		}
		if !listing {
			listing = isListIntro(t)
			continue
		}
		if strings.EqualFold(t, "because:") {
			because, diagOpen, cur = true, false, -1
			continue
		}
		if cur >= 0 && diagOpen && indent > curIndent {
			diags[cur] = append(diags[cur], t)
			continue
		}
		if a, rest, ok := recipientLine(t); ok {
			i := indexRecipient(rs, a)
			if i < 0 {
				rs = append(rs, Recipient{FinalRecipient: a})
				diags = append(diags, nil)
				i = len(rs) - 1
			}
			cur, curIndent, diagOpen, because = i, indent, true, false
			if rest != "" {
				diags[cur] = append(diags[cur], rest)
			}
			continue
		}
		switch {
		case cur >= 0 && diagOpen:
			diags[cur] = append(diags[cur], t)
		case because:
			reason = append(reason, t)
		}
	}
	for i := range rs {
		d := diags[i]
		if len(d) == 0 {
			d = reason
		}
		rs[i].DiagnosticCode = oneLine(strings.Join(d, " "))
	}
	if len(rs) == 1 && rs[0].DiagnosticCode == "" {
		rs[0].DiagnosticCode = reasonParagraph(lines)
	}
	return rs
}

// isListIntro reports whether a line introduces a list of recipients:
// "The following address(es) failed:", "Delivery to the following
// recipients failed.", "was not delivered to:", "----- The following
// addresses had permanent fatal errors -----".
func isListIntro(t string) bool {
	if containsFold(t, "was not delivered to") || containsFold(t, "not yet been delivered") ||
		containsFold(t, "could not be delivered to:") {
		return true
	}
	return (containsFold(t, "following") || containsFold(t, "these")) &&
		(containsFold(t, "recipient") || containsFold(t, "address"))
}

// recipientLine reports whether a trimmed line names a recipient: it
// starts with an address, bare, in angle brackets or quoted ("<a@b>...
// User unknown", "a@b", "'a@b' on 11/14/2023"), or it ends with one in
// parentheses or angle brackets after a name ("John Doe (a@b)"). It returns
// the address and the rest of the line.
func recipientLine(t string) (addr, rest string, ok bool) {
	s := strings.TrimLeft(t, `'"`)
	if strings.HasPrefix(s, "<") {
		if j := strings.IndexByte(s, '>'); j > 1 && isAddrLike(s[1:j]) {
			return normAddr(s[1:j]), strings.Trim(strings.TrimSpace(s[j+1:]), ".:"), true
		}
	}
	end := strings.IndexAny(s, " \t(")
	if end < 0 {
		end = len(s)
	}
	if tok := strings.TrimRight(s[:end], `'":,;.`); isAddrLike(tok) {
		rest = strings.TrimSpace(strings.TrimLeft(s[end:], " \t:"))
		if len(rest) > 3 && hasPrefixFold(rest, "on ") && isDigit(rest[3]) {
			rest = "" // Exchange: "'a@b' on 15/11/2023 09:12"
		}
		return normAddr(tok), rest, true
	}
	if strings.IndexByte(t, ':') < 0 && len(t) < 200 {
		if n := len(t); n > 0 && (t[n-1] == ')' || t[n-1] == '>') {
			open := byte('(')
			if t[n-1] == '>' {
				open = '<'
			}
			if j := strings.LastIndexByte(t, open); j >= 0 && isAddrLike(t[j+1:n-1]) {
				return normAddr(t[j+1 : n-1]), "", true
			}
		}
	}
	return "", "", false
}

// isAddrLike reports whether s looks like an addr-spec: local@domain with
// a dot in the domain and no spaces or brackets.
func isAddrLike(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || len(s) > 320 {
		return false
	}
	if strings.ContainsAny(s, " \t<>()[],;:\"'/") {
		return false
	}
	dom := s[at+1:]
	return strings.IndexByte(dom, '.') > 0 && !strings.HasSuffix(dom, ".")
}

func indexRecipient(rs []Recipient, a string) int {
	for i, x := range rs {
		if strings.EqualFold(x.FinalRecipient, a) {
			return i
		}
	}
	return -1
}

// reasonParagraph returns the first paragraph that holds an SMTP reply
// code or an enhanced status code, on one line: the explanation of a
// bounce that names one recipient and explains it further down (Gmail's
// "The error that the other server returned was:").
func reasonParagraph(lines []string) string {
	var para []string
	flush := func() string {
		p := oneLine(strings.Join(para, " "))
		para = para[:0]
		if findCode(p) != 0 || findStatus(p) != "" {
			return p
		}
		return ""
	}
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			if p := flush(); p != "" {
				return p
			}
			continue
		}
		para = append(para, strings.TrimSpace(l))
	}
	return flush()
}

// oneLine collapses white space, line breaks included, to single spaces,
// and cuts the result to 1000 bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 1000 {
		n := 1000
		for n > 0 && s[n]&0xc0 == 0x80 {
			n--
		}
		s = s[:n]
	}
	return s
}
