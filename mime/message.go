package mime

import (
	"io"
	"net/mail"
	"time"
)

// Message is an email message. The zero value is not sendable: set From, at
// least one of To, Cc and Bcc, and a body (Text, HTML or an attachment).
// A Message is not modified by writing it; it may be written several times
// and, if not modified meanwhile, from several goroutines at once.
type Message struct {
	// From is the author and, through EnvelopeFrom, the SMTP envelope
	// sender. Its domain names the generated Message-ID.
	From mail.Address
	// ReplyTo, To and Cc become the Reply-To, To and Cc headers.
	ReplyTo []mail.Address
	To, Cc  []mail.Address
	// Bcc recipients are returned by Recipients but never written.
	Bcc []mail.Address
	// Subject is any Unicode text without CR, LF or NUL; it is written as
	// is when it is plain printable ASCII and with RFC 2047 encoded-words
	// otherwise. Empty means no Subject header.
	Subject string
	// Text and HTML are the bodies (UTF-8). With both, the message is
	// multipart/alternative with Text first. Line breaks of any kind
	// (CRLF, CR, LF) are written as CRLF, and a final line break is added
	// when the body does not end with one.
	Text, HTML string
	// Attachments are written after the body; those with a ContentID are
	// inline parts next to the HTML (multipart/related).
	Attachments []Attachment
	// Header holds extra header fields, written in the order of their
	// names. A name must be RFC 5322 ftext of at most 64 characters;
	// the structural fields (MIME-Version, Content-*, Bcc) and those a
	// Message field writes (From, Reply-To, To, Cc, Subject, Date,
	// Message-ID, List-Unsubscribe, List-Unsubscribe-Post) are an error.
	// Values are unstructured text without CR, LF or NUL: written as is
	// when plain printable ASCII, as encoded-words otherwise.
	Header map[string][]string
	// Date is the Date header; zero means the time of writing.
	Date time.Time
	// MessageID is the Message-ID, with or without its angle brackets;
	// empty means a random one at From's domain, "<random@domain>".
	MessageID string
	// ListUnsubscribe is an https: or mailto: URL. It adds
	// "List-Unsubscribe: <url>" (RFC 2369) and, for https, the one-click
	// "List-Unsubscribe-Post: List-Unsubscribe=One-Click" (RFC 8058).
	ListUnsubscribe string
}

// Attachment is a file attached to a message, or an inline part (an image
// referenced from the HTML as "cid:" + ContentID).
type Attachment struct {
	// Filename is the suggested file name: any UTF-8 up to 255 octets
	// without CR, LF or NUL; non-ASCII is written per RFC 2231. It may be
	// empty for inline parts.
	Filename string
	// ContentType is the media type with optional parameters
	// ("application/pdf"); empty means a guess from the Filename's
	// extension, or application/octet-stream. multipart/* and message/*
	// are refused.
	ContentType string
	// Data is the content, written base64.
	Data []byte
	// ContentID, set, makes the attachment an inline part of a
	// multipart/related beside the HTML, with "Content-ID: <ContentID>".
	// Write it without angle brackets and refer to it as "cid:ContentID".
	// Without HTML, such parts are written as inline parts of the
	// multipart/mixed.
	ContentID string
}

// WriteOptions control what would otherwise be random or time-dependent in
// the output, so that tests can produce byte-identical messages. The zero
// value (or a nil *WriteOptions) means crypto/rand and time.Now.
type WriteOptions struct {
	// Rand supplies the random bytes of the generated Message-ID and of
	// the multipart boundaries; nil means crypto/rand.
	Rand io.Reader
	// Now gives the Date when Message.Date is zero; nil means time.Now.
	Now func() time.Time
}

// Validate reports the first problem that would stop the message from being
// written, as a *FieldError matching one of the package's sentinel errors.
func (m *Message) Validate() error {
	_, err := m.prepare(nil)
	return err
}

// WriteTo validates the message and writes it to w in RFC 5322 / MIME form
// with CRLF line endings. Nothing is written if the message is invalid. The
// message is built in memory and handed to w in one Write.
func (m *Message) WriteTo(w io.Writer) (int64, error) {
	return m.WriteToOptions(w, nil)
}

// WriteToOptions is WriteTo with options (nil means the defaults).
func (m *Message) WriteToOptions(w io.Writer, opts *WriteOptions) (int64, error) {
	b, err := m.AppendTo(nil, opts)
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b)
	return int64(n), err
}

// Bytes validates the message and returns it in RFC 5322 / MIME form.
func (m *Message) Bytes() ([]byte, error) { return m.AppendTo(nil, nil) }

// AppendTo validates the message and appends it to dst, returning the
// extended buffer; on error dst is returned unchanged. Reusing dst across
// messages saves the allocation of the output.
func (m *Message) AppendTo(dst []byte, opts *WriteOptions) ([]byte, error) {
	p, err := m.prepare(opts)
	if err != nil {
		return dst, err
	}
	return p.appendMessage(dst, m), nil
}

// Recipients returns the envelope recipients, To then Cc then Bcc, as
// addr-specs with A-label domains in lower case, without duplicates.
// Addresses that do not validate are left out; Validate reports them.
func (m *Message) Recipients() []string {
	var out []string
	seen := make(map[string]bool)
	for _, list := range [][]mail.Address{m.To, m.Cc, m.Bcc} {
		for _, a := range list {
			s, reason := parseAddrSpec(a.Address)
			if reason != "" {
				continue
			}
			k := s.String()
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// NeedsSMTPUTF8 reports whether an address of the message (From, Reply-To,
// To, Cc or Bcc) has a non-ASCII local part, so that the message can only be
// sent to servers offering SMTPUTF8 (RFC 6531). Non-ASCII domains do not
// count: they are written as A-labels.
func (m *Message) NeedsSMTPUTF8() bool {
	if !isASCII(m.From.Address) {
		if s, reason := parseAddrSpec(m.From.Address); reason == "" && s.utf8 {
			return true
		}
	}
	for _, list := range [][]mail.Address{m.ReplyTo, m.To, m.Cc, m.Bcc} {
		for _, a := range list {
			if isASCII(a.Address) {
				continue
			}
			if s, reason := parseAddrSpec(a.Address); reason == "" && s.utf8 {
				return true
			}
		}
	}
	return false
}

// EnvelopeFrom returns From's addr-spec with an A-label domain, for the SMTP
// MAIL FROM command. Errors match ErrNoFrom or ErrInvalidAddress.
func (m *Message) EnvelopeFrom() (string, error) {
	if m.From.Address == "" {
		return "", fieldErr("From", ErrNoFrom, "")
	}
	s, reason := parseAddrSpec(m.From.Address)
	if reason != "" {
		return "", fieldErr("From", ErrInvalidAddress, reason)
	}
	return s.String(), nil
}
