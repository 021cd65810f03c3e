// Command compose builds a realistic message with package mime and prints it
// to stdout: a non-ASCII subject, a text and an HTML body, an inline image
// referenced from the HTML by cid:, a small PDF attachment and a one-click
// List-Unsubscribe URL.
//
//	go run ./examples/compose
package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"net/mail"
	"os"

	"github.com/mxrelay/mxrelay/mime"
)

func main() {
	msg := &mime.Message{
		From:    mail.Address{Name: "Café Müller", Address: "news@cafe-müller.example"},
		To:      []mail.Address{{Name: "Zoë Martin", Address: "zoe@example.com"}},
		Subject: "Votre reçu de novembre ☕ — merci !",
		Text:    "Bonjour Zoë,\n\nMerci pour votre visite. Votre reçu est joint.\n\nÀ bientôt,\nCafé Müller\n",
		HTML: `<p>Bonjour Zoë,</p>
<p><img src="cid:logo@cafe" alt="Café Müller"> Merci pour votre visite.
Votre reçu est joint.</p>
<p>À bientôt,<br>Café Müller</p>
`,
		Attachments: []mime.Attachment{
			{Filename: "logo.png", ContentType: "image/png", Data: logo(), ContentID: "logo@cafe"},
			{Filename: "reçu-novembre.pdf", ContentType: "application/pdf", Data: []byte(receipt)},
		},
		ListUnsubscribe: "https://cafe-muller.example/unsubscribe?u=zoe",
	}
	if _, err := msg.WriteTo(os.Stdout); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintln(os.Stderr, "envelope recipients:", msg.Recipients())
}

// logo draws a 16×16 PNG: a brown cup on cream.
func logo() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			c := color.RGBA{0xf5, 0xe6, 0xc8, 0xff}
			if x >= 3 && x <= 11 && y >= 5 && y <= 13 || x >= 12 && x <= 13 && y >= 7 && y <= 10 {
				c = color.RGBA{0x6f, 0x4e, 0x37, 0xff}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

// receipt is a minimal one-page PDF.
const receipt = `%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144]
  /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >> endobj
4 0 obj << /Length 58 >> stream
BT /F1 18 Tf 20 100 Td (Receipt: 2 coffees, 7.00 EUR) Tj ET
endstream endobj
5 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj
trailer << /Root 1 0 R >>
%%EOF
`
