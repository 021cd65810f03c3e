package report

import (
	"io"
	"mime"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// addrSpec returns the addr-spec of the first address in a header value
// such as `"Mail Delivery System" <MAILER-DAEMON@Example.NET>`,
// `MAILER-DAEMON@example.net (Mail Delivery System)`, `rfc822;<a@b>` after
// its type is cut, or a bare `a@b`. The domain is lower-cased; "" for "<>".
func addrSpec(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if a, ok := angleAddr(s); ok {
		return normAddr(a)
	}
	if strings.Contains(s, " @") || strings.Contains(s, "@ ") {
		// "user @ example.com": join the pieces, then read it as usual.
		s = stripComments(s)
		for strings.Contains(s, " @") || strings.Contains(s, "@ ") {
			s = strings.ReplaceAll(strings.ReplaceAll(s, " @", "@"), "@ ", "@")
		}
	}
	// The first word outside comments with an '@' in it, else the first word.
	first := ""
	for i := 0; i < len(s); {
		switch s[i] {
		case ' ', '\t', '\r', '\n':
			i++
			continue
		case '(':
			i = skipComment(s, i)
			continue
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '(' {
			if s[j] == '"' {
				if k := strings.IndexByte(s[j+1:], '"'); k >= 0 {
					j += k + 1
				}
			}
			j++
		}
		w := strings.Trim(s[i:j], `"',;`)
		if strings.IndexByte(w, '@') > 0 {
			return normAddr(w)
		}
		if first == "" {
			first = w
		}
		i = j
	}
	return normAddr(first)
}

// skipComment returns the offset after the (comment), which may nest, that
// starts at s[i].
func skipComment(s string, i int) int {
	depth := 0
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return len(s)
}

// addrList returns the addr-specs of a comma-separated address list.
func addrList(s string) []string {
	var out []string
	for _, part := range splitList(s) {
		if a := addrSpec(part); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// splitList splits s at commas that are outside quotes, comments and angle
// brackets.
func splitList(s string) []string {
	var (
		parts []string
		depth int
		quote bool
		angle bool
		start int
	)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && (quote || depth > 0):
			i++
		case quote:
			quote = c != '"'
		case c == '"':
			quote = true
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case c == ',' && !angle:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// angleAddr returns what is between the first '<' and the next '>' that
// are outside quotes and comments.
func angleAddr(s string) (string, bool) {
	depth, quote := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && (quote || depth > 0):
			i++
		case quote:
			quote = c != '"'
		case c == '"':
			quote = true
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0 && c == '<':
			if j := strings.IndexByte(s[i+1:], '>'); j >= 0 {
				return s[i+1 : i+1+j], true
			}
			return s[i+1:], true
		}
	}
	return "", false
}

// stripComments removes (comments), which may nest, from a header value.
func stripComments(s string) string {
	if strings.IndexByte(s, '(') < 0 {
		return s
	}
	var b strings.Builder
	depth, quote := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && (quote || depth > 0):
			if depth == 0 {
				b.WriteByte(c)
				b.WriteByte(s[i+1])
			}
			i++
			continue
		case depth == 0 && c == '"':
			quote = !quote
		case !quote && c == '(':
			depth++
			continue
		case !quote && c == ')' && depth > 0:
			depth--
			b.WriteByte(' ')
			continue
		}
		if depth == 0 {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// normAddr strips spaces from an address, quotes around it and a
// "mailto:" prefix, and lower-cases the domain. A value without '@' (a
// bare "MAILER-DAEMON", "Undisclosed Recipients") is only trimmed.
func normAddr(a string) string {
	a = strings.TrimSpace(a)
	if strings.ContainsAny(a, " \t") && strings.IndexByte(a, '@') >= 0 {
		a = strings.Join(strings.Fields(a), "") // "user @ example.com"
	}
	a = strings.Trim(a, `"'<>,;`)
	if len(a) > 7 && strings.EqualFold(a[:7], "mailto:") {
		a = a[7:]
	}
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return a
	}
	dom := a[at+1:]
	if lower := strings.ToLower(dom); lower != dom {
		return a[:at+1] + lower
	}
	return a
}

// typed splits a "type; value" field (RFC 3464 §2.1.2: address-type,
// mta-name-type, diagnostic-type) into its lower-cased type and the value.
// A value without a recognisable type comes back whole with type "".
func typed(s string) (typ, val string) {
	i := strings.IndexByte(s, ';')
	if i <= 0 || i > 40 {
		return "", strings.TrimSpace(s)
	}
	t := strings.TrimSpace(s[:i])
	if t == "" || !(t[0] >= 'a' && t[0] <= 'z' || t[0] >= 'A' && t[0] <= 'Z') {
		return "", strings.TrimSpace(s) // "550; user unknown" has no type
	}
	for j := 0; j < len(t); j++ {
		c := t[j]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", strings.TrimSpace(s)
		}
	}
	return strings.ToLower(t), strings.TrimSpace(s[i+1:])
}

// recipientAddr returns the address of a Final-Recipient or
// Original-Recipient value: "rfc822;<a@b>", "rfc822; a@b", "a@b",
// "utf-8; ..." (RFC 6533, with \x{HH} escapes decoded).
func recipientAddr(s string) string {
	typ, val := typed(s)
	switch typ {
	case "", "rfc822":
		return addrSpec(val)
	case "utf-8":
		return addrSpec(unescapeUnitext(val))
	}
	return strings.Trim(val, "<> \t")
}

// unescapeUnitext decodes the \x{HHHH} escapes of RFC 6533's
// utf-8-addr-unitext and utf-8-addr-xtext forms.
func unescapeUnitext(s string) string {
	if !strings.Contains(s, `\x{`) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, `\x{`)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		r, err := strconv.ParseUint(s[i+3:i+j], 16, 32)
		b.WriteString(s[:i])
		if err != nil || !utf8.ValidRune(rune(r)) {
			b.WriteString(s[i : i+j+1])
		} else {
			b.WriteRune(rune(r))
		}
		s = s[i+j+1:]
	}
}

// mtaName returns an MTA name field without its "dns;" type, a trailing
// (comment) and a trailing dot.
func mtaName(s string) string {
	_, v := typed(s)
	if i := strings.IndexByte(v, '('); i > 0 {
		v = strings.TrimSpace(v[:i])
	}
	return strings.TrimSuffix(v, ".")
}

// msgID returns the first message identifier of a Message-ID (or
// References) value without its angle brackets; a value without brackets
// comes back trimmed.
func msgID(s string) string {
	if a, ok := angleAddr(s); ok {
		return strings.TrimSpace(a)
	}
	s = strings.TrimSpace(stripComments(s))
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// findStatus returns the first enhanced status code (RFC 3463
// class.subject.detail, class 2, 4 or 5, subject and detail of up to three
// digits) in s, normalised: "5.01.001 (bad mailbox)" → "5.1.1". It is ""
// when there is none. A code must stand alone: "1.2.3.4" and "v2.0.1" do
// not count.
func findStatus(s string) string {
	for i := 0; i+5 <= len(s); i++ {
		c := s[i]
		if c != '2' && c != '4' && c != '5' {
			continue
		}
		if i > 0 && (isAlnum(s[i-1]) || s[i-1] == '.') {
			continue
		}
		if st, ok := statusAt(s[i:]); ok {
			return st
		}
	}
	return ""
}

// statusAt parses an enhanced status code at the start of s.
func statusAt(s string) (string, bool) {
	if len(s) < 5 || s[1] != '.' {
		return "", false
	}
	sub, n1, ok := number(s[2:])
	if !ok || s[2+n1:] == "" || s[2+n1] != '.' {
		return "", false
	}
	det, n2, ok := number(s[3+n1:])
	if !ok {
		return "", false
	}
	end := 3 + n1 + n2
	if end < len(s) {
		if c := s[end]; isAlnum(c) || c == '.' && end+1 < len(s) && isDigit(s[end+1]) {
			return "", false
		}
	}
	if s[2] != '0' || n1 == 1 {
		if s[3+n1] != '0' || n2 == 1 {
			return s[:end], true // already normal
		}
	}
	return s[:1] + "." + strconv.Itoa(sub) + "." + strconv.Itoa(det), true
}

// number parses up to six digits that make a value of at most 999.
func number(s string) (v, n int, ok bool) {
	for n < len(s) && n < 6 && isDigit(s[n]) {
		v = v*10 + int(s[n]-'0')
		n++
	}
	if n == 0 || v > 999 || n < len(s) && isDigit(s[n]) {
		return 0, 0, false
	}
	return v, n, true
}

// findCode returns the first SMTP reply code (RFC 5321 §4.2: 2yz to 5yz,
// y at most 5) in s that stands as a word — at the start, or after a space,
// ';', ':', '(', '[', a quote or '#', and followed by a space, '-', the
// end, or ')' — or 0.
func findCode(s string) int {
	for i := 0; i+3 <= len(s); i++ {
		c := s[i]
		if c < '2' || c > '5' {
			continue
		}
		if i > 0 {
			switch s[i-1] {
			case ' ', '\t', ';', ':', '(', '[', '\'', '"', '#', '=':
			default:
				continue
			}
		}
		if s[i+1] < '0' || s[i+1] > '5' || !isDigit(s[i+2]) {
			continue
		}
		if i+3 < len(s) {
			switch s[i+3] {
			case ' ', '\t', '-', ')', ',', '\'', '"':
			default:
				continue
			}
		}
		return int(c-'0')*100 + int(s[i+1]-'0')*10 + int(s[i+2]-'0')
	}
	return 0
}

// decodeWords decodes RFC 2047 encoded words, leaving the value as it was
// when they do not decode, and makes the result valid UTF-8.
func decodeWords(s string) string {
	if strings.Contains(s, "=?") {
		d := mime.WordDecoder{CharsetReader: charsetReader}
		if out, err := d.DecodeHeader(s); err == nil {
			s = out
		}
	}
	return validUTF8(s)
}

func charsetReader(label string, r io.Reader) (io.Reader, error) {
	return charset.Reader(label, r)
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// containsFold reports whether s contains substr (ASCII, lower case)
// without regard to ASCII case.
func containsFold(s, lowerSubstr string) bool {
	n := len(lowerSubstr)
	if n == 0 {
		return true
	}
	c0 := lowerSubstr[0]
	for i := 0; i+n <= len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c == c0 && hasPrefixFold(s[i:], lowerSubstr) {
			return true
		}
	}
	return false
}

// hasPrefixFold reports whether s starts with the lower-case ASCII prefix
// without regard to ASCII case.
func hasPrefixFold(s, lowerPrefix string) bool {
	if len(s) < len(lowerPrefix) {
		return false
	}
	for i := 0; i < len(lowerPrefix); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lowerPrefix[i] {
			return false
		}
	}
	return true
}
