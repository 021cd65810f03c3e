package mime

import "errors"

// Sentinel errors. Every error returned by Validate, WriteTo, Bytes and
// AppendTo for bad input is a *FieldError that matches one of these with
// errors.Is. (The only other errors are those of the io.Writer and of a
// WriteOptions.Rand that fails.)
var (
	// ErrInvalidHeader: a header name outside RFC 5322 ftext, a header the
	// Message writes itself or that is structural (MIME-Version, Content-*,
	// Bcc), or CR, LF, NUL or invalid UTF-8 in anything that becomes a
	// header: the Subject, a header value, a display name, a filename, a
	// Content-ID or the Message-ID.
	ErrInvalidHeader = errors.New("invalid header")
	// ErrInvalidAddress: an address that is not a valid RFC 5322 addr-spec
	// (local part up to 64 octets, domain up to 255, IDNA-valid domain).
	ErrInvalidAddress = errors.New("invalid address")
	// ErrNoFrom: From has no address.
	ErrNoFrom = errors.New("no From address")
	// ErrNoRecipients: To, Cc and Bcc are all empty.
	ErrNoRecipients = errors.New("no recipients")
	// ErrNoBody: no Text, no HTML and no attachment.
	ErrNoBody = errors.New("no body and no attachment")
	// ErrInvalidBody: Text or HTML is not valid UTF-8.
	ErrInvalidBody = errors.New("invalid body")
	// ErrInvalidAttachment: an attachment with a bad content type (unparsable,
	// multipart/* or message/*) or a Content-ID used twice.
	ErrInvalidAttachment = errors.New("invalid attachment")
	// ErrInvalidListUnsubscribe: ListUnsubscribe is not an https: or mailto:
	// URL that fits on a header line.
	ErrInvalidListUnsubscribe = errors.New("invalid List-Unsubscribe URL")
)

// FieldError reports which field of a Message is wrong and why. Err is one of
// the package's sentinel errors, so errors.Is(err, ErrInvalidAddress) works on
// a *FieldError, and errors.As gives the field:
//
//	var fe *mime.FieldError
//	if errors.As(err, &fe) {
//		log.Printf("bad field %s: %s", fe.Field, fe.Reason)
//	}
type FieldError struct {
	// Field names the offending field the way Go code would reach it:
	// "From", "To[1]", "To[1].Name", "Subject", "Header[X-Campaign]",
	// "Attachments[0].Filename", "ListUnsubscribe".
	Field string
	// Reason is a short human-readable explanation ("contains CR or LF").
	Reason string
	// Err is the sentinel error this error matches with errors.Is.
	Err error
}

// Error returns "mime: <field>: <sentinel>: <reason>".
func (e *FieldError) Error() string {
	s := "mime: " + e.Field + ": " + e.Err.Error()
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Unwrap returns the sentinel error.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field string, sentinel error, reason string) error {
	return &FieldError{Field: field, Reason: reason, Err: sentinel}
}
