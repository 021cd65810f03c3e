package mx

import (
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// Limits of RFC 1035 §2.3.4 (a name of 255 octets on the wire is 253
// characters in text without the trailing dot).
const (
	maxNameLen  = 253
	maxLabelLen = 63
)

// toASCII converts a domain given by a user (U-labels or A-labels, any case,
// optional trailing dot) to its lower-case A-label form without the trailing
// dot, with the x/net/idna Lookup profile (UTS #46, RFC 5891). Names that are
// already in that form are returned as they are, without allocating.
//
// Never build names that start with "_" through this function: the Lookup
// profile rejects underscores. Convert the domain first, then prepend.
func toASCII(name string) (string, error) {
	s := strings.TrimSuffix(name, ".")
	if isLowerLDH(s) {
		return s, nil
	}
	if s == "" {
		return "", &NameError{Name: name, Reason: "empty name"}
	}
	a, err := idna.Lookup.ToASCII(s)
	if err != nil {
		return "", &NameError{Name: name, Reason: err.Error()}
	}
	if reason := checkLengths(a); reason != "" {
		return "", &NameError{Name: name, Reason: reason}
	}
	return a, nil
}

// isLowerLDH reports whether s is a valid name made only of lower-case
// letter-digit-hyphen labels that the idna Lookup profile would return
// unchanged: no leading or trailing hyphen, no "--" in the third and fourth
// positions (which covers "xn--"), within the length limits.
func isLowerLDH(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
			continue
		}
		label := s[start:i]
		n := len(label)
		if n == 0 || n > maxLabelLen || label[0] == '-' || label[n-1] == '-' ||
			n >= 4 && label[2] == '-' && label[3] == '-' {
			return false
		}
		start = i + 1
	}
	return true
}

// checkLengths returns why an ASCII name breaks the RFC 1035 limits, or "".
func checkLengths(s string) string {
	if s == "" {
		return "empty name"
	}
	if len(s) > maxNameLen {
		return "name longer than 253 octets"
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" {
			return "empty label"
		}
		if len(label) > maxLabelLen {
			return "label longer than 63 octets"
		}
	}
	return ""
}

// hostFromTarget turns an MX or CNAME target from an answer (lower case,
// absolute) into a host name without the trailing dot, or "" when it is not
// a usable host name: an IP literal, a name with characters other than
// letters, digits, hyphen and underscore, or one breaking the length limits.
func hostFromTarget(t string) string {
	h := strings.TrimSuffix(t, ".")
	if h == "" || checkLengths(h) != "" {
		return ""
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return ""
		}
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return ""
	}
	// A name whose last label is all digits reads as an IPv4 literal to
	// many programs (RFC 3696 §2); refuse it.
	last := h[strings.LastIndexByte(h, '.')+1:]
	if strings.Trim(last, "0123456789") == "" {
		return ""
	}
	return h
}

// toASCIIOwner is toASCII for the owner names of TXT records, which often
// begin with underscore labels (RFC 8552): "_dmarc.example.com",
// "selector._domainkey.example.com", "_spf.example.com". The labels up to
// and including the last one holding an underscore are the prefix: each of
// its labels holding an underscore must be letters, digits, hyphens and
// underscores (lower-cased here), and each other label is converted as
// toASCII converts a name (a DKIM selector may be a U-label, RFC 8616 §4).
// The rest of the name, the domain, is converted with toASCII. A name
// without an underscore is converted with toASCII. Names already in their
// final form are returned as they are, without allocating.
func toASCIIOwner(name string) (string, error) {
	s := strings.TrimSuffix(name, ".")
	u := strings.LastIndexByte(s, '_')
	if u < 0 {
		return toASCII(name)
	}
	end := len(s)
	if i := strings.IndexByte(s[u:], '.'); i >= 0 {
		end = u + i
	}
	prefix, rest := s[:end], ""
	if end < len(s) {
		rest = s[end+1:]
		if rest == "" || strings.HasSuffix(rest, ".") {
			return "", &NameError{Name: name, Reason: "empty label"}
		}
	}
	if len(s) <= maxNameLen && isLowerPrefix(prefix) && (rest == "" || isLowerLDH(rest)) {
		return s, nil
	}

	var b strings.Builder
	for label := range strings.SplitSeq(prefix, ".") {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		if label == "" {
			return "", &NameError{Name: name, Reason: "empty label"}
		}
		if strings.IndexByte(label, '_') < 0 {
			a, err := toASCII(label)
			if err != nil {
				return "", &NameError{Name: name, Reason: nameReason(err)}
			}
			b.WriteString(a)
			continue
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if !isUnderscoreLabelByte(c) {
				return "", &NameError{Name: name, Reason: "underscore label with characters other than letters, digits, hyphen and underscore"}
			}
			b.WriteByte(c)
		}
	}
	if rest != "" {
		a, err := toASCII(rest)
		if err != nil {
			return "", &NameError{Name: name, Reason: nameReason(err)}
		}
		b.WriteByte('.')
		b.WriteString(a)
	}
	out := b.String()
	if reason := checkLengths(out); reason != "" {
		return "", &NameError{Name: name, Reason: reason}
	}
	return out, nil
}

// isLowerPrefix reports whether the prefix of an owner name (see
// toASCIIOwner) is already in its final form: labels within the length
// limit, those with an underscore made of lower-case letters, digits,
// hyphens and underscores, the others as isLowerLDH wants them.
func isLowerPrefix(s string) bool {
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > maxLabelLen {
			return false
		}
		if strings.IndexByte(label, '_') < 0 {
			if !isLowerLDH(label) {
				return false
			}
			continue
		}
		for i := 0; i < len(label); i++ {
			if !isUnderscoreLabelByte(label[i]) {
				return false
			}
		}
	}
	return true
}

// isUnderscoreLabelByte reports whether c may appear in a lower-cased
// underscore label.
func isUnderscoreLabelByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// nameReason returns the reason of a *NameError, or the error's text.
func nameReason(err error) string {
	if ne, ok := err.(*NameError); ok {
		return ne.Reason
	}
	return err.Error()
}
