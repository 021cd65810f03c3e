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
