package track_test

import (
	"bytes"
	"os"
	"testing"

	"golang.org/x/net/html"

	"github.com/mxrelay/mxrelay/track"
)

// BenchmarkRewriteHTML50KB rewrites the 60 links of the 50 KB newsletter
// and adds a pixel, as a send does for each message. The goal is at least
// 5,000 messages a second on one core (go test -bench . -cpu 1).
func BenchmarkRewriteHTML50KB(b *testing.B) {
	doc, err := os.ReadFile("testdata/newsletter.html")
	if err != nil {
		b.Fatal(err)
	}
	link := func(u string) (string, bool) {
		return "https://t.example.com/c/0123456789abcdef0123456789abcdef", true
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := track.RewriteHTML(doc, link, "https://t.example.com/o/0123456789abcdef0123456789abcdef"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkLinks50KB(b *testing.B) {
	doc, err := os.ReadFile("testdata/newsletter.html")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := track.Links(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenizer50KB runs x/net/html's Tokenizer alone over the
// newsletter: the floor under BenchmarkRewriteHTML50KB's time.
func BenchmarkTokenizer50KB(b *testing.B) {
	doc, err := os.ReadFile("testdata/newsletter.html")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		z := html.NewTokenizer(bytes.NewReader(doc))
		for z.Next() != html.ErrorToken {
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
