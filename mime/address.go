package mime

import (
	"net/mail"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// RFC 5321 §4.5.3.1.1 and §4.5.3.1.2.
const (
	maxLocalPart = 64
	maxDomain    = 255
)

// addrSpec is a validated address: the local part as written (UTF-8 allowed,
// RFC 6532), the domain as an A-label in lower case (or a domain literal).
type addrSpec struct {
	local, domain string
	utf8          bool // the local part has non-ASCII characters
}

func (a addrSpec) String() string { return a.local + "@" + a.domain }

// NormalizeAddress validates one addr-spec ("local@domain", no display
// name, no angle brackets) and returns it in the form that is written to
// headers and sent in SMTP commands: the domain converted to an IDNA
// A-label in lower case (golang.org/x/net/idna Lookup profile), the local
// part as a dot-atom when it is one and otherwise as an RFC 5321 §4.1.2
// quoted-string.
//
// A local part that is not a dot-atom must be given quoted
// (`"john smith"@example.com`); unquoted, "john smith@example.com" is an
// error, as a typing slip in a form usually is. (net/mail.ParseAddress
// returns such local parts unquoted in Address; quote them again, as
// mail.Address.String does.) A quoted local part may hold printable ASCII
// and UTF-8 (RFC 6532; sending then needs SMTPUTF8), never tabs or control
// characters, which SMTP cannot carry; it is re-quoted minimally, and a
// needlessly quoted `"john"@example.com` becomes john@example.com.
// Errors match ErrInvalidAddress.
func NormalizeAddress(addr string) (string, error) {
	a, reason := parseAddrSpec(addr)
	if reason != "" {
		return "", fieldErr("address", ErrInvalidAddress, reason)
	}
	return a.String(), nil
}

// parseAddrSpec returns the address or a non-empty reason.
func parseAddrSpec(s string) (addrSpec, string) {
	if s == "" {
		return addrSpec{}, "empty address"
	}
	if !utf8.ValidString(s) {
		return addrSpec{}, "not valid UTF-8"
	}
	var local, domain string
	if s[0] == '"' {
		end := quotedEnd(s)
		if end < 0 || end+1 >= len(s) || s[end+1] != '@' {
			return addrSpec{}, "malformed quoted local part"
		}
		domain = s[end+2:]
		var reason string
		if local, reason = quoteLocal(unquote(s[1:end])); reason != "" {
			return addrSpec{}, reason
		}
	} else {
		at := strings.LastIndexByte(s, '@')
		if at < 0 {
			return addrSpec{}, "missing @"
		}
		local, domain = s[:at], s[at+1:]
		if !isDotAtom(local) {
			return addrSpec{}, "local part is not a dot-atom (quote it: \"john smith\"@example.com)"
		}
	}
	if len(local) > maxLocalPart {
		return addrSpec{}, "local part longer than 64 octets"
	}
	d, reason := normalizeDomain(domain)
	if reason != "" {
		return addrSpec{}, reason
	}
	return addrSpec{local: local, domain: d, utf8: !isASCII(local)}, ""
}

// quoteLocal returns the local part whose content is text: as it is when it
// is a dot-atom, else as an RFC 5321 §4.1.2 quoted-string (qtextSMTP and
// quoted-pairSMTP, with RFC 6531 UTF-8), or a reason when SMTP cannot carry
// it.
func quoteLocal(text string) (string, string) {
	if text == "" {
		return "", "empty local part"
	}
	if isDotAtom(text) {
		return text, ""
	}
	b := make([]byte, 0, len(text)+4)
	b = append(b, '"')
	for i := 0; i < len(text); {
		c := text[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(text[i:])
			if !goodUTF8Rune(r) {
				return "", "local part has a control or invalid character"
			}
			b = append(b, text[i:i+n]...)
			i += n
			continue
		}
		if c < ' ' || c == 0x7f {
			return "", "local part has a control character or tab"
		}
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, c)
		i++
	}
	return string(append(b, '"')), ""
}

// unquote returns the content of a quoted-string body whose syntax
// quotedEnd has checked: quoted-pairs become the character they quote.
func unquote(q string) string {
	if strings.IndexByte(q, '\\') < 0 {
		return q
	}
	b := make([]byte, 0, len(q))
	for i := 0; i < len(q); i++ {
		if q[i] == '\\' && i+1 < len(q) {
			i++
		}
		b = append(b, q[i])
	}
	return string(b)
}

// quotedEnd returns the index of the quote closing the quoted-string that
// starts s, or -1 if the quoted-string is malformed (RFC 5322 §3.2.4, with
// RFC 6532 UTF-8).
func quotedEnd(s string) int {
	for i := 1; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			return i
		case c == '\\':
			if i+1 >= len(s) || !(s[i+1] == ' ' || s[i+1] == '\t' || (s[i+1] > 32 && s[i+1] < 127)) {
				return -1
			}
			i += 2
			continue
		case c == ' ' || c == '\t' || (c > 32 && c < 127):
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(s[i:])
			if !goodUTF8Rune(r) {
				return -1
			}
			i += n
			continue
		default:
			return -1
		}
		i++
	}
	return -1
}

// goodUTF8Rune reports whether a non-ASCII rune may appear in an address or
// header text: no controls, no line or paragraph separators.
func goodUTF8Rune(r rune) bool {
	return r != utf8.RuneError && !unicode.IsControl(r) && r != '\u2028' && r != '\u2029'
}

// isAtext reports whether c is RFC 5322 atext (ASCII part).
func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// isDotAtom reports whether s is an RFC 5322 dot-atom-text, UTF-8 allowed
// (RFC 6532 §3.2), with no whitespace or control characters.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c != '.' && !isAtext(c) {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if !goodUTF8Rune(r) || unicode.IsSpace(r) {
			return false
		}
		i += n
	}
	return true
}

// normalizeDomain returns the A-label form of d in lower case, or a reason.
func normalizeDomain(d string) (string, string) {
	if d == "" {
		return "", "empty domain"
	}
	if d[0] == '[' {
		return domainLiteral(d)
	}
	if len(d) > maxDomain {
		return "", "domain longer than 255 octets"
	}
	if simpleDomain(d) {
		return d, ""
	}
	a, err := idna.Lookup.ToASCII(d)
	if err != nil {
		return "", "domain: " + err.Error()
	}
	if !hostnameSyntax(a) {
		return "", "domain is not a host name"
	}
	if len(a) > maxDomain {
		return "", "domain longer than 255 octets"
	}
	return a, ""
}

// simpleDomain reports whether d is already a lower-case LDH host name with
// no A-labels, which the IDNA mapping would return unchanged.
func simpleDomain(d string) bool {
	if strings.Contains(d, "--") { // possible A-label: let idna check it
		return false
	}
	if !hostnameSyntax(d) {
		return false
	}
	for i := 0; i < len(d); i++ {
		if 'A' <= d[i] && d[i] <= 'Z' {
			return false
		}
	}
	return true
}

// hostnameSyntax checks LDH labels of 1 to 63 octets (RFC 1123 §2.1).
func hostnameSyntax(d string) bool {
	if d == "" || len(d) > maxDomain {
		return false
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// domainLiteral accepts "[192.0.2.1]" and "[IPv6:2001:db8::1]" (RFC 5321
// §4.1.3).
func domainLiteral(d string) (string, string) {
	if len(d) < 3 || d[len(d)-1] != ']' {
		return "", "malformed domain literal"
	}
	inner := d[1 : len(d)-1]
	if v6, ok := strings.CutPrefix(inner, "IPv6:"); ok {
		ip, err := netip.ParseAddr(v6)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", "malformed IPv6 address literal"
		}
		return "[IPv6:" + ip.String() + "]", ""
	}
	ip, err := netip.ParseAddr(inner)
	if err != nil || !ip.Is4() {
		return "", "malformed address literal"
	}
	return "[" + ip.String() + "]", ""
}

// parseAddress validates a net/mail.Address: the display name (no CR, LF,
// NUL, controls or invalid UTF-8) and the addr-spec.
func parseAddress(field string, a mail.Address) (addrSpec, error) {
	if reason := checkText(a.Name); reason != "" {
		return addrSpec{}, fieldErr(field+".Name", ErrInvalidHeader, reason)
	}
	s, reason := parseAddrSpec(a.Address)
	if reason != "" {
		return addrSpec{}, fieldErr(field, ErrInvalidAddress, reason)
	}
	return s, nil
}

func indexed(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
