package mime

import (
	"strings"
	"unicode/utf8"
)

// Header lines are folded at lineLimit columns where a fold is possible
// (RFC 5322 §2.1.1: 78 recommended, 998 hard). Encoded-words are at most
// maxWord characters (RFC 2047 §2).
const (
	lineLimit = 78
	maxWord   = 75
	// maxPlainWord is the longest run of non-space characters written as
	// is in an unstructured header; longer runs are encoded so that they
	// can be folded.
	maxPlainWord = 64
)

const upperHex = "0123456789ABCDEF"

// checkText returns why s cannot become header text, or "".
func checkText(s string) string {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\r', '\n':
			return "contains CR or LF"
		case 0:
			return "contains NUL"
		}
	}
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	return ""
}

// maxHeaderName keeps a header name and the start of its value on one
// 78-column line.
const maxHeaderName = 64

// validHeaderName reports whether name is RFC 5322 §2.2 ftext of at most
// maxHeaderName characters.
func validHeaderName(name string) bool {
	if name == "" || len(name) > maxHeaderName {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// looksEncoded reports whether s contains "=?", which a decoder could take
// for the start of an RFC 2047 encoded-word.
func looksEncoded(s string) bool { return strings.Contains(s, "=?") }

// plainUnstructured reports whether s can be written as is in an unstructured
// header and read back unchanged: printable ASCII, single spaces, no space at
// either end, nothing that looks like an encoded-word and no word too long to
// fold.
func plainUnstructured(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' || looksEncoded(s) {
		return false
	}
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return false
		}
		if c == ' ' {
			if s[i-1] == ' ' {
				return false
			}
			run = 0
			continue
		}
		if run++; run > maxPlainWord {
			return false
		}
	}
	return true
}

// appendUnstructured appends "Name: value" CRLF, folded, with RFC 2047
// encoded-words when the value is not plain ASCII.
func appendUnstructured(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, ':')
	if value == "" {
		return append(dst, "\r\n"...)
	}
	dst = append(dst, ' ')
	col := len(name) + 2
	if plainUnstructured(value) {
		dst = appendFolded(dst, value, col)
	} else {
		dst, _ = appendEncodedWords(dst, value, col)
	}
	return append(dst, "\r\n"...)
}

// appendFolded appends s, which has single spaces only, breaking lines before
// a space so that they stay within lineLimit where possible.
func appendFolded(dst []byte, s string, col int) []byte {
	for col+len(s) > lineLimit {
		i := -1
		if limit := lineLimit - col; limit >= 0 {
			i = strings.LastIndexByte(s[:limit+1], ' ')
		}
		if i <= 0 {
			// The first word does not fit: break after it instead.
			j := strings.IndexByte(s[1:], ' ')
			if j < 0 {
				break
			}
			i = j + 1
		}
		dst = append(dst, s[:i]...)
		dst = append(dst, "\r\n"...)
		s = s[i:] // starts with the space that is now the fold's WSP
		col = 0
	}
	return append(dst, s...)
}

// qLiteral marks the characters written as themselves in a "Q" encoded-word:
// RFC 2047 §5 (3), the strictest rule, which is safe in every context.
var qLiteral = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!*+-/" {
		t[c] = true
	}
	return t
}()

func qLen(c byte) int {
	if qLiteral[c] || c == ' ' {
		return 1
	}
	return 3
}

// appendEncodedWords appends s as RFC 2047 encoded-words in UTF-8, starting at
// column col. Each word holds whole runes and is at most 75 characters; words
// are separated by a space or a fold so that lines stay within lineLimit. It
// returns the new column.
func appendEncodedWords(dst []byte, s string, col int) ([]byte, int) {
	q := 0
	for i := 0; i < len(s); i++ {
		q += qLen(s[i])
	}
	// Q reads better for mostly-ASCII text: prefer it unless it is half
	// again as long as B.
	b := (len(s) + 2) / 3 * 4
	useQ := q <= b+b/2
	const overhead = len("=?utf-8?q?") + len("?=")
	first := true
	for first || s != "" {
		var room int
		if first {
			room = min(maxWord, lineLimit-col) - overhead
			if room < 12 {
				dst = append(dst, "\r\n "...)
				col = 1
				room = min(maxWord, lineLimit-col) - overhead
			}
		} else {
			room = min(maxWord, lineLimit-col-1) - overhead
			if room < 16 {
				dst = append(dst, "\r\n "...)
				col = 1
				room = min(maxWord, lineLimit-col) - overhead
			} else {
				dst = append(dst, ' ')
				col++
			}
		}
		first = false
		// Take as many whole runes as fit in room.
		n, w := 0, 0
		for n < len(s) {
			_, size := utf8.DecodeRuneInString(s[n:])
			var add int
			if useQ {
				for k := n; k < n+size; k++ {
					add += qLen(s[k])
				}
				if w+add > room {
					break
				}
				w += add
			} else {
				if (n+size+2)/3*4 > room {
					break
				}
				w = (n + size + 2) / 3 * 4
			}
			n += size
		}
		if n == 0 && s != "" { // cannot happen with room >= 12
			n = len(s)
		}
		start := len(dst)
		if useQ {
			dst = append(dst, "=?utf-8?q?"...)
			for k := 0; k < n; k++ {
				c := s[k]
				switch {
				case qLiteral[c]:
					dst = append(dst, c)
				case c == ' ':
					dst = append(dst, '_')
				default:
					dst = append(dst, '=', upperHex[c>>4], upperHex[c&15])
				}
			}
		} else {
			dst = append(dst, "=?utf-8?b?"...)
			dst = b64.AppendEncode(dst, []byte(s[:n]))
		}
		dst = append(dst, "?="...)
		col += len(dst) - start
		s = s[n:]
	}
	return dst, col
}
