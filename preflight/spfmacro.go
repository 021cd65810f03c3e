package preflight

import (
	"context"
	"net/netip"
	"strings"
)

// expand expands a macro-string (RFC 7208 §7.3).
func (e *spfEval) expand(ctx context.Context, parts []macroPart, domain, term string) (string, spfResult) {
	var b strings.Builder
	for _, p := range parts {
		if p.letter == 0 {
			b.WriteString(p.lit)
			continue
		}
		v, res := e.macro(ctx, p.letter, domain, term)
		if res != "" {
			return "", res
		}
		v = transform(v, p)
		if p.upper {
			v = urlEscape(v)
		}
		b.WriteString(v)
	}
	return b.String(), ""
}

// macro returns the value of one macro letter (RFC 7208 §7.2).
func (e *spfEval) macro(ctx context.Context, letter byte, domain, term string) (string, spfResult) {
	switch letter {
	case 's':
		e.usedLocal = true
		return e.local + "@" + e.sender, ""
	case 'l':
		e.usedLocal = true
		return e.local, ""
	case 'o':
		return e.sender, ""
	case 'd':
		return domain, ""
	case 'i':
		return dottedIP(e.ip), ""
	case 'v':
		if e.ip.Is4() {
			return "in-addr", ""
		}
		return "ip6", ""
	case 'h':
		return e.helo, ""
	case 'p':
		// The PTR lookup of %{p} counts like a mechanism's (§4.6.4).
		e.usedPTR = true
		if !e.count(term + " (%{p})") {
			return "", spfPermError
		}
		if e.probe {
			return "unknown", ""
		}
		names, res := e.validated(ctx, term)
		if res != "" {
			return "", res
		}
		for _, n := range names {
			if n == domain || strings.HasSuffix(n, "."+domain) {
				return n, ""
			}
		}
		if len(names) > 0 {
			return names[0], ""
		}
		return "unknown", ""
	}
	return "", e.fail(spfPermError, spfErrSyntax, "%s: macro %%{%c} is only allowed in explanations", term, letter)
}

// dottedIP is the %{i} form of an address: dotted quad, or 32 dotted
// nibbles for IPv6 (RFC 7208 §7.3).
func dottedIP(ip netip.Addr) string {
	if ip.Is4() {
		return ip.String()
	}
	const hex = "0123456789abcdef"
	a := ip.As16()
	var b strings.Builder
	for i, c := range a {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteByte(hex[c>>4])
		b.WriteByte('.')
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// transform applies a macro's delimiters, reversal and digits: split,
// reverse, keep the right-hand parts, join with dots (RFC 7208 §7.3).
func transform(v string, p macroPart) string {
	if p.delims == "" && !p.reverse && p.digits == 0 {
		return v
	}
	delims := p.delims
	if delims == "" {
		delims = "."
	}
	var parts []string
	start := 0
	for i := 0; i < len(v); i++ {
		if strings.IndexByte(delims, v[i]) >= 0 {
			parts = append(parts, v[start:i])
			start = i + 1
		}
	}
	parts = append(parts, v[start:])
	if p.reverse {
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	if p.digits > 0 && p.digits < len(parts) {
		parts = parts[len(parts)-p.digits:]
	}
	return strings.Join(parts, ".")
}

// urlEscape escapes everything but the unreserved characters of RFC 3986
// §2.3, for upper-case macro letters.
func urlEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlpha(c) || isDigit(c) || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}
