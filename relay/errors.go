package relay

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mxrelay/mxrelay/internal/netguard"
)

// Sentinel errors for the named conditions. Every error the package returns
// for them wraps one of these, so errors.Is works.
var (
	// ErrForbiddenAddress: the MX address is loopback, private, link-local
	// or otherwise not a public mail server, and AllowPrivateAddrs is false.
	// It is the sentinel of the address filter the package shares with
	// mx's MTA-STS policy fetcher, so errors.Is matches either way.
	ErrForbiddenAddress = netguard.ErrForbidden
	// ErrTLSRequired: the TLS policy (MTA-STS enforce, DANE or
	// RequireTLS) demands a verified TLS session that could not be had.
	ErrTLSRequired = errors.New("relay: TLS required by policy")
	// ErrNoStore: Enqueue or Run was called on a Client without a Store.
	ErrNoStore = errors.New("relay: no Store")
	// ErrInvalidEnvelope: an envelope address or the EHLO name is malformed
	// (CR, LF, NUL, spaces or angle brackets, or not an addr-spec).
	ErrInvalidEnvelope = errors.New("relay: invalid envelope")
)

// Error is the outcome of a failed delivery to one recipient: the server's
// reply when there was one, or a local reason. It answers errors.As; use
// Temporary to tell a deferral from a bounce.
type Error struct {
	Recipient string // the envelope recipient, when the error is about one
	Host      string // the MX host that answered, empty if none did
	Command   string // the SMTP command that failed ("RCPT TO", "DATA"...), if any
	Code      int    // SMTP reply code, 0 if none
	Enhanced  string // RFC 3463 enhanced status code such as "5.1.1", if any
	Message   string // server text or local reason
	Permanent bool   // true: retrying will not help (5xx, null MX, ...)
	Err       error  // the underlying cause, if any
}

// Error formats the failure as "relay: <recipient>: <host>: <command>:
// <code> <enhanced> <message>", leaving out the parts that are empty.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("relay: ")
	if e.Recipient != "" {
		b.WriteString(e.Recipient)
		b.WriteString(": ")
	}
	if e.Host != "" {
		b.WriteString(e.Host)
		b.WriteString(": ")
	}
	if e.Command != "" {
		b.WriteString(e.Command)
		b.WriteString(": ")
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, "%d ", e.Code)
	}
	if e.Enhanced != "" {
		b.WriteString(e.Enhanced)
		b.WriteByte(' ')
	}
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	b.WriteString(msg)
	return strings.TrimRight(b.String(), " ")
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// IsPermanent reports whether err, or an error it wraps, is an *Error that
// says retrying will not help. Unknown errors are temporary: only a 5xx reply
// or an explicitly permanent condition stops retries. It is the one way to
// classify the errors of this package (Error.Permanent says the same of
// one *Error).
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// More sentinels for bad input.
var (
	// ErrInvalidMessage: the message is nil, empty or does not validate.
	ErrInvalidMessage = errors.New("relay: invalid message")
	// ErrMessageTooLarge: the message is larger than MaxMessageSize.
	ErrMessageTooLarge = errors.New("relay: message too large")
)
