package mime

import (
	"encoding/base64"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf8"
)

// Content-Transfer-Encodings (RFC 2045 §6).
type cte uint8

const (
	cte7bit cte = iota
	cteQP
	cteBase64
)

func (c cte) String() string {
	switch c {
	case cte7bit:
		return "7bit"
	case cteQP:
		return "quoted-printable"
	}
	return "base64"
}

var b64 = base64.StdEncoding

// Body lines written as 7bit are at most max7bitLine octets; RFC 5322 allows
// 998, but 78 keeps text readable and DKIM-robust, and quoted-printable
// handles everything else.
const max7bitLine = 78

// qpSafe marks the bytes quoted-printable writes as themselves (RFC 2045
// §6.7 rule 2: 33-60, 62-126). Space and tab are handled separately.
var qpSafe = func() (t [256]bool) {
	for c := 33; c <= 126; c++ {
		t[c] = c != '='
	}
	return t
}()

// textStats describes a Text or HTML body.
type textStats struct {
	enc     cte
	special int  // bytes quoted-printable must encode
	lines   int  // line breaks
	invalid bool // not valid UTF-8
	crlf    bool // every line break is CRLF
}

// Byte classes for scanText.
const (
	clPlain   = iota // printable ASCII other than the ones below
	clSpace          // space, tab
	clBreak          // CR, LF
	clEquals         // '=': fine in 7bit, encoded by quoted-printable
	clUnder          // '_': "=_" starts our boundaries
	clSpecial        // controls, DEL, non-ASCII: quoted-printable
)

var textClass = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c == ' ' || c == '\t':
			t[c] = clSpace
		case c == '\r' || c == '\n':
			t[c] = clBreak
		case c == '=':
			t[c] = clEquals
		case c == '_':
			t[c] = clUnder
		case c > 32 && c < 127:
			t[c] = clPlain
		default:
			t[c] = clSpecial
		}
	}
	return t
}()

// scanText chooses 7bit or quoted-printable for s (RFC 2045 §2.7, §6.7): 7bit
// only for printable ASCII (and tab) with short lines, no trailing
// whitespace, and no "=_", the prefix of our boundaries, so that a 7bit body
// can never contain a boundary delimiter.
func scanText(s string) textStats {
	st := textStats{enc: cte7bit, crlf: true}
	lineStart := 0
	for i := 0; i < len(s); i++ {
		// Step over plain text and spaces eight bytes at a time, to the
		// first byte that is not printable ASCII or is '=' or '_', then
		// byte by byte near the end; spaces only matter before a line
		// break, where they are looked at again.
		for i+8 <= len(s) {
			if m := specialWord(le64(s[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		for i < len(s) && textClass[s[i]] <= clSpace {
			i++
		}
		if i == len(s) {
			break
		}
		switch textClass[s[i]] {
		case clPlain, clSpace:
		case clBreak:
			if i-lineStart > max7bitLine || i > lineStart && textClass[s[i-1]] == clSpace {
				st.enc = cteQP
			}
			if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
				i++
			} else {
				st.crlf = false
			}
			st.lines++
			lineStart = i + 1
		case clEquals:
			st.special++
		case clUnder:
			if i > 0 && s[i-1] == '=' {
				st.enc = cteQP
			}
		default:
			st.enc = cteQP
			if c := s[i]; c >= utf8.RuneSelf {
				r, size := utf8.DecodeRuneInString(s[i:])
				if r == utf8.RuneError && size == 1 {
					st.invalid = true
				}
				st.special += size
				i += size - 1
				continue
			}
			st.special++
		}
	}
	if n := len(s); n-lineStart > max7bitLine || n > lineStart && textClass[s[n-1]] == clSpace {
		st.enc = cteQP
	}
	return st
}

// SWAR constants: a byte value repeated in every byte of a word.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special8 tests the eight bytes of b as one little-endian word: the high
// bit of byte k of the result is set if b[k] is not printable ASCII
// (space to '~') or is '=' or '_' — exactly for the first such byte,
// which bits.TrailingZeros64 finds; 0 if there is none. The four tests
// are the classic "has a byte less than / more than / equal to" tricks;
// a borrow or carry only ever moves up from a byte that is itself
// flagged, so nothing below the first flagged byte is flagged wrongly.
// It is two functions so that both are inlined.
func special8(b string) uint64 { return specialWord(le64(b)) }

// le64 is the first eight bytes of b as a little-endian word (one load).
func le64(b string) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// specialWord is special8 of the bytes of w.
func specialWord(w uint64) uint64 {
	eq, under := w^(ones*'='), w^(ones*'_') // a zero byte where w has '=', '_'
	return ((w-ones*0x20)&^w | (w + ones) | w | (eq-ones)&^eq | (under-ones)&^under) & highs
}

// textSize is an upper bound of the encoded size of s.
func textSize(s string, st textStats) int {
	n := len(s) + st.lines + 2
	if st.enc == cteQP {
		n += 2*st.special + 2*len(s)/70*3/2 + 3*st.lines + 16
	}
	return n
}

// append7bit appends s with every line break made CRLF, ending in CRLF.
// crlf says every line break of s is CRLF already (textStats.crlf): then
// s is copied whole.
func append7bit(dst []byte, s string, crlf bool) []byte {
	if crlf {
		dst = append(dst, s...)
		if len(s) > 0 && !strings.HasSuffix(s, "\r\n") {
			dst = append(dst, "\r\n"...)
		}
		return dst
	}
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\r' && s[i] != '\n' {
			i++
		}
		dst = append(dst, s[:i]...)
		dst = append(dst, "\r\n"...)
		if i < len(s) && s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return dst
}

// maxQPLine is the longest encoded line, soft break "=" included (RFC 2045
// §6.7 rule 5).
const maxQPLine = 76

// appendQP appends s quoted-printable encoded (RFC 2045 §6.7). Every line
// break of s, whatever its form, becomes a hard CRLF; the result ends in
// CRLF.
func appendQP(dst []byte, s string) []byte {
	col := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\r' || c == '\n' {
			dst = append(dst, "\r\n"...)
			col = 0
			if c == '\r' && i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			i++
			continue
		}
		if qpSafe[c] {
			// Copy a run of literal bytes, as much as fits on the line.
			// Inside the run, whitespace is literal unless it ends a line.
			j, end := i+1, min(len(s), i+maxQPLine-1-col)
			for j < end {
				if d := s[j]; !qpSafe[d] {
					if d != ' ' && d != '\t' || j+1 == len(s) || s[j+1] == '\r' || s[j+1] == '\n' {
						break
					}
				}
				j++
			}
			if col+(j-i) > maxQPLine-1 {
				dst = append(dst, "=\r\n"...)
				col = 0
				continue
			}
			// Keep one column free for a soft break unless the line ends.
			dst = append(dst, s[i:j]...)
			col += j - i
			i = j
			continue
		}
		literal := c == ' ' || c == '\t'
		if literal && (i+1 == len(s) || s[i+1] == '\r' || s[i+1] == '\n') {
			literal = false // trailing whitespace must be encoded (rule 3)
		}
		w := 3
		if literal {
			w = 1
		}
		if col+w > maxQPLine-1 {
			dst = append(dst, "=\r\n"...)
			col = 0
		}
		if literal {
			dst = append(dst, c)
		} else {
			dst = append(dst, '=', upperHex[c>>4], upperHex[c&15])
		}
		col += w
		i++
	}
	if col > 0 {
		dst = append(dst, "\r\n"...)
	}
	return dst
}

// base64Line is the number of input bytes per 76-column output line.
const base64Line = 57

func base64Size(n int) int { return (n+2)/3*4 + 2*((n+base64Line-1)/base64Line) }

// appendBase64 appends data base64 encoded in lines of 76 characters, each
// ending in CRLF (RFC 2045 §6.8).
func appendBase64(dst []byte, data []byte) []byte {
	start, size := len(dst), base64Size(len(data))
	dst = slices.Grow(dst, size)[:start+size] // no clearing when it fits
	out := dst[start:]
	for len(data) > 0 {
		n := min(len(data), base64Line)
		b64.Encode(out, data[:n])
		w := (n + 2) / 3 * 4
		out[w], out[w+1] = '\r', '\n'
		out = out[w+2:]
		data = data[n:]
	}
	return dst
}
