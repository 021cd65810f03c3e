package mime

import (
	"bytes"
	"net/mail"
)

// maxPlainName is the longest display name written as an atom phrase or a
// quoted-string; longer names are encoded-words, which fold cleanly.
const maxPlainName = 64

// appendAddressHeader appends "Name: mailbox, mailbox" CRLF, folding
// between mailboxes (and inside them) to keep lines within lineLimit.
func appendAddressHeader(dst []byte, name string, addrs []mail.Address, specs []addrSpec) []byte {
	dst = append(dst, name...)
	dst = append(dst, ':')
	col := len(name) + 1
	for i := range specs {
		if i > 0 {
			dst = append(dst, ',')
			col++
		}
		start := len(dst)
		dst = append(dst, ' ')
		// Rendered as if it began a continuation line (column 1).
		dst = appendMailbox(dst, addrs[i].Name, specs[i])
		first := bytes.Index(dst[start:], crlf)
		if first < 0 {
			first = len(dst) - start
		}
		if col+first > lineLimit {
			dst = append(dst, 0, 0)
			copy(dst[start+2:], dst[start:])
			dst[start], dst[start+1] = '\r', '\n'
		}
		col = len(dst) - (bytes.LastIndex(dst, crlf) + 2)
	}
	return append(dst, "\r\n"...)
}

var crlf = []byte("\r\n")

// appendMailbox appends `name <spec>`, or spec alone without a name, where
// the name is an atom phrase, a quoted-string or RFC 2047 encoded-words,
// whichever reads back unchanged (RFC 5322 §3.4, RFC 2047 §5 (3)).
func appendMailbox(dst []byte, name string, spec addrSpec) []byte {
	if name == "" {
		dst = append(dst, spec.local...)
		dst = append(dst, '@')
		return append(dst, spec.domain...)
	}
	col := 1
	switch nameForm(name) {
	case formAtoms:
		dst = append(dst, name...)
		col += len(name)
	case formQuoted:
		dst = append(dst, '"')
		for i := 0; i < len(name); i++ {
			if name[i] == '"' || name[i] == '\\' {
				dst = append(dst, '\\')
				col++
			}
			dst = append(dst, name[i])
		}
		dst = append(dst, '"')
		col += len(name) + 2
	default:
		dst, col = appendEncodedWords(dst, name, col)
	}
	if col+len(spec.local)+len(spec.domain)+4 > lineLimit {
		dst = append(dst, "\r\n <"...)
	} else {
		dst = append(dst, " <"...)
	}
	dst = append(dst, spec.local...)
	dst = append(dst, '@')
	dst = append(dst, spec.domain...)
	return append(dst, '>')
}

type displayForm uint8

const (
	formAtoms displayForm = iota
	formQuoted
	formEncoded
)

// nameForm picks how a display name is written.
func nameForm(s string) displayForm {
	if len(s) > maxPlainName || looksEncoded(s) {
		return formEncoded
	}
	form := formAtoms
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		form = formQuoted
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c < 0x20 || c > 0x7e:
			return formEncoded
		case c == ' ':
			if i > 0 && s[i-1] == ' ' {
				form = formQuoted
			}
		case !isAtext(c):
			form = formQuoted
		}
	}
	return form
}
