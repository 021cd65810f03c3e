package mime_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/mail"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/mime"
)

// typicalMessage is a marketing message: a non-ASCII subject, text and
// about 20 KB of HTML with some non-ASCII, a 30 KB PDF. bench/mime builds
// the same message and compares with github.com/wneessen/go-mail.
func typicalMessage() *mime.Message {
	var h, t strings.Builder
	h.WriteString("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Soldes</title></head><body>\n")
	for i := 0; h.Len() < 20_000; i++ {
		fmt.Fprintf(&h, "<table role=\"presentation\" style=\"width:100%%;border:0\"><tr><td style=\"padding:8px;font-family:Arial,sans-serif\">"+
			"<h2>Article n°%d — prix réduit</h2><p>Découvrez notre sélection d'été : robes, chemises et accessoires à prix cassés. "+
			"Offre valable jusqu'au 31 août, dans la limite des stocks disponibles.</p>"+
			"<a href=\"https://shop.example/p/%d?utm_source=newsletter&amp;utm_medium=email\">Voir l'article – 19,90 €</a></td></tr></table>\n", i, i)
		fmt.Fprintf(&t, "Article n°%d — prix réduit\nDécouvrez notre sélection d'été : 19,90 €\nhttps://shop.example/p/%d\n\n", i, i)
	}
	h.WriteString("</body></html>\n")
	pdf := make([]byte, 30_000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range pdf {
		pdf[i] = byte(r.Uint32())
	}
	copy(pdf, "%PDF-1.4\n")
	return &mime.Message{
		From:            mail.Address{Name: "La Boutique", Address: "news@shop.example"},
		To:              []mail.Address{{Name: "Zoë Martin", Address: "customer@example.com"}},
		Subject:         "Soldes d'été : -50 % sur toute la boutique ☀️",
		Text:            t.String(),
		HTML:            h.String(),
		Attachments:     []mime.Attachment{{Filename: "catalogue-été.pdf", ContentType: "application/pdf", Data: pdf}},
		ListUnsubscribe: "https://shop.example/unsubscribe?u=42",
	}
}

// BenchmarkWriteTo writes the typical message to io.Discard. For the
// comparison with go-mail in the same run: cd bench && go run ./mime.
func BenchmarkWriteTo(b *testing.B) {
	m := typicalMessage()
	b.ReportAllocs()
	n, err := m.WriteTo(io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(n)
	for b.Loop() {
		if _, err := m.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendTo reuses one buffer: the allocation-free path.
func BenchmarkAppendTo(b *testing.B) {
	m := typicalMessage()
	b.ReportAllocs()
	buf, err := m.AppendTo(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if buf, err = m.AppendTo(buf[:0], nil); err != nil {
			b.Fatal(err)
		}
	}
}
