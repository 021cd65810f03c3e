// Command mime compares mxrelay's mime package with github.com/wneessen/go-mail
// on a typical marketing message: a non-ASCII subject, text and HTML bodies
// (about 20 KB of HTML) and a 30 KB PDF attachment. Both libraries run in the
// same process, in turn over several rounds (the best round of each counts,
// so a busy machine hurts both alike), and the program prints messages per
// second, bytes and allocations per message, and the ratios. It takes about
// half a minute.
//
// Run it from the bench module:
//
//	cd bench && go run ./mime
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/mail"
	"os"
	"strings"
	"testing"
	"text/tabwriter"

	gomail "github.com/wneessen/go-mail"

	"github.com/mxrelay/mxrelay/mime"
)

const (
	from    = "news@shop.example"
	to      = "customer@example.com"
	subject = "Soldes d'été : -50 % sur toute la boutique ☀️"
)

// content returns the bodies and the PDF, the same for both libraries.
func content() (text, html string, pdf []byte) {
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
	pdf = make([]byte, 30_000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range pdf {
		pdf[i] = byte(r.Uint32())
	}
	copy(pdf, "%PDF-1.4\n")
	return t.String(), h.String(), pdf
}

func mxrelayMessage(text, html string, pdf []byte) *mime.Message {
	return &mime.Message{
		From:            mail.Address{Name: "La Boutique", Address: from},
		To:              []mail.Address{{Name: "Zoë Martin", Address: to}},
		Subject:         subject,
		Text:            text,
		HTML:            html,
		Attachments:     []mime.Attachment{{Filename: "catalogue-été.pdf", ContentType: "application/pdf", Data: pdf}},
		ListUnsubscribe: "https://shop.example/unsubscribe?u=42",
	}
}

func goMailMessage(text, html string, pdf []byte) *gomail.Msg {
	m := gomail.NewMsg()
	if err := m.FromFormat("La Boutique", from); err != nil {
		log.Fatal(err)
	}
	if err := m.AddToFormat("Zoë Martin", to); err != nil {
		log.Fatal(err)
	}
	m.Subject(subject)
	m.SetBodyString(gomail.TypeTextPlain, text)
	m.AddAlternativeString(gomail.TypeTextHTML, html)
	if err := m.AttachReader("catalogue-été.pdf", bytes.NewReader(pdf), gomail.WithFileContentType("application/pdf")); err != nil {
		log.Fatal(err)
	}
	m.SetGenHeader(gomail.HeaderListUnsubscribe, "<https://shop.example/unsubscribe?u=42>")
	m.SetGenHeader(gomail.HeaderListUnsubscribePost, "List-Unsubscribe=One-Click")
	m.SetMessageID()
	m.SetDate()
	return m
}

func main() {
	text, html, pdf := content()
	mx := mxrelayMessage(text, html, pdf)
	gm := goMailMessage(text, html, pdf)
	// Both must produce a message; show the sizes as a sanity check.
	var a, b bytes.Buffer
	if _, err := mx.WriteTo(&a); err != nil {
		log.Fatal(err)
	}
	if _, err := gm.WriteTo(&b); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("message: text %d B, HTML %d B, PDF %d B; written: mxrelay %d B, go-mail %d B\n\n",
		len(text), len(html), len(pdf), a.Len(), b.Len())

	runs := []struct {
		name string
		fn   func(b *testing.B)
	}{
		{"mxrelay WriteTo", func(b *testing.B) {
			for b.Loop() {
				if _, err := mx.WriteTo(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"go-mail WriteTo", func(b *testing.B) {
			for b.Loop() {
				if _, err := gm.WriteTo(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"mxrelay build+WriteTo", func(b *testing.B) {
			for b.Loop() {
				if _, err := mxrelayMessage(text, html, pdf).WriteTo(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"go-mail build+WriteTo", func(b *testing.B) {
			for b.Loop() {
				if _, err := goMailMessage(text, html, pdf).WriteTo(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		}},
	}
	// The machine may be busy: run the benchmarks in turn, several rounds,
	// and keep each one's fastest round.
	const rounds = 10
	testing.Init()
	if err := flag.Set("test.benchtime", "300ms"); err != nil {
		log.Fatal(err)
	}
	res := make([]testing.BenchmarkResult, len(runs))
	for range rounds {
		for i, r := range runs {
			got := testing.Benchmark(func(b *testing.B) { b.ReportAllocs(); r.fn(b) })
			if res[i].N == 0 || got.NsPerOp() < res[i].NsPerOp() {
				res[i] = got
			}
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "best of %d rounds\tmsgs/s\tns/msg\tB/msg\tallocs/msg\t\n", rounds)
	for i, r := range runs {
		fmt.Fprintf(tw, "%s\t%.0f\t%d\t%d\t%d\t\n", r.name, 1e9/float64(res[i].NsPerOp()),
			res[i].NsPerOp(), res[i].AllocedBytesPerOp(), res[i].AllocsPerOp())
	}
	tw.Flush()
	fmt.Println()
	for i := 0; i < len(runs); i += 2 {
		mxr, gmr := res[i], res[i+1]
		fmt.Printf("%-22s mxrelay/go-mail: %.2fx msgs/s, %.2fx bytes, %.3fx allocs\n", strings.TrimPrefix(runs[i].name, "mxrelay "),
			float64(gmr.NsPerOp())/float64(mxr.NsPerOp()),
			float64(mxr.AllocedBytesPerOp())/float64(gmr.AllocedBytesPerOp()),
			float64(mxr.AllocsPerOp())/float64(gmr.AllocsPerOp()))
	}
}
