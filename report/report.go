package report

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind says what a parsed message is.
type Kind int

// The kinds of message Parse recognises, tried in this order: DSN, Bounce,
// Feedback, AutoReply; Unknown when none of them matches.
const (
	Unknown   Kind = iota // none of the below: a human reply, say
	DSN                   // RFC 3464 delivery status notification (multipart/report; report-type=delivery-status)
	Bounce                // a non-standard text bounce (qmail QSBMF, Exim text bounce, older Exchange/Lotus text NDRs) from a null sender or mailer-daemon
	Feedback              // RFC 5965 ARF report (multipart/report; report-type=feedback-report)
	AutoReply             // RFC 3834 auto-reply (vacation, out of office)
)

var kindNames = [...]string{
	Unknown:   "unknown",
	DSN:       "dsn",
	Bounce:    "bounce",
	Feedback:  "feedback",
	AutoReply: "auto-reply",
}

// String returns "unknown", "dsn", "bounce", "feedback" or "auto-reply",
// and "Kind(N)" for a value outside the constants.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// MarshalText returns the String form, so a Kind is a JSON string. A value
// outside the constants is an error.
func (k Kind) MarshalText() ([]byte, error) {
	if k < 0 || int(k) >= len(kindNames) {
		return nil, fmt.Errorf("report: invalid Kind %d", int(k))
	}
	return []byte(kindNames[k]), nil
}

// UnmarshalText is the inverse of MarshalText; it accepts the names in any
// case.
func (k *Kind) UnmarshalText(b []byte) error {
	for i, n := range kindNames {
		if strings.EqualFold(string(b), n) {
			*k = Kind(i)
			return nil
		}
	}
	return fmt.Errorf("report: unknown Kind %q", b)
}

// Report is what Parse found in one message. Fields that do not apply to its
// Kind, or that the message does not carry, are zero. Strings are trimmed;
// Subject, Original.Subject and Text are decoded to valid UTF-8 (invalid
// bytes become U+FFFD), the others are the bytes as written.
type Report struct {
	// Kind is what the message is; see the package documentation for how
	// it is decided.
	Kind Kind

	// The report's own header fields. From is the addr-spec of the first
	// address with its domain lower-cased ("MAILER-DAEMON@example.net");
	// Subject is decoded from RFC 2047; MessageID is without angle
	// brackets; Date is zero when absent or unparseable.
	From, Subject, MessageID string
	Date                     time.Time

	// ReturnPath is the addr-spec of the first Return-Path field, which the
	// delivering MTA wrote from the envelope sender; "" when there is none
	// and for the null path. NullSender is true when the field says "<>"
	// (or is empty), the envelope sender of every DSN and most bounces.
	ReturnPath string
	NullSender bool

	// Header is the report's whole header in order, for fields the
	// struct does not name (X-Failed-Recipients, In-Reply-To, List-Id...).
	Header Header

	// DSN per-message fields (RFC 3464 §2.2), without their "dns;" type.
	// ReportingMTA is also set from an ARF report's Reporting-MTA and
	// OriginalEnvelopeID from its Original-Envelope-Id.
	ReportingMTA, OriginalEnvelopeID, ReceivedFromMTA string
	ArrivalDate                                       time.Time

	// Recipients are the DSN per-recipient groups in order, or the
	// recipients a text bounce names as failed (or delayed). A DSN without
	// per-recipient groups falls back to its X-Failed-Recipients header.
	Recipients []Recipient

	// Feedback is set when Kind == Feedback.
	Feedback *FeedbackReport

	// AutoReplyReason says what made the message an auto-reply, as
	// "Field: value" ("Auto-Submitted: auto-replied", "Precedence:
	// auto_reply", "Subject: Automatic reply", "From: noreply@...").
	AutoReplyReason string

	// Text is the human-readable part: the first text/plain part (or a
	// text/html one with its markup removed when there is no text/plain),
	// or the body of a single-part message. It is decoded from its
	// transfer encoding and charset (an unknown charset leaves the bytes as
	// they were), has LF line ends, and is cut to at most MaxText bytes on
	// a character boundary. Classify a DSN whose Status is only 5.0.0 (as
	// Exim's are) from this and from Header's X-Failed-Recipients.
	Text string

	// Original is the header of the message the report returns or is
	// about: the message/rfc822, message/global, text/rfc822-headers,
	// message/rfc822-headers or message/global-headers part, or for a text
	// bounce the header block quoted after the bounce text. Nil when there
	// is none, or when the part holds no header field.
	Original *Original
}

// MaxText is the most bytes Report.Text holds.
const MaxText = 8 << 10

// Recipient is one per-recipient group of a DSN (RFC 3464 §2.3) or one
// failed recipient of a text bounce.
type Recipient struct {
	// FinalRecipient and OriginalRecipient are the address alone: the
	// "rfc822;" type, angle brackets and spaces stripped, the domain
	// lower-cased. When a group has only Original-Recipient, FinalRecipient
	// is set from it. An address of another type (say "x400") is kept as
	// its value after the ';'.
	FinalRecipient, OriginalRecipient string

	// Action is lower case: failed, delayed, delivered, relayed or
	// expanded. When the group has none it is inferred from Status (5 →
	// failed, 4 → delayed, 2 → delivered).
	Action string

	// Status is the enhanced status code (RFC 3463) as "5.1.1", with
	// leading zeros and trailing text such as "(bad mailbox)" removed; ""
	// when the group has no valid code. When Status is missing it is taken
	// from the diagnostic text ("550 5.1.1 ...").
	Status string

	// Code is the SMTP reply code found in the diagnostic ("smtp; 550 5.1.1
	// ..." → 550), 0 if there is none.
	Code int

	// DiagnosticType is the lower-cased type before the ';' of
	// Diagnostic-Code ("smtp", "x-postfix"), and DiagnosticCode the rest
	// with continuation lines unfolded. For a text bounce DiagnosticCode is
	// the text that explained the failure, on one line.
	DiagnosticType, DiagnosticCode string

	// RemoteMTA is the Remote-MTA without its "dns;" type or a trailing
	// comment.
	RemoteMTA string

	// LastAttemptDate and WillRetryUntil are zero when absent or
	// unparseable.
	LastAttemptDate, WillRetryUntil time.Time
}

// FeedbackReport holds the fields of an RFC 5965 feedback report
// (§3.1–3.2). (It cannot be called Feedback: that is the Kind.)
type FeedbackReport struct {
	// FeedbackType is lower case: abuse, fraud, virus, other, not-spam,
	// auth-failure (or whatever the report says).
	FeedbackType string

	// UserAgent and Version name the software that made the report and
	// the version of the format, as written ("Yahoo!-Mail-Feedback/2.0",
	// "0.1").
	UserAgent, Version string

	// OriginalMailFrom is the addr-spec of Original-Mail-From, "" for <>.
	OriginalMailFrom string

	// OriginalRcptTo holds the addr-specs of every Original-Rcpt-To.
	OriginalRcptTo []string

	// ArrivalDate is from Arrival-Date, or the older Received-Date.
	ArrivalDate time.Time

	// SourceIP is the address the reported message came from, without
	// brackets.
	SourceIP string

	// ReportedDomain (lower case) and ReportedURI hold every
	// Reported-Domain and Reported-URI.
	ReportedDomain []string
	ReportedURI    []string

	// AuthenticationResults is the field as written, unfolded.
	AuthenticationResults string

	// Incidents is 0 when the field is absent or not a number.
	Incidents int
}

// Original is the header of a returned or reported message.
type Original struct {
	// Header is every field in order, values unfolded but not decoded.
	Header Header

	// MessageID is without angle brackets. From is the addr-spec of the
	// first From address, To the addr-specs of To joined by ", ", Subject
	// decoded from RFC 2047.
	MessageID string
	From      string
	To        string
	Subject   string
}

// Options configures ParseWith. The zero value, like nil, uses the defaults.
type Options struct {
	// MaxSize is the most bytes read from the input; a longer message is
	// ErrTooLarge. Zero or negative → DefaultMaxSize.
	MaxSize int64
}

// DefaultMaxSize is the size limit when Options is nil or its MaxSize is
// not positive.
const DefaultMaxSize = 10 << 20

var (
	// ErrTooLarge: the input is longer than Options.MaxSize.
	ErrTooLarge = errors.New("report: message larger than the size limit")

	// ErrMalformed: the input has no header field at all, so it is not a
	// mail message.
	ErrMalformed = errors.New("report: no message header")
)
