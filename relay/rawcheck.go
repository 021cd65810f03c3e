package relay

import (
	"bytes"
	"fmt"
)

// maxLineOctets is the longest line RFC 5322 §2.1.1 and RFC 5321
// §4.5.3.1.6 allow, without its CRLF.
const maxLineOctets = 998

// MessageError says why SendRaw refused a message's bytes: where the
// first offending byte is and what is wrong with it. It wraps
// ErrInvalidMessage.
type MessageError struct {
	Line   int    // 1-based line number
	Offset int    // byte offset of the offending byte from the start of the message
	Reason string // "lone CR", "NUL byte", "line over 998 octets"
}

// Error says where the message is malformed and how.
func (e *MessageError) Error() string {
	return fmt.Sprintf("relay: invalid message: line %d (byte %d): %s", e.Line, e.Offset, e.Reason)
}

// Unwrap returns ErrInvalidMessage.
func (e *MessageError) Unwrap() error { return ErrInvalidMessage }

// checkRaw applies SendRaw's policy to a message written elsewhere and
// returns the bytes to sign and send.
//
// Lines may end in CRLF or in a bare LF (as Unix tools write them); bare
// LFs become CRLF here, before signing, so that the signer and the wire
// see the same bytes. Everything else that is not RFC 5322 is refused,
// never repaired: a CR not followed by LF (receivers disagree on whether
// it ends a line, so in a header it could start a new field), a NUL, and a
// line over 998 octets. This is stricter than Postfix, which passes such
// bytes on and leaves the receiver to decide.
func checkRaw(data []byte) ([]byte, error) {
	bare := 0 // lines ending in a bare LF
	for off, line := 0, 1; off < len(data); line++ {
		text, next := data[off:], len(data)
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			text, next = text[:i], off+i+1
			if n := len(text); n > 0 && text[n-1] == '\r' {
				text = text[:n-1]
			} else {
				bare++
			}
		}
		if i := bytes.IndexByte(text, '\r'); i >= 0 {
			return nil, &MessageError{Line: line, Offset: off + i, Reason: "lone CR"}
		}
		if i := bytes.IndexByte(text, 0); i >= 0 {
			return nil, &MessageError{Line: line, Offset: off + i, Reason: "NUL byte"}
		}
		if len(text) > maxLineOctets {
			return nil, &MessageError{Line: line, Offset: off + maxLineOctets, Reason: fmt.Sprintf("line over %d octets", maxLineOctets)}
		}
		off = next
	}
	if bare == 0 {
		return data, nil
	}
	out := make([]byte, 0, len(data)+bare)
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			out = append(out, data...)
			break
		}
		out = append(out, data[:i]...)
		if i == 0 || data[i-1] != '\r' {
			out = append(out, '\r')
		}
		out = append(out, '\n')
		data = data[i+1:]
	}
	return out, nil
}
