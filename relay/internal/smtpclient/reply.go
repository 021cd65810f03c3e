package smtpclient

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Defaults for the bounds on a server's reply. RFC 5321 §4.5.3.1.5 allows 512
// octets a reply line; real servers sometimes send more, so the default is
// generous but still small.
const (
	DefaultMaxReplyLineLength = 2000 // octets, CRLF included
	DefaultMaxReplyLines      = 100
)

// Reply is one server reply, possibly multi-line (RFC 5321 §4.2).
type Reply struct {
	Code     int      // three-digit reply code
	Enhanced string   // RFC 3463 enhanced status code ("2.1.5") from any line, if any
	Lines    []string // the text of each line after the code and separator
}

// Positive reports a 2xx reply.
func (r Reply) Positive() bool { return r.Code >= 200 && r.Code <= 299 }

// Text is the reply's text: the lines joined by "; ", each without its
// leading enhanced status code.
func (r Reply) Text() string {
	switch len(r.Lines) {
	case 0:
		return ""
	case 1:
		return stripEnhanced(r.Lines[0])
	}
	parts := make([]string, len(r.Lines))
	for i, l := range r.Lines {
		parts[i] = stripEnhanced(l)
	}
	return strings.Join(parts, "; ")
}

// String formats the reply as "CODE ENHANCED text".
func (r Reply) String() string {
	s := fmt.Sprintf("%d", r.Code)
	if r.Enhanced != "" {
		s += " " + r.Enhanced
	}
	if t := r.Text(); t != "" {
		s += " " + t
	}
	return s
}

// stripEnhanced removes a leading enhanced status code and the spaces after it.
func stripEnhanced(s string) string {
	if n := enhancedLen(s); n > 0 {
		return strings.TrimLeft(s[n:], " ")
	}
	return s
}

// enhancedLen returns the length of the enhanced status code
// class.subject.detail (RFC 3463 §2: class 2, 4 or 5, subject 1-3 digits,
// detail 1-3 digits) at the start of s, followed by a space or the end, or 0.
func enhancedLen(s string) int {
	if len(s) < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.' {
		return 0
	}
	i := 2
	for part := 0; part < 2; part++ {
		start := i
		for i < len(s) && i-start < 4 && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if n := i - start; n < 1 || n > 3 {
			return 0
		}
		if part == 0 {
			if i >= len(s) || s[i] != '.' {
				return 0
			}
			i++
		}
	}
	if i < len(s) && s[i] != ' ' {
		return 0
	}
	return i
}

// replyReader reads bounded replies.
type replyReader struct {
	r        *bufio.Reader
	maxLine  int
	maxLines int
}

// protoErr wraps ErrProtocol with a reason.
func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

// readLine reads one line, without its CRLF (a bare LF is tolerated), and
// never buffers more than maxLine octets of it.
func (rr *replyReader) readLine() ([]byte, error) {
	line, err := rr.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, protoErr("reply line longer than %d octets", rr.maxLine)
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if len(line) > rr.maxLine {
		return nil, protoErr("reply line longer than %d octets", rr.maxLine)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// read reads one whole reply.
func (rr *replyReader) read() (Reply, error) {
	var r Reply
	for n := 0; ; n++ {
		if n >= rr.maxLines {
			return Reply{}, protoErr("reply longer than %d lines", rr.maxLines)
		}
		line, err := rr.readLine()
		if err != nil {
			return Reply{}, err
		}
		code, more, text, err := parseReplyLine(line)
		if err != nil {
			return Reply{}, err
		}
		if n == 0 {
			r.Code = code
		} else if code != r.Code {
			return Reply{}, protoErr("reply code changed from %d to %d within a reply", r.Code, code)
		}
		s := printable(text)
		if r.Enhanced == "" {
			if k := enhancedLen(s); k > 0 && s[0] == byte('0'+code/100) {
				r.Enhanced = s[:k]
			}
		}
		r.Lines = append(r.Lines, s)
		if !more {
			return r, nil
		}
	}
}

// printable returns the server's text safe to log and show: printable
// ASCII and printable UTF-8 stay, while control bytes (ESC, NUL,
// backspace, a lone CR), DEL and invalid UTF-8 become \xNN and other
// non-printing runes (bidirectional overrides, zero-width marks) \uNNNN
// (\UNNNNNNNN beyond U+FFFF).
// A reply's text reaches results, events and logs; a hostile server must
// not be able to drive a terminal or fake a log line through it.
func printable(b []byte) string {
	clean := true
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return string(b)
	}
	const hex = "0123456789abcdef"
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		c := b[i]
		if c >= 0x20 && c < 0x7f {
			out = append(out, c)
			i++
			continue
		}
		r, n := rune(c), 1
		if c >= utf8.RuneSelf {
			r, n = utf8.DecodeRune(b[i:])
		}
		switch {
		case r == utf8.RuneError && n == 1, r < 0x20, r == 0x7f:
			out = append(out, '\\', 'x', hex[c>>4], hex[c&0xf])
		case !unicode.IsPrint(r):
			u, top := byte('u'), 12
			if r > 0xffff {
				u, top = 'U', 28
			}
			out = append(out, '\\', u)
			for shift := top; shift >= 0; shift -= 4 {
				out = append(out, hex[(r>>shift)&0xf])
			}
		default:
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return string(out)
}

// parseReplyLine splits "250-text" / "250 text" / "250" (RFC 5321 §4.2).
// The code's first digit must be 2-5 and its second 0-5 (§4.2.1).
func parseReplyLine(line []byte) (code int, more bool, text []byte, err error) {
	if len(line) < 3 ||
		line[0] < '2' || line[0] > '5' ||
		line[1] < '0' || line[1] > '5' ||
		line[2] < '0' || line[2] > '9' {
		return 0, false, nil, protoErr("malformed reply line %q", truncate(line))
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if len(line) == 3 {
		return code, false, nil, nil
	}
	switch line[3] {
	case ' ':
		return code, false, line[4:], nil
	case '-':
		return code, true, line[4:], nil
	}
	return 0, false, nil, protoErr("malformed reply line %q", truncate(line))
}

// truncate shortens hostile input quoted in an error.
func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
