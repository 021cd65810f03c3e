package track

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// RewriteText rewrites the http and https URLs of a text/plain body
// (decoded, not quoted-printable) through link, which returns the URL to
// write in its place, or false to leave it.
//
// A URL starts at "http://" or "https://" (in any case) at the start of a
// whitespace-delimited word or after a non-alphanumeric character, as in
// "<https://…>" or "(https://…)", and runs to the end of the word. Trailing
// punctuation . , ; : ! ? ' " and closing ) ] } > stay outside it, except a
// closing bracket that matches an opening one inside the URL, as in
// "https://en.wikipedia.org/wiki/Mail_(protocol)". Candidates net/url cannot
// parse, or without a host, are left alone. Everything else is kept byte for
// byte; a nil link returns text unchanged.
func RewriteText(text string, link func(u string) (string, bool)) string {
	if link == nil {
		return text
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(text); {
		start, end := nextTextURL(text, i)
		if start < 0 {
			break
		}
		i = end
		u := text[start:end]
		if nu, ok := link(u); ok && nu != u {
			if b.Len() == 0 {
				b.Grow(len(text) + 64)
			}
			b.WriteString(text[last:start])
			b.WriteString(nu)
			last = end
		}
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// nextTextURL returns the bounds of the first URL in text at or after i, or
// -1, -1 if there is none.
func nextTextURL(text string, i int) (int, int) {
	for i < len(text) {
		k := indexHTTP(text, i)
		if k < 0 {
			return -1, -1
		}
		if k > 0 && isAlnum(text[k-1]) {
			i = k + 4
			continue
		}
		end := wordEnd(text, k)
		end = trimURLEnd(text[k:end]) + k
		if u, err := url.Parse(text[k:end]); err == nil && u.Host != "" {
			return k, end
		}
		i = end
		if i <= k {
			i = k + 4
		}
	}
	return -1, -1
}

// indexHTTP returns the index of the first "http://" or "https://", in any
// case, in text at or after i, or -1.
func indexHTTP(text string, i int) int {
	for ; i+7 <= len(text); i++ {
		if c := text[i]; c != 'h' && c != 'H' {
			continue
		}
		s := text[i:]
		if len(s) >= 7 && strings.EqualFold(s[:7], "http://") ||
			len(s) >= 8 && strings.EqualFold(s[:8], "https://") {
			return i
		}
	}
	return -1
}

// wordEnd returns the index of the first whitespace at or after i, or len(text).
func wordEnd(text string, i int) int {
	for i < len(text) {
		c := text[i]
		if c < utf8.RuneSelf {
			if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(text[i:])
		if unicode.IsSpace(r) {
			return i
		}
		i += n
	}
	return i
}

// trimURLEnd returns the length of u without its trailing punctuation.
func trimURLEnd(u string) int {
	n := len(u)
	for n > 0 {
		switch c := u[n-1]; c {
		case '.', ',', ';', ':', '!', '?', '\'', '"':
			n--
			continue
		case ')', ']', '}', '>':
			p := bracketPair(c)
			if strings.Count(u[:n], p[:1]) >= strings.Count(u[:n], p[1:]) {
				return n
			}
			n--
			continue
		}
		return n
	}
	return n
}

// bracketPair returns the opening and closing bracket for closing bracket c.
func bracketPair(c byte) string {
	switch c {
	case ')':
		return "()"
	case ']':
		return "[]"
	case '}':
		return "{}"
	}
	return "<>"
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
