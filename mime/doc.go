// Package mime builds email messages: addresses, headers, text and HTML
// bodies, attachments and inline parts, validated in full and then written
// as RFC 5322 / MIME bytes that every common parser reads back unchanged.
//
// A [Message] is a plain struct. [Message.Validate] reports the first
// problem as a [*FieldError] naming the field and matching a sentinel such as
// [ErrInvalidAddress] with errors.Is; [Message.WriteTo], [Message.Bytes] and
// [Message.AppendTo] validate the same way and write nothing on error. The
// relay package sends what they produce, to [Message.Recipients] from
// [Message.EnvelopeFrom], with SMTPUTF8 when [Message.NeedsSMTPUTF8].
//
// # Structure
//
//   - Text only: text/plain. HTML only: text/html. Both:
//     multipart/alternative, Text first.
//   - Attachments with a ContentID: multipart/related around the HTML
//     (RFC 2387), referenced from it as "cid:" + ContentID (RFC 2392).
//   - Other attachments: multipart/mixed outermost.
//
// # Encoding
//
// Text parts are charset=utf-8, 7bit when they are printable ASCII with lines
// of at most 78 octets, quoted-printable otherwise; attachments are base64 in
// 76-column lines. Line breaks of any kind in Text and HTML become CRLF;
// every output line ends in CRLF and none exceeds 998 octets, so the message
// can be sent as is with SMTP DATA or BDAT.
//
// Header fields are folded at 78 columns where a fold is possible. A Subject,
// display name or header value that is not plain printable ASCII is written
// as RFC 2047 encoded-words of at most 75 characters, split on rune
// boundaries. Non-ASCII file names use RFC 2231 parameters (filename*=),
// never RFC 2047. Domains are written as IDNA A-labels; a non-ASCII local
// part is kept as UTF-8 (RFC 6532) and makes the message need SMTPUTF8.
// Bcc is never written.
//
// Date and Message-ID are added when not set. For byte-stable output in
// tests, pass [WriteOptions] with a fixed Rand and Now to
// [Message.AppendTo] or [Message.WriteToOptions]; there is no package state.
//
// The MIME framing is written directly into one pre-sized buffer (see
// write.go for why this does not go through go-message's writer); the tests
// read every structure back with github.com/emersion/go-message and with
// Python's email package.
//
// # Standards
//
//   - RFC 5322: message format, addr-spec, header folding, Date, Message-ID
//   - RFC 5321 §4.5.3.1: local part ≤ 64 octets, domain ≤ 255
//   - RFC 2045, RFC 2046: MIME, 7bit / quoted-printable / base64, multipart
//   - RFC 2047: encoded-words in headers
//   - RFC 2183, RFC 2231: Content-Disposition and encoded parameters
//   - RFC 2387, RFC 2392: multipart/related and cid: URLs
//   - RFC 6532: UTF-8 in headers (non-ASCII local parts)
//   - RFC 5890, UTS #46: IDNA A-labels (golang.org/x/net/idna Lookup profile)
//   - RFC 2369, RFC 8058: List-Unsubscribe and one-click List-Unsubscribe-Post
package mime
