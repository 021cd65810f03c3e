package track

import (
	"errors"
	"net/url"
	"strings"
)

// trackable returns the URL to pass to the link function for an href value
// (already entity-decoded), and whether the link is tracked at all.
//
// The value is first trimmed of leading and trailing C0 controls and
// spaces, as the WHATWG URL parser does. An absolute http or https URL
// (scheme in any case) that net/url can parse, with a host, is returned as
// written; anything else with a scheme is not tracked. Without a scheme
// the value is resolved against base, if there is one, and the result is
// returned as net/url writes it. Fragment-only references (#top) are never
// tracked, with or without a base.
func trackable(v string, base *url.URL) (string, bool) {
	s := trimC0(v)
	if s == "" || s[0] == '#' {
		return "", false
	}
	if scheme, ok := schemeOf(s); ok {
		if !strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") {
			return "", false
		}
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return "", false
		}
		return s, true
	}
	if base == nil {
		return "", false
	}
	ref, err := url.Parse(s)
	if err != nil {
		return "", false
	}
	u := base.ResolveReference(ref)
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", false
	}
	return u.String(), true
}

// trimC0 removes leading and trailing C0 controls and spaces.
func trimC0(s string) string {
	i, j := 0, len(s)
	for i < j && s[i] <= ' ' {
		i++
	}
	for j > i && s[j-1] <= ' ' {
		j--
	}
	return s[i:j]
}

// schemeOf returns the scheme of s if s starts with one (RFC 3986 §3.1:
// ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":").
func schemeOf(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.':
			if i == 0 {
				return "", false
			}
		case c == ':':
			return s[:i], i > 0
		default:
			return "", false
		}
	}
	return "", false
}

// needsBase reports whether the href value v is a reference that a base
// URL would resolve: not empty, not a fragment, without a scheme.
func needsBase(v string) bool {
	s := trimC0(v)
	_, abs := schemeOf(s)
	return s != "" && s[0] != '#' && !abs
}

// parseBase returns the document base URL for a <base href> value, or nil
// if the value is not an absolute URL: a relative base would resolve
// against the message's own address, and a message has none.
func parseBase(v string) *url.URL {
	s := trimC0(v)
	if _, ok := schemeOf(s); !ok {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil
	}
	return u
}

// checkPixel validates the open-tracking image URL given to RewriteHTML.
func checkPixel(p string) error {
	if strings.ContainsAny(p, "\r\n") {
		return errors.New("track: pixel URL contains a line break")
	}
	u, err := url.Parse(p)
	if err != nil {
		return errors.New("track: pixel URL: " + err.Error())
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return errors.New("track: pixel URL must be an absolute http or https URL")
	}
	return nil
}

// appendEscaped appends s to dst escaped for an HTML attribute value, the
// way html.EscapeString does: & < > " ' become entities.
func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			dst = append(dst, "&amp;"...)
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '"':
			dst = append(dst, "&#34;"...)
		case '\'':
			dst = append(dst, "&#39;"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// unquotedOK reports whether the escaped value v can be written as an
// unquoted attribute value (WHATWG HTML §13.1.2.3: not empty, and no
// whitespace, ", ', =, <, > or `).
func unquotedOK(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		switch c {
		case ' ', '\t', '\n', '\f', '\r', '"', '\'', '=', '<', '>', '`':
			return false
		}
	}
	return true
}
