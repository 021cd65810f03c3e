package lint

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/track"
)

// Severity is how much a Finding matters.
type Severity int

// The severities, in increasing order.
const (
	// Info is worth knowing but rarely changes where a message lands.
	Info Severity = iota + 1
	// Warning is something filters or providers are known to act on.
	Warning
)

// String returns "info" or "warning".
func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	}
	return fmt.Sprintf("Severity(%d)", int(s))
}

// MarshalText returns String's result, so that a Severity is a JSON string.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Finding is one warning.
type Finding struct {
	// Rule is the rule's stable name, such as "html-only" (see the
	// package documentation for the list).
	Rule string
	// Severity is Warning or Info.
	Severity Severity
	// Message says what was found, in a sentence, with the offending
	// value quoted.
	Message string
	// Mirrors names the filter rule the check mirrors: a SpamAssassin 4
	// rule name where one exists, otherwise a short description.
	Mirrors string
}

// String returns "rule (severity): message".
func (f Finding) String() string {
	return f.Rule + " (" + f.Severity.String() + "): " + f.Message
}

// Options describe the message being checked. A nil *Options is the zero
// value.
type Options struct {
	// List says the message is list mail (a newsletter, a notification
	// stream), which should carry List-Unsubscribe and List-Id.
	List bool
}

// Rule names, in the order findings are returned.
const (
	ruleUnreadable     = "unreadable"
	ruleMissingText    = "missing-text"
	ruleHTMLOnly       = "html-only"
	ruleImageOnly      = "image-only"
	ruleTextHTMLDiffer = "text-html-mismatch"
	ruleLinkText       = "link-text-mismatch"
	ruleListUnsub      = "missing-list-unsubscribe"
	ruleListID         = "missing-list-id"
	ruleSize           = "message-size"
	ruleHTMLClipped    = "html-clipped"
	ruleIPLink         = "ip-link"
	ruleShortener      = "url-shortener"
	ruleHidden         = "hidden-text"
	ruleSubjectCaps    = "subject-all-caps"
	ruleNoSubject      = "missing-subject"
)

// ruleOrder gives each rule its place in the output.
var ruleOrder = map[string]int{
	ruleUnreadable: 0, ruleMissingText: 1, ruleHTMLOnly: 2, ruleImageOnly: 3,
	ruleTextHTMLDiffer: 4, ruleLinkText: 5, ruleListUnsub: 6, ruleListID: 7,
	ruleSize: 8, ruleHTMLClipped: 9, ruleIPLink: 10, ruleShortener: 11,
	ruleHidden: 12, ruleSubjectCaps: 13, ruleNoSubject: 14,
}

// Thresholds.
const (
	// maxSize is the message size over which many providers refuse mail.
	maxSize = 10 << 20
	// gmailClip is the HTML size over which Gmail clips a message.
	gmailClip = 102 << 10
	// imageOnlyText is the visible text, in bytes, under which HTML with
	// an image counts as image-only (SpamAssassin's HTML_IMAGE_ONLY_04
	// to _16 cover 0 to 1600 bytes).
	imageOnlyText = 1600
	// shortHTML is the HTML length under which a linked image is
	// HTML_SHORT_LINK_IMG_1.
	shortHTML = 1024
	// minWords is the number of distinct words each of the text and the
	// HTML needs before they are compared.
	minWords = 5
	// minOverlap is the share of the smaller word set that must also be
	// in the other; under it the parts "differ wildly".
	minOverlap = 0.5
	// quoteMax is the longest value quoted in a message, in runes.
	quoteMax = 80
)

// shorteners are the URL shorteners flagged by url-shortener; subdomains
// count too.
var shorteners = []string{
	"bit.ly", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd",
	"buff.ly", "rebrand.ly", "cutt.ly", "shorturl.at",
}

// view is what the rules look at, from a mime.Message or a parsed message.
type view struct {
	subject   string
	text      string // the first text/plain body part
	html      string // the first text/html body part
	hasHTML   bool
	others    int // parts that are neither of those two
	size      int // of the whole written message
	listUnsub bool
	listID    bool
}

// Message checks m and returns its findings in rule order; o may be nil. A
// message that does not validate is still checked; its size is then
// estimated from its parts.
func Message(m *mime.Message, o *Options) []Finding {
	if m == nil {
		return nil
	}
	v := view{
		subject:   m.Subject,
		text:      m.Text,
		html:      m.HTML,
		hasHTML:   m.HTML != "",
		others:    len(m.Attachments),
		listUnsub: strings.TrimSpace(m.ListUnsubscribe) != "" || headerSet(m.Header, "List-Unsubscribe"),
		listID:    headerSet(m.Header, "List-Id"),
	}
	if b, err := m.Bytes(); err == nil {
		v.size = len(b)
	} else {
		v.size = 1024 + len(m.Text) + len(m.HTML) + len(m.Subject)
		for _, a := range m.Attachments {
			v.size += (len(a.Data)+2)/3*4*78/76 + 256
		}
	}
	return check(&v, o)
}

// headerSet reports whether h has a non-blank field name, in any case.
func headerSet(h map[string][]string, name string) bool {
	for k, vs := range h {
		if strings.EqualFold(k, name) {
			for _, s := range vs {
				if strings.TrimSpace(s) != "" {
					return true
				}
			}
		}
	}
	return false
}

// check runs every rule.
func check(v *view, o *Options) []Finding {
	if o == nil {
		o = &Options{}
	}
	var out []Finding
	add := func(rule string, sev Severity, mirrors, format string, args ...any) {
		out = append(out, Finding{Rule: rule, Severity: sev, Message: fmt.Sprintf(format, args...), Mirrors: mirrors})
	}
	hasText := strings.TrimSpace(v.text) != ""
	var h *htmlInfo
	if v.hasHTML {
		h = analyzeHTML(v.html)
	}

	if !hasText {
		if v.hasHTML {
			add(ruleMissingText, Warning, "text-only clients and many filters expect a text/plain alternative to the HTML",
				"The message has HTML but no text/plain part.")
		} else {
			add(ruleMissingText, Warning, "text-only clients and many filters expect a text/plain body",
				"The message has no text/plain part.")
		}
	}
	if v.hasHTML && !hasText && v.others == 0 {
		add(ruleHTMLOnly, Warning, "MIME_HTML_ONLY", "The message consists of a text/html part only.")
	}
	if h != nil && h.images > 0 && len(h.visible) < imageOnlyText {
		var mirrors []string
		mirrors = append(mirrors, fmt.Sprintf("HTML_IMAGE_ONLY_%02d", (len(h.visible)/400+1)*4))
		if h.linkedImage && len(v.html) < shortHTML {
			mirrors = append(mirrors, "HTML_SHORT_LINK_IMG_1")
		}
		add(ruleImageOnly, Warning, strings.Join(mirrors, ", "),
			"The HTML shows %d image(s) and only %d bytes of text: %s.", h.images, len(h.visible), quote(h.visible))
	}
	if h != nil && hasText {
		tw, hw := wordSet(stripURLs(v.text)), wordSet(h.visible)
		if len(tw) >= minWords && len(hw) >= minWords {
			common := 0
			for w := range tw {
				if hw[w] {
					common++
				}
			}
			small := min(len(tw), len(hw))
			if float64(common) < minOverlap*float64(small) {
				add(ruleTextHTMLDiffer, Warning, "MPART_ALT_DIFF",
					"The text and HTML parts share only %d of %d words (%d%%); the text starts %s and the HTML %s.",
					common, small, common*100/small, quote(v.text), quote(h.visible))
			}
		}
	}
	if h != nil {
		for _, a := range h.anchors {
			shown := textDomain(a.text)
			if shown == "" {
				continue
			}
			u, err := url.Parse(strings.TrimSpace(a.href))
			if err != nil || (!strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https")) || u.Hostname() == "" {
				continue
			}
			if host := strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")); !sameSite(shown, host) {
				add(ruleLinkText, Warning, "__SPOOFED_URL",
					"A link's text shows %s but it goes to %s (href %s).", quote(shown), quote(host), quote(a.href))
			}
		}
	}
	if o.List && !v.listUnsub {
		add(ruleListUnsub, Warning, "Gmail and Yahoo bulk-sender rules require List-Unsubscribe (RFC 8058 one-click)",
			"The message is list mail but has no List-Unsubscribe header.")
	}
	if !v.listID && (o.List || v.listUnsub) {
		if v.listUnsub {
			add(ruleListID, Info, "__LIST_PARTIAL", "The message has a List-Unsubscribe header but no List-Id.")
		} else {
			add(ruleListID, Info, "RFC 2919 List-Id, used by clients and filters to recognise list mail",
				"The message is list mail but has no List-Id header.")
		}
	}
	if v.size > maxSize {
		add(ruleSize, Warning, "many providers refuse messages over 10 MB",
			"The message is %s (%d bytes), over 10 MB.", mb(v.size), v.size)
	}
	if v.hasHTML {
		if n := crlfLen(strings.TrimRight(v.html, "\r\n")); n > gmailClip {
			add(ruleHTMLClipped, Info, "Gmail clips messages over 102 KB of HTML",
				"The HTML part is %.1f KB (%d bytes), over 102 KB.", float64(n)/1024, n)
		}
	}
	links := allLinks(v, h)
	for _, l := range links {
		if _, err := netip.ParseAddr(strings.Trim(l.host, "[]")); err == nil {
			add(ruleIPLink, Warning, "NUMERIC_HTTP_ADDR", "The link %s points at an IP address.", quote(l.url))
		}
	}
	for _, l := range links {
		for _, s := range shorteners {
			if l.host == s || strings.HasSuffix(l.host, "."+s) {
				add(ruleShortener, Warning, "__URL_SHORTENER", "The link %s uses the URL shortener %s.", quote(l.url), quote(s))
				break
			}
		}
	}
	if h != nil {
		for _, x := range h.hidden {
			mirrors := "text hidden from the reader (display:none, font-size:0) is a filter-evasion signal"
			if x.why == whiteOnWhite {
				mirrors = "HTML_FONT_LOW_CONTRAST"
			}
			add(ruleHidden, Warning, mirrors, "Text is hidden by %s: %s.", x.why, quote(x.text.String()))
		}
	}
	if s := strings.TrimSpace(v.subject); s == "" {
		add(ruleNoSubject, Warning, "MISSING_SUBJECT", "The message has no Subject, or an empty one.")
	} else if allCaps(s) {
		add(ruleSubjectCaps, Warning, "SUBJ_ALL_CAPS", "The Subject %s is all capitals.", quote(s))
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return ruleOrder[a.Rule] - ruleOrder[b.Rule] })
	return out
}

// link is one http or https URL of the message.
type link struct{ url, host string }

// allLinks returns the distinct http and https URLs of the HTML (as
// track.Links finds them) and of the text, in that order.
func allLinks(v *view, h *htmlInfo) []link {
	var urls []string
	if v.hasHTML {
		if l, err := track.Links([]byte(v.html)); err == nil {
			urls = l
		} else if h != nil {
			for _, a := range h.anchors {
				urls = append(urls, a.href)
			}
		}
	}
	track.RewriteText(v.text, func(u string) (string, bool) {
		urls = append(urls, u)
		return u, false
	})
	var out []link
	seen := make(map[string]bool)
	for _, s := range urls {
		s = strings.TrimSpace(s)
		if seen[s] {
			continue
		}
		seen[s] = true
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			continue
		}
		out = append(out, link{url: s, host: strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))})
	}
	return out
}

// allCaps reports whether s has at least 8 cased letters and none in lower
// case.
func allCaps(s string) bool {
	upper := 0
	for _, r := range s {
		switch {
		case unicode.IsLower(r):
			return false
		case unicode.IsUpper(r) || unicode.IsTitle(r):
			upper++
		}
	}
	return upper >= 8
}

// quote returns s with its white space collapsed, cut to quoteMax runes, in
// Go double quotes.
func quote(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > quoteMax {
		n := 0
		for i := range s {
			if n == quoteMax {
				s = s[:i] + "…"
				break
			}
			n++
		}
	}
	return fmt.Sprintf("%q", s)
}

// mb formats n bytes in megabytes (MiB) with one decimal.
func mb(n int) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

// crlfLen returns the length of s with every line break written as CRLF,
// as it is sent. Callers trim the final line break, which mime adds and a
// parsed part keeps.
func crlfLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n':
			if i == 0 || s[i-1] != '\r' {
				n++
			}
		case '\r':
			if i+1 == len(s) || s[i+1] != '\n' {
				n++
			}
		}
	}
	return n
}

// stripURLs removes the whitespace-separated words that hold a URL, so
// that their pieces do not count as words of the text.
func stripURLs(s string) string {
	f := strings.Fields(s)
	k := 0
	for _, w := range f {
		lw := strings.ToLower(w)
		if strings.Contains(lw, "://") || strings.Contains(lw, "www.") || strings.Contains(lw, "mailto:") {
			continue
		}
		f[k] = w
		k++
	}
	return strings.Join(f[:k], " ")
}

// wordSet returns the distinct words of s of three letters or more, in
// lower case.
func wordSet(s string) map[string]bool {
	set := make(map[string]bool)
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if utf8.RuneCountInString(w) >= 3 {
			set[strings.ToLower(w)] = true
		}
	}
	return set
}
