package smtpclient

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors. Errors returned by this package wrap them, so errors.Is
// works on the result.
var (
	// ErrProtocol: the server broke the protocol (a garbage reply code, a
	// reply line or reply too long, mixed codes in one reply). The session
	// is closed.
	ErrProtocol = errors.New("smtpclient: protocol error")
	// ErrTLSInjection: the server (or someone in the path) sent data after
	// the 220 reply to STARTTLS and before the TLS handshake
	// (CVE-2011-0411). The session is closed. It also wraps ErrProtocol.
	ErrTLSInjection = errors.New("smtpclient: plaintext injected after STARTTLS")
	// ErrTimeout: a step's RFC 5321 §4.5.3.2 timeout (see Options) ran out.
	// The session is closed.
	ErrTimeout = errors.New("smtpclient: timeout")
	// ErrClosed: the Client was closed, or an earlier failure closed it.
	ErrClosed = errors.New("smtpclient: client closed")
	// ErrInvalidInput: an address or the EHLO name contains CR, LF, NUL,
	// spaces, angle brackets or other bytes that would inject commands or
	// parameters. Nothing was sent.
	ErrInvalidInput = errors.New("smtpclient: invalid input")
	// ErrNotSupported: the server did not offer an extension the call needs
	// (STARTTLS).
	ErrNotSupported = errors.New("smtpclient: not supported by server")
	// ErrSMTPUTF8Required: an address is not ASCII and the server did not
	// offer SMTPUTF8 (RFC 6531 §3.2). Carried by a local *Error with the
	// enhanced code 5.6.7.
	ErrSMTPUTF8Required = errors.New("smtpclient: address needs SMTPUTF8, server lacks it")
	// ErrRequireTLS: the envelope asks for REQUIRETLS (RFC 8689) and the
	// session is not TLS or the server does not offer REQUIRETLS. Carried by
	// a local *Error with the enhanced code 5.7.10.
	ErrRequireTLS = errors.New("smtpclient: REQUIRETLS not possible on this session")
	// ErrMessageTooLarge: the message is larger than the SIZE the server
	// announced (RFC 1870). Carried by a local *Error with the enhanced
	// code 5.3.4.
	ErrMessageTooLarge = errors.New("smtpclient: message exceeds the server's SIZE")
	// ErrInvalidData: the message has a NUL byte or a line over 998
	// octets (RFC 5321 §4.5.3.1.6), which the client never sends. Postfix
	// folds long lines instead, which breaks a DKIM signature over them;
	// refusing is stricter, and the caller can encode such content
	// (package mime does). Carried by a local *Error with the
	// enhanced code 5.6.0, before MAIL is sent.
	ErrInvalidData = errors.New("smtpclient: message data has a NUL or an over-long line")
	// ErrEightBitRequired: the message has 8-bit bytes and the server did
	// not offer 8BITMIME (RFC 6152). Such data is never sent as it is (RFC
	// 5321 §2.4 allows only 7-bit) and never converted: the sender, who built
	// the message, should encode it (package mime does). Carried by a local
	// *Error with the enhanced code 5.6.3, before MAIL is sent. Postfix
	// would convert a declared-8bit MIME body to quoted-printable; changing
	// signed bytes would break DKIM, so this is stricter.
	ErrEightBitRequired = errors.New("smtpclient: 8-bit message, server lacks 8BITMIME")
	// ErrTooManyRecipients: the recipient was over the server's LIMITS
	// RCPTMAX (RFC 9422) and was not sent; send it in another transaction.
	// Carried by a local *Error with the enhanced code 4.5.3.
	ErrTooManyRecipients = errors.New("smtpclient: over the server's RCPTMAX")
)

// Error is an SMTP outcome: the server's reply to a command, or a local
// reason a command was not sent (Code 0, an enhanced code chosen by this
// package, and Err set to one of the sentinels). Get it with errors.As.
type Error struct {
	Command  string // "greeting", "EHLO", "MAIL FROM", "RCPT TO", "DATA", "BDAT", ...
	Code     int    // the reply code; 0 for a local reason
	Enhanced string // RFC 3463 enhanced status code such as "5.1.1", if any
	Message  string // the server's text (lines joined by "; ") or the local reason
	Err      error  // the cause, for local reasons; nil for a server reply
}

// Error formats the error as "smtpclient: COMMAND: CODE ENHANCED message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("smtpclient: ")
	if e.Command != "" {
		b.WriteString(e.Command)
		b.WriteString(": ")
	}
	if e.Code != 0 {
		b.WriteString(strconv.Itoa(e.Code))
		b.WriteByte(' ')
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

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether the outcome is permanent: a 5xx reply, or a
// local reason whose enhanced code has class 5. Everything else, including
// errors without any code, is temporary.
func (e *Error) Permanent() bool {
	if e.Code != 0 {
		return e.Code >= 500 && e.Code <= 599
	}
	return strings.HasPrefix(e.Enhanced, "5.")
}

// IsPermanent reports whether err is, or wraps, an *Error that is Permanent.
// Any other error (a timeout, a reset connection) is temporary.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent()
}

// replyError makes the *Error for a reply to command.
func replyError(command string, r Reply) *Error {
	return &Error{Command: command, Code: r.Code, Enhanced: r.Enhanced, Message: r.Text()}
}

// localError makes the *Error for a command not sent for a local reason.
func localError(command, enhanced string, cause error, msg string) *Error {
	return &Error{Command: command, Enhanced: enhanced, Message: msg, Err: cause}
}
