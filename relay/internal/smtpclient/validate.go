package smtpclient

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// maxPath is the longest reverse- or forward-path (RFC 5321 §4.5.3.1.3:
// 256 octets including the angle brackets).
const maxPath = 254

// CheckHelloName reports whether name can be sent with EHLO or HELO: a
// domain (RFC 5321 §4.1.2: labels of ASCII letters, digits and hyphens,
// neither starting nor ending with a hyphen, each at most 63 octets, at
// most 255 in all; a trailing dot is not allowed) or an address literal
// ("[192.0.2.1]", "[IPv6:2001:db8::1]"). An internationalised name must be
// given as its A-label ("xn--mil-ila.example.org"). Errors wrap
// ErrInvalidInput.
func CheckHelloName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("%w: EHLO name %q: empty or longer than 255 octets", ErrInvalidInput, name)
	}
	if name[0] == '[' {
		if reason := addressLiteral(name); reason != "" {
			return fmt.Errorf("%w: EHLO name %q: %s", ErrInvalidInput, name, reason)
		}
		return nil
	}
	if reason := domainSyntax(name); reason != "" {
		return fmt.Errorf("%w: EHLO name %q: %s", ErrInvalidInput, name, reason)
	}
	return nil
}

// domainSyntax returns why name is not an RFC 5321 Domain, or "".
func domainSyntax(name string) string {
	for label := range strings.SplitSeq(name, ".") {
		switch {
		case label == "":
			return "empty label"
		case len(label) > 63:
			return "label longer than 63 octets"
		case label[0] == '-' || label[len(label)-1] == '-':
			return "label starts or ends with a hyphen"
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				if c >= 0x80 {
					return "not ASCII (give the A-label, xn--...)"
				}
				return fmt.Sprintf("byte %#02x not allowed", c)
			}
		}
	}
	return ""
}

// addressLiteral returns why s is not an RFC 5321 §4.1.3 address literal
// for IPv4 or IPv6, or "".
func addressLiteral(s string) string {
	if len(s) < 3 || s[len(s)-1] != ']' {
		return "malformed address literal"
	}
	inner := s[1 : len(s)-1]
	if v6, ok := strings.CutPrefix(inner, "IPv6:"); ok {
		if a, err := netip.ParseAddr(v6); err == nil && a.Is6() && a.Zone() == "" {
			return ""
		}
		return "malformed IPv6 address literal"
	}
	if a, err := netip.ParseAddr(inner); err == nil && a.Is4() {
		return ""
	}
	return "malformed IPv4 address literal"
}

// maxLocal is the longest local part (RFC 5321 §4.5.3.1.1).
const maxLocal = 64

// CheckForwardPath reports whether addr can be sent as RCPT TO:<addr>: an
// addr-spec whose local part is a dot-atom-like run of printable bytes or
// an RFC 5321 §4.1.2 quoted-string (`"john smith"@example.com`: qtextSMTP
// and quoted-pairSMTP, UTF-8 allowed for SMTPUTF8), local part at most 64
// octets, path at most 256 with the brackets; "postmaster" alone is
// allowed (§4.1.1.3). Nothing that could end the command or add a
// parameter passes: no control bytes, no unquoted space, no angle
// bracket, no invalid UTF-8. Errors wrap ErrInvalidInput.
func CheckForwardPath(addr string) error { return checkPath("RCPT TO", addr, false) }

// CheckReversePath is CheckForwardPath for MAIL FROM:<addr>; "" (the null
// reverse-path) is allowed and "postmaster" alone is not.
func CheckReversePath(addr string) error { return checkPath("MAIL FROM", addr, true) }

// checkPath checks addr for kind (see CheckForwardPath).
func checkPath(kind, addr string, emptyOK bool) error {
	if addr == "" {
		if emptyOK {
			return nil
		}
		return fmt.Errorf("%w: %s: empty address", ErrInvalidInput, kind)
	}
	if len(addr) > maxPath {
		return fmt.Errorf("%w: %s: address longer than %d octets", ErrInvalidInput, kind, maxPath)
	}
	if !utf8.ValidString(addr) {
		return fmt.Errorf("%w: %s %q: invalid UTF-8", ErrInvalidInput, kind, addr)
	}
	var local, domain string
	if addr[0] == '"' {
		end := quotedStringEnd(addr)
		if end < 0 {
			return fmt.Errorf("%w: %s %q: malformed quoted local part", ErrInvalidInput, kind, addr)
		}
		if end+1 >= len(addr) || addr[end+1] != '@' {
			return fmt.Errorf("%w: %s %q: no domain", ErrInvalidInput, kind, addr)
		}
		local, domain = addr[:end+1], addr[end+2:]
	} else {
		at := strings.LastIndexByte(addr, '@')
		if at < 0 {
			if !emptyOK && strings.EqualFold(addr, "postmaster") {
				return nil
			}
			return fmt.Errorf("%w: %s %q: no domain", ErrInvalidInput, kind, addr)
		}
		local, domain = addr[:at], addr[at+1:]
		if i := strings.IndexAny(local, "\"@"); i >= 0 {
			return fmt.Errorf("%w: %s %q: %q in an unquoted local part", ErrInvalidInput, kind, addr, local[i])
		}
		if i := badByte(local); i >= 0 {
			return fmt.Errorf("%w: %s %q: byte %#02x not allowed", ErrInvalidInput, kind, addr, local[i])
		}
	}
	if local == "" || domain == "" {
		return fmt.Errorf("%w: %s %q: empty local part or domain", ErrInvalidInput, kind, addr)
	}
	if len(local) > maxLocal {
		return fmt.Errorf("%w: %s %q: local part longer than %d octets", ErrInvalidInput, kind, addr, maxLocal)
	}
	if i := badByte(domain); i >= 0 {
		return fmt.Errorf("%w: %s %q: byte %#02x not allowed", ErrInvalidInput, kind, addr, domain[i])
	}
	return nil
}

// badByte returns the index of the first byte of s that cannot stand
// unquoted in a path (control, space, DEL, angle bracket), or -1.
func badByte(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '<' || c == '>' {
			return i
		}
	}
	return -1
}

// quotedStringEnd returns the index of the DQUOTE closing the RFC 5321
// quoted-string that starts s, or -1 if it is malformed: qtextSMTP is
// %d32-33 / %d35-91 / %d93-126 (and UTF-8 beyond ASCII, RFC 6531),
// quoted-pairSMTP is a backslash and one of %d32-126.
func quotedStringEnd(s string) int {
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			if i == 1 {
				return -1 // "" is not a local part
			}
			return i
		case c == '\\':
			i++
			if i >= len(s) || s[i] < 32 || s[i] > 126 {
				return -1
			}
		case c < 32 || c == 0x7f:
			return -1
		}
	}
	return -1
}

// isASCII reports whether s has only 7-bit bytes.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// appendXtext appends s encoded as xtext (RFC 3461 §4): "+", "=" and bytes
// outside 0x21-0x7e become "+XX".
func appendXtext(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '+' || c == '=' {
			b = append(b, '+', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

// checkDSN validates the DSN parameters (RFC 3461 §4).
func checkDSN(d *DSN) error {
	if d == nil {
		return nil
	}
	switch strings.ToUpper(d.Return) {
	case "", "FULL", "HDRS":
	default:
		return fmt.Errorf("%w: DSN RET %q: want FULL or HDRS", ErrInvalidInput, d.Return)
	}
	if len(d.EnvelopeID) > 100 {
		return fmt.Errorf("%w: DSN ENVID longer than 100 characters", ErrInvalidInput)
	}
	never := false
	for _, n := range d.Notify {
		switch strings.ToUpper(n) {
		case "NEVER":
			never = true
		case "SUCCESS", "FAILURE", "DELAY":
		default:
			return fmt.Errorf("%w: DSN NOTIFY %q: want NEVER, SUCCESS, FAILURE or DELAY", ErrInvalidInput, n)
		}
	}
	if never && len(d.Notify) > 1 {
		return fmt.Errorf("%w: DSN NOTIFY NEVER cannot be combined", ErrInvalidInput)
	}
	return nil
}
