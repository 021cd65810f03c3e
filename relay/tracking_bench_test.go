package relay

import (
	"bytes"
	"net/mail"
	"os"
	"testing"

	"github.com/mxrelay/mxrelay/mime"
)

// BenchmarkTrackedCopy makes one recipient's copy of a 50 KB marketing
// message with tracking on, as each attempt does: the HTML part decoded,
// its 60 links sealed and rewritten, the image added, the part encoded
// again (no DKIM signature: dkim's own benchmarks measure that).
func BenchmarkTrackedCopy(b *testing.B) {
	html, err := os.ReadFile("../track/testdata/newsletter.html")
	if err != nil {
		b.Fatal(err)
	}
	m := &mime.Message{From: mail.Address{Address: "news@example.org"}, To: []mail.Address{{Address: "ann@example.com"}},
		Subject: "Spring", Text: "Spring is here.\n", HTML: string(html)}
	data, err := m.Bytes()
	if err != nil {
		b.Fatal(err)
	}
	c := &Client{PublicURL: "https://example.org/mail", LinkKeys: [][]byte{bytes.Repeat([]byte("k"), 32)}}
	b.Run("prepared", func(b *testing.B) {
		// As deliver does: the message prepared once (outside the
		// loop), each copy made from it.
		tmpl := newTrackTemplate(data, c.PublicURL+"/")
		if tmpl == nil {
			b.Fatal("no template")
		}
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.personaliseTracking(data, "ann@example.com", "18edc49869d8f99c126e50449d61a950", tmpl); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("whole", func(b *testing.B) {
		// Each copy parsed and encoded again: the fallback.
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.personaliseTracking(data, "ann@example.com", "18edc49869d8f99c126e50449d61a950", nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("prepare", func(b *testing.B) {
		// The once-per-message cost.
		b.ReportAllocs()
		for b.Loop() {
			newTrackTemplate(data, c.PublicURL+"/")
		}
	})
}
