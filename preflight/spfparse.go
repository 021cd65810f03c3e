package preflight

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// spfRecord is a parsed SPF record (RFC 7208 §4.6, §12).
type spfRecord struct {
	text     string
	terms    []spfTerm
	redirect *spfTerm // the redirect= modifier, nil when absent
	hasAll   bool
}

// spfTerm is one mechanism of a record, or its redirect modifier.
type spfTerm struct {
	text   string      // as written, for messages
	qual   byte        // '+', '-', '~' or '?'
	mech   string      // "all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists", or "redirect"
	domain []macroPart // domain-spec; nil when absent (the current domain)
	net    netip.Prefix
	cidr4  int // a, mx: prefix length compared for IPv4 addresses
	cidr6  int // a, mx: for IPv6 addresses
}

// macroPart is a literal or one macro of a macro-string (RFC 7208 §7.1).
type macroPart struct {
	lit     string // literal text, when letter is 0
	letter  byte   // macro letter, lower case
	upper   bool   // the letter was upper case: URL-escape the expansion
	digits  int    // keep this many right-hand parts; 0 keeps all
	reverse bool   // reverse the parts first
	delims  string // split on these; "" splits on "."
}

// isSPF reports whether a TXT record is an SPF record: "v=spf1",
// case-insensitively, followed by a space or nothing (RFC 7208 §4.5).
func isSPF(txt string) bool {
	return len(txt) >= 6 && strings.EqualFold(txt[:6], "v=spf1") && (len(txt) == 6 || txt[6] == ' ')
}

// parseSPF parses a whole SPF record; any syntax error anywhere in it makes
// the record a permerror (RFC 7208 §4.6).
func parseSPF(txt string) (*spfRecord, error) {
	if !isSPF(txt) {
		return nil, errors.New(`the record does not start with "v=spf1"`)
	}
	rec := &spfRecord{text: txt}
	seen := map[string]bool{}
	for t := range strings.SplitSeq(txt[6:], " ") {
		if t == "" {
			continue
		}
		if name, value, ok := spfModifier(t); ok {
			lname := strings.ToLower(name)
			switch lname {
			case "redirect", "exp":
				// RFC 7208 §6: each at most once.
				if seen[lname] {
					return nil, fmt.Errorf("more than one %s= modifier", lname)
				}
				seen[lname] = true
				parts, err := parseDomainSpec(value)
				if err != nil {
					return nil, fmt.Errorf("%q: %w", t, err)
				}
				if lname == "redirect" {
					rec.redirect = &spfTerm{text: t, mech: "redirect", domain: parts}
				}
			default:
				// Unknown modifiers are ignored but must parse (§6).
				if _, err := parseMacroString(value, false); err != nil {
					return nil, fmt.Errorf("%q: %w", t, err)
				}
			}
			continue
		}
		term, err := parseDirective(t)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", t, err)
		}
		if term.mech == "all" {
			rec.hasAll = true
		}
		rec.terms = append(rec.terms, term)
	}
	return rec, nil
}

// spfModifier splits a modifier, "name=value" where name is ALPHA *( ALPHA
// / DIGIT / "-" / "_" / "." ) (RFC 7208 §12).
func spfModifier(t string) (name, value string, ok bool) {
	i := strings.IndexByte(t, '=')
	if i <= 0 || !isAlpha(t[0]) {
		return "", "", false
	}
	for j := 1; j < i; j++ {
		c := t[j]
		if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' && c != '.' {
			return "", "", false
		}
	}
	return t[:i], t[i+1:], true
}

// parseDirective parses [qualifier] mechanism (RFC 7208 §4.6.1, §5).
func parseDirective(t string) (spfTerm, error) {
	term := spfTerm{text: t, qual: '+', cidr4: 32, cidr6: 128}
	rest := t
	if strings.IndexByte("+-~?", rest[0]) >= 0 {
		term.qual, rest = rest[0], rest[1:]
	}
	name := rest
	if i := strings.IndexAny(rest, ":/"); i >= 0 {
		name = rest[:i]
	}
	arg := rest[len(name):]
	term.mech = strings.ToLower(name)
	var err error
	switch term.mech {
	case "all":
		if arg != "" {
			return term, errors.New(`"all" takes no argument`)
		}
	case "include", "exists":
		if !strings.HasPrefix(arg, ":") {
			return term, fmt.Errorf("%q needs a domain", term.mech)
		}
		term.domain, err = parseDomainSpec(arg[1:])
	case "a", "mx":
		var spec string
		spec, term.cidr4, term.cidr6, err = splitDualCIDR(arg)
		if err == nil && spec != "" {
			if !strings.HasPrefix(spec, ":") {
				return term, fmt.Errorf("%q: unexpected %q", term.mech, spec)
			}
			term.domain, err = parseDomainSpec(spec[1:])
		}
	case "ptr":
		if arg != "" {
			if !strings.HasPrefix(arg, ":") {
				return term, fmt.Errorf(`"ptr": unexpected %q`, arg)
			}
			term.domain, err = parseDomainSpec(arg[1:])
		}
	case "ip4", "ip6":
		if !strings.HasPrefix(arg, ":") {
			return term, fmt.Errorf("%q needs an address", term.mech)
		}
		term.net, err = parseNetwork(arg[1:], term.mech == "ip4")
	case "":
		return term, errors.New("empty mechanism")
	default:
		return term, fmt.Errorf("unknown mechanism %q", name)
	}
	return term, err
}

// parseNetwork parses ip4-network [ ip4-cidr-length ] or the ip6 forms.
func parseNetwork(s string, v4 bool) (netip.Prefix, error) {
	addr, length, hasLen := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Zone() != "" || v4 != a.Is4() {
		fam := "IPv6"
		if v4 {
			fam = "IPv4"
		}
		return netip.Prefix{}, fmt.Errorf("%q is not an %s address", addr, fam)
	}
	bits := a.BitLen()
	if hasLen {
		if bits, err = parseCIDR(length, a.BitLen()); err != nil {
			return netip.Prefix{}, err
		}
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}

// parseCIDR parses a prefix length without leading zeros, at most max.
func parseCIDR(s string, maxBits int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || s == "" || !isDigit(s[0]) || len(s) > 1 && s[0] == '0' || n < 0 || n > maxBits {
		return 0, fmt.Errorf("bad prefix length %q (0 to %d)", s, maxBits)
	}
	return n, nil
}

// splitDualCIDR takes the dual-cidr-length off the end of an a or mx
// argument (RFC 7208 §5.6): ":domain/24//64", "/24", "//64".
func splitDualCIDR(arg string) (spec string, cidr4, cidr6 int, err error) {
	cidr4, cidr6 = 32, 128
	if i := strings.LastIndex(arg, "//"); i >= 0 && allDigits(arg[i+2:]) {
		if cidr6, err = parseCIDR(arg[i+2:], 128); err != nil {
			return "", 0, 0, err
		}
		arg = arg[:i]
	}
	if i := strings.LastIndexByte(arg, '/'); i >= 0 && allDigits(arg[i+1:]) {
		if cidr4, err = parseCIDR(arg[i+1:], 32); err != nil {
			return "", 0, 0, err
		}
		arg = arg[:i]
	}
	return arg, cidr4, cidr6, nil
}

// parseDomainSpec parses a domain-spec: a macro-string that ends in a
// macro or in "." toplabel (RFC 7208 §7.1).
func parseDomainSpec(s string) ([]macroPart, error) {
	if s == "" {
		return nil, errors.New("empty domain")
	}
	parts, err := parseMacroString(s, false)
	if err != nil {
		return nil, err
	}
	last := parts[len(parts)-1]
	if last.letter != 0 || strings.HasSuffix(s, "%%") || strings.HasSuffix(s, "%_") || strings.HasSuffix(s, "%-") {
		return parts, nil
	}
	tail := strings.TrimSuffix(last.lit, ".")
	i := strings.LastIndexByte(tail, '.')
	if i < 0 || !isTopLabel(tail[i+1:]) {
		return nil, fmt.Errorf("%q does not end in a top-level label", s)
	}
	return parts, nil
}

// isTopLabel reports whether s is a toplabel (RFC 7208 §7.1): letters,
// digits and hyphens, starting and ending with a letter or digit, and not
// all digits.
func isTopLabel(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	nonDigit := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlpha(c) || c == '-':
			nonDigit = true
		case isDigit(c):
		default:
			return false
		}
	}
	return nonDigit
}

// parseMacroString parses a macro-string (RFC 7208 §7.1); exp allows the
// letters c, r and t and spaces, which only explanation strings may hold.
func parseMacroString(s string, exp bool) ([]macroPart, error) {
	var parts []macroPart
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, macroPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '%' {
			if (c < 0x21 || c > 0x7e) && !(exp && c == ' ') {
				return nil, fmt.Errorf("character %q not allowed", c)
			}
			lit.WriteByte(c)
			i++
			continue
		}
		if i+1 == len(s) {
			return nil, errors.New(`"%" at the end`)
		}
		switch s[i+1] {
		case '%':
			lit.WriteByte('%')
			i += 2
			continue
		case '_':
			lit.WriteByte(' ')
			i += 2
			continue
		case '-':
			lit.WriteString("%20")
			i += 2
			continue
		case '{':
		default:
			return nil, fmt.Errorf(`"%%%c" is not a macro`, s[i+1])
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, errors.New(`unterminated "%{"`)
		}
		m, err := parseMacro(s[i+2:i+end], exp)
		if err != nil {
			return nil, err
		}
		flush()
		parts = append(parts, m)
		i += end + 1
	}
	flush()
	return parts, nil
}

// parseMacro parses the inside of "%{...}": letter, digits, "r",
// delimiters.
func parseMacro(body string, exp bool) (macroPart, error) {
	if body == "" {
		return macroPart{}, errors.New(`empty macro "%{}"`)
	}
	m := macroPart{letter: lower(body[0]), upper: 'A' <= body[0] && body[0] <= 'Z'}
	switch m.letter {
	case 's', 'l', 'o', 'd', 'i', 'p', 'h', 'v':
	case 'c', 'r', 't':
		if !exp {
			return m, fmt.Errorf("macro %%{%c} is only allowed in explanations", body[0])
		}
	default:
		return m, fmt.Errorf("unknown macro letter %q", body[0])
	}
	rest := body[1:]
	n := 0
	for n < len(rest) && isDigit(rest[n]) {
		n++
	}
	if n > 0 {
		d, err := strconv.Atoi(rest[:n])
		if err != nil || d == 0 {
			return m, fmt.Errorf("bad digit transformer in %%{%s}", body)
		}
		m.digits = min(d, 1000)
		rest = rest[n:]
	}
	if rest != "" && lower(rest[0]) == 'r' {
		m.reverse = true
		rest = rest[1:]
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(".-+,/_=", rest[i]) < 0 {
			return m, fmt.Errorf("bad delimiter %q in %%{%s}", rest[i], body)
		}
	}
	m.delims = rest
	return m, nil
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
