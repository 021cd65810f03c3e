package mime_test

import (
	"errors"
	"fmt"
	"log"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/mime"
)

// A plain-text message, written with fixed options so that the output is
// stable; real code calls WriteTo or Bytes.
func ExampleMessage_WriteTo() {
	m := &mime.Message{
		From:    mail.Address{Name: "Alice", Address: "alice@example.com"},
		To:      []mail.Address{{Name: "Bob", Address: "bob@example.org"}},
		Subject: "Lunch?",
		Text:    "Noon at the usual place?\n",
		Date:    time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC),
	}
	opts := &mime.WriteOptions{Rand: strings.NewReader(strings.Repeat("x", 64))}
	if _, err := m.WriteToOptions(crlfToLF{os.Stdout}, opts); err != nil {
		log.Fatal(err)
	}
	// Output:
	// From: Alice <alice@example.com>
	// To: Bob <bob@example.org>
	// Subject: Lunch?
	// Date: Sat, 14 Mar 2026 12:00:00 +0000
	// Message-ID: <pb4hq6dypb4hq6dypb4hq6dypa@example.com>
	// MIME-Version: 1.0
	// Content-Type: text/plain; charset=utf-8
	// Content-Transfer-Encoding: 7bit
	//
	// Noon at the usual place?
}

// A newsletter: non-ASCII subject and names, text and HTML, an inline logo,
// a PDF and one-click unsubscription. The output is multipart/mixed around
// multipart/alternative, whose HTML sits in a multipart/related with the
// logo.
func ExampleMessage_Bytes() {
	m := &mime.Message{
		From:    mail.Address{Name: "Café Müller", Address: "news@café-müller.example"},
		To:      []mail.Address{{Name: "Zoë", Address: "zoe@example.com"}},
		Subject: "Votre reçu ☕",
		Text:    "Merci !",
		HTML:    `<p>Merci ! <img src="cid:logo"></p>`,
		Attachments: []mime.Attachment{
			{Filename: "logo.png", ContentType: "image/png", Data: []byte("\x89PNG..."), ContentID: "logo"},
			{Filename: "reçu.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.4...")},
		},
		ListUnsubscribe: "https://cafe-muller.example/unsubscribe?u=1",
	}
	b, err := m.Bytes()
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\r\n") {
		if strings.HasPrefix(line, "Subject:") || strings.HasPrefix(line, "List-Unsubscribe") ||
			strings.HasPrefix(line, "Content-Type: multipart/") || strings.HasPrefix(line, " filename") {
			fmt.Println(line)
		}
	}
	// Output:
	// Subject: =?utf-8?q?Votre_re=C3=A7u_=E2=98=95?=
	// List-Unsubscribe: <https://cafe-muller.example/unsubscribe?u=1>
	// List-Unsubscribe-Post: List-Unsubscribe=One-Click
	// Content-Type: multipart/mixed;
	// Content-Type: multipart/alternative;
	// Content-Type: multipart/related;
	//  filename=logo.png
	//  filename*=utf-8''re%C3%A7u.pdf
}

// Validation errors name the field and match a sentinel.
func ExampleMessage_Validate() {
	m := &mime.Message{
		From:    mail.Address{Address: "alice@example.com"},
		To:      []mail.Address{{Address: "bob@example.org"}},
		Subject: "Hi\r\nBcc: everyone@example.net",
		Text:    "Hello",
	}
	err := m.Validate()
	var fe *mime.FieldError
	fmt.Println(errors.Is(err, mime.ErrInvalidHeader), errors.As(err, &fe) && fe.Field == "Subject")
	fmt.Println(err)
	// Output:
	// true true
	// mime: Subject: invalid header: contains CR or LF
}

// Recipients gives the envelope: To, Cc and Bcc, de-duplicated, with A-label
// domains.
func ExampleMessage_Recipients() {
	m := &mime.Message{
		From: mail.Address{Address: "alice@example.com"},
		To:   []mail.Address{{Name: "Jörg", Address: "joerg@Bücher.example"}},
		Cc:   []mail.Address{{Address: "joerg@bücher.example"}},
		Bcc:  []mail.Address{{Address: "audit@example.com"}},
		Text: "Hello",
	}
	fmt.Println(m.Recipients(), m.NeedsSMTPUTF8())
	from, _ := m.EnvelopeFrom()
	fmt.Println(from)
	// Output:
	// [joerg@xn--bcher-kva.example audit@example.com] false
	// alice@example.com
}

func ExampleNormalizeAddress() {
	for _, a := range []string{"Info@Bücher.Example", "δοκιμή@example.org", "not an address"} {
		n, err := mime.NormalizeAddress(a)
		fmt.Printf("%q %v\n", n, err)
	}
	// Output:
	// "Info@xn--bcher-kva.example" <nil>
	// "δοκιμή@example.org" <nil>
	// "" mime: address: invalid address: missing @
}

// crlfToLF lets the examples' output be compared by go test, which trims
// trailing carriage returns poorly.
type crlfToLF struct{ w *os.File }

func (c crlfToLF) Write(p []byte) (int, error) {
	if _, err := c.w.WriteString(strings.ReplaceAll(string(p), "\r\n", "\n")); err != nil {
		return 0, err
	}
	return len(p), nil
}
