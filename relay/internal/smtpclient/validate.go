package smtpclient

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxPath is the longest reverse- or forward-path (RFC 5321 §4.5.3.1.3:
// 256 octets including the angle brackets).
const maxPath = 254

// checkHelloName accepts a domain or address literal for EHLO/HELO: printable
// ASCII without spaces, at most 255 octets.
func checkHelloName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("%w: EHLO name %q: empty or too long", ErrInvalidInput, name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' {
			return fmt.Errorf("%w: EHLO name %q: byte %#02x not allowed", ErrInvalidInput, name, c)
		}
	}
	return nil
}

// checkPath accepts an addr-spec for MAIL FROM (empty allowed: the null
// reverse-path) or RCPT TO (empty not allowed; "postmaster" alone is, RFC
// 5321 §4.1.1.3). It refuses anything that could end the command or inject
// parameters: control bytes, spaces, angle brackets, invalid UTF-8.
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
	for i := 0; i < len(addr); i++ {
		if c := addr[i]; c <= ' ' || c == 0x7f || c == '<' || c == '>' {
			return fmt.Errorf("%w: %s %q: byte %#02x not allowed", ErrInvalidInput, kind, addr, c)
		}
	}
	if !utf8.ValidString(addr) {
		return fmt.Errorf("%w: %s %q: invalid UTF-8", ErrInvalidInput, kind, addr)
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		if !emptyOK && strings.EqualFold(addr, "postmaster") {
			return nil
		}
		return fmt.Errorf("%w: %s %q: no domain", ErrInvalidInput, kind, addr)
	}
	if at == 0 || at == len(addr)-1 {
		return fmt.Errorf("%w: %s %q: empty local part or domain", ErrInvalidInput, kind, addr)
	}
	return nil
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
