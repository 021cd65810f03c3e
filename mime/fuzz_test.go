package mime_test

import (
	"errors"
	"net/mail"
	"testing"

	"github.com/mxrelay/mxrelay/mime"
)

// FuzzMessage writes messages built from arbitrary subjects, display names,
// header values, file names and bodies. Each must be refused with a
// *FieldError, or written so that every line ends in CRLF within 998 octets
// and go-message reads back exactly the headers that were set and the same
// decoded values. The seed corpus is in testdata/fuzz/FuzzMessage.
func FuzzMessage(f *testing.F) {
	f.Add("Hello", "Alice", "Bob", "spring-2026", "report.pdf", "Hi\n", "<p>Hi</p>")
	f.Add("Réservation confirmée ☕", "Zoë Martin", "李小龙", "naïve café", "reçu.pdf", "été\r\n", "")
	f.Add(" =?utf-8?q?x?= ", "\"quoted\" \\ name", " padded ", "a  b\tc", "=?x?=.bin", "a\rb\nc\r\n", "x=_y")
	f.Fuzz(func(t *testing.T, subject, fromName, toName, header, filename, text, html string) {
		m := &mime.Message{
			From:    mail.Address{Name: fromName, Address: "alice@example.com"},
			To:      []mail.Address{{Name: toName, Address: "bob@bücher.example"}},
			Subject: subject,
			Text:    text,
			HTML:    html,
			Header:  map[string][]string{"X-Fuzz": {header}},
		}
		if filename != "" {
			m.Attachments = []mime.Attachment{{Filename: filename, ContentType: "application/pdf", Data: []byte(text)}}
		}
		raw, err := m.AppendTo(nil, fixedOptions())
		if err != nil {
			var fe *mime.FieldError
			if !errors.As(err, &fe) || raw != nil {
				t.Fatalf("error %v (%T) with output %q", err, err, raw)
			}
			return
		}
		roundTrip(t, m, raw)
	})
}
