package bounce

import "strings"

// status is an RFC 3463 enhanced status code, class.subject.detail: a class
// of 2, 4 or 5 and two sub-codes of one to three digits (§2). A leading zero
// in a sub-code, which §2 forbids senders, is accepted.
type status struct {
	class, subject, detail int
	ok                     bool // false: no status code
}

// parseStatus reads s as a whole enhanced status code such as "5.1.1".
func parseStatus(s string) status {
	st, n := scanStatus(s)
	if n != len(s) {
		return status{}
	}
	return st
}

// scanStatus reads an enhanced status code at the start of s and returns it
// with the number of bytes it took, or the zero status and 0. The code must
// not run on into more digits or dots ("5.1.1.1" is an address, not a code).
func scanStatus(s string) (status, int) {
	var st status
	i := 0
	if i >= len(s) || (s[i] != '2' && s[i] != '4' && s[i] != '5') {
		return status{}, 0
	}
	st.class = int(s[i] - '0')
	i++
	for part := 0; part < 2; part++ {
		if i >= len(s) || s[i] != '.' {
			return status{}, 0
		}
		i++
		v, n := scanNumber(s[i:], 3)
		if n == 0 {
			return status{}, 0
		}
		i += n
		if part == 0 {
			st.subject = v
		} else {
			st.detail = v
		}
	}
	if i < len(s) && (s[i] == '.' || isDigit(s[i])) {
		return status{}, 0
	}
	st.ok = true
	return st, i
}

// scanNumber reads 1..max digits at the start of s.
func scanNumber(s string, max int) (v, n int) {
	for n < len(s) && n < max && isDigit(s[n]) {
		v = v*10 + int(s[n]-'0')
		n++
	}
	if n < len(s) && isDigit(s[n]) {
		return 0, 0 // too many digits
	}
	return v, n
}

// scanCode reads a three-digit reply code 2xx..5xx at the start of s,
// followed by a space, a hyphen (a multi-line reply) or the end.
func scanCode(s string) (int, int) {
	if len(s) < 3 || s[0] < '2' || s[0] > '5' || !isDigit(s[1]) || !isDigit(s[2]) {
		return 0, 0
	}
	if len(s) > 3 && s[3] != ' ' && s[3] != '-' && s[3] != '\t' && s[3] != '\r' && s[3] != '\n' {
		return 0, 0
	}
	return int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0'), 3
}

// fromText finds the reply code and enhanced status code that a reply text
// or a DSN's Diagnostic-Code carries, for the arguments that lack them:
//
//   - "550 5.1.1 <a@b>: ..." and "550-5.1.1 ..." (a reply as text),
//   - "smtp; 550 5.1.1 ..." and "X-Postfix; ..." (RFC 3464 §2.3.6: a
//     diagnostic type before the semicolon),
//   - "5.1.1 ..." (a status without a reply code),
//   - "550 cuda_nsu 5.1.1 ...": after a leading reply code, the first
//     enhanced code standing alone,
//   - otherwise the first "550 5.1.1" pair anywhere ("host x said: 550
//     5.1.1 ...", "Remote Server returned '550 5.1.10 ..."), then a reply
//     code quoted after a colon (see quotedCode) and the first enhanced
//     code standing alone (qmail's "(#5.1.1)").
//
// An enhanced code found apart from the reply code counts only if its
// class agrees with the reply code's, so that "550 ... filter 4.5.6" is
// not made temporary. Like the phrases, only the first maxText bytes are
// read.
func fromText(text string) (code int, st status) {
	if len(text) > maxText {
		text = text[:maxText]
	}
	code, st, rest := leading(text)
	switch {
	case st.ok:
		return code, st
	case code != 0:
		return code, loneStatus(rest, code/100)
	}
	return scanAnywhere(text)
}

// leading reads the reply code and the enhanced status code that start a
// text, after an optional diagnostic type, and returns what follows them.
func leading(text string) (code int, st status, rest string) {
	s := strings.TrimLeft(text, " \t\r\n")
	s = skipDiagnosticType(s)
	if c, n := scanCode(s); n > 0 {
		code = c
		s = strings.TrimLeft(s[n:], " -\t")
	}
	if v, n := scanStatus(s); n > 0 {
		return code, v, s[n:]
	}
	return code, status{}, s
}

// skipDiagnosticType drops "smtp;" or "X-Postfix;" and the spaces after it.
func skipDiagnosticType(s string) string {
	for i := 0; i < len(s) && i < 24; i++ {
		c := s[i]
		if c == ';' && i > 0 {
			return strings.TrimLeft(s[i+1:], " \t")
		}
		if !isAlnum(c) && c != '-' {
			break
		}
	}
	return s
}

// scanAnywhere looks through the whole text, as fromText describes.
func scanAnywhere(s string) (code int, st status) {
	for i := 0; i+3 <= len(s); i++ {
		if i > 0 && (isAlnum(s[i-1]) || s[i-1] == '.') {
			continue
		}
		c, n := scanCode(s[i:])
		if n == 0 {
			continue
		}
		rest := strings.TrimLeft(s[i+n:], " -\t")
		if v, m := scanStatus(rest); m > 0 && v.class == c/100 {
			return c, v
		}
	}
	code = quotedCode(s)
	return code, loneStatus(s, code/100)
}

// quotedCode returns the first reply code that follows a colon, a quote or
// a parenthesis, as MTAs quote a remote reply: Postfix's "host x said: 550
// ...", qmail's "Remote host said: 554 ...", Exim's "SMTP error from remote
// mail server after RCPT TO:<a@b>: 550 ...", Exchange's "Remote Server
// returned '550 ...'".
func quotedCode(s string) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ':', '\'', '"', '(':
		default:
			continue
		}
		rest := strings.TrimLeft(s[i+1:], " \t\r\n")
		if c, n := scanCode(rest); n > 0 {
			return c
		}
	}
	return 0
}

// loneStatus returns the first enhanced status code in s that stands as a
// token of its own ("(#5.1.1)", "cuda_nsu 5.1.1"), not inside a number, if
// its class is class; class 0 takes any.
func loneStatus(s string, class int) status {
	for i := 0; i < len(s); i++ {
		if i > 0 && (isAlnum(s[i-1]) || s[i-1] == '.') {
			continue
		}
		if v, n := scanStatus(s[i:]); n > 0 {
			if class != 0 && v.class != class {
				return status{}
			}
			return v
		}
	}
	return status{}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}
