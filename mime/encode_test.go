package mime

import (
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestBase64 compares appendBase64 with encoding/base64 for every length
// around the line size.
func TestBase64(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for n := range 300 {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		got := appendBase64([]byte("x"), data)
		std := base64.StdEncoding.EncodeToString(data)
		var want strings.Builder
		want.WriteString("x")
		for len(std) > 0 {
			k := min(76, len(std))
			want.WriteString(std[:k] + "\r\n")
			std = std[k:]
		}
		if string(got) != want.String() {
			t.Fatalf("length %d:\n got %q\nwant %q", n, got, want.String())
		}
	}
}

// BenchmarkQuotedPrintable encodes 20 KB of mostly-ASCII HTML.
func BenchmarkQuotedPrintable(b *testing.B) {
	html := strings.Repeat("<a href=\"https://shop.example/p/1?utm_source=news&amp;x=1\">Voir l'article – 19,90 €</a> Découvrez notre sélection d'été\n", 160)
	buf := make([]byte, 0, 2*len(html))
	b.SetBytes(int64(len(html)))
	for b.Loop() {
		buf = appendQP(buf[:0], html)
	}
}
