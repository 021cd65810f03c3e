package relay

import (
	"bytes"
	"io"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"regexp"
	"strings"
	"testing"

	gomail "github.com/emersion/go-message/mail"

	"github.com/mxrelay/mxrelay/mime"
)

// appendQPLine's lines stay within 76 characters and decode to the input.
func TestAppendQPLine(t *testing.T) {
	for _, s := range []string{
		"",
		"https://example.org/mail/c/" + strings.Repeat("AbC-_9", 60),
		"https://example.org/a=b/" + strings.Repeat("=", 40) + "ü" + strings.Repeat("x", 200),
		strings.Repeat("=", 100),
	} {
		enc := appendQPLine(nil, s)
		for line := range strings.SplitSeq(string(enc), "\r\n") {
			if len(line) > 76 {
				t.Errorf("line of %d: %q", len(line), line)
			}
		}
		dec, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(append(enc, "\r\n"...))))
		if err != nil || strings.TrimRight(string(dec), "\r\n") != s {
			t.Errorf("%q → %q → %q (%v)", s, enc, dec, err)
		}
	}
}

// A copy made from the prepared template and one rewritten whole say the
// same, but for the random tokens.
func TestTrackTemplateMatchesWhole(t *testing.T) {
	h, err := os.ReadFile("../track/testdata/newsletter.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{string(h), "<p>short <a href=\"https://a.example/x?y=1&amp;z=2\">x</a></p>", "no links at all"} {
		m := &mime.Message{From: mail.Address{Address: "news@example.org"}, To: []mail.Address{{Address: "ann@example.com"}},
			Subject: "Spring", Text: "Spring is here.\n", HTML: doc}
		data, err := m.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		c := &Client{PublicURL: "https://example.org/mail", LinkKeys: [][]byte{bytes.Repeat([]byte("k"), 32)}}
		tmpl := newTrackTemplate(data, c.PublicURL+"/")
		if tmpl == nil {
			t.Fatal("no template")
		}
		a, err := c.personaliseTracking(data, "ann@example.com", "id", tmpl)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.personaliseTracking(data, "ann@example.com", "id", nil)
		if err != nil {
			t.Fatal(err)
		}
		ha, hb := decodedHTML(t, a), decodedHTML(t, b)
		if ha != hb {
			i := 0
			for i < len(ha) && i < len(hb) && ha[i] == hb[i] {
				i++
			}
			t.Errorf("template copy and whole copy differ at %d:\n%q\n----\n%q", i, ha[max(0, i-80):min(len(ha), i+120)], hb[max(0, i-80):min(len(hb), i+120)])
		}
		if !strings.Contains(ha, "https://example.org/mail/o/") {
			t.Error("no image")
		}
	}
}

var tokenRE = regexp.MustCompile(`(/[co]/)[A-Za-z0-9_-]+`)

func decodedHTML(t *testing.T, data []byte) string {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := r.NextPart()
		if err != nil {
			t.Fatalf("no HTML part: %v", err)
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
			b, _ := io.ReadAll(p.Body)
			return tokenRE.ReplaceAllString(string(b), "${1}TOKEN")
		}
	}
}

// With Tracking.Text the text part's links go through the redirect too;
// without it the text part is left as written.
func TestTrackingTextOption(t *testing.T) {
	m := &mime.Message{From: mail.Address{Address: "news@example.org"}, To: []mail.Address{{Address: "ann@example.com"}},
		Subject: "Spring", Text: "See https://shop.example/offer.\n", HTML: `<a href="https://shop.example/offer">offer</a>`}
	data, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, on := range []bool{false, true} {
		c := &Client{PublicURL: "https://example.org/mail", LinkKeys: [][]byte{bytes.Repeat([]byte("k"), 32)}, Tracking: TrackingOptions{Text: on}}
		out, err := c.personaliseTracking(data, "ann@example.com", "id", newTrackTemplate(data, c.PublicURL+"/"))
		if err != nil {
			t.Fatal(err)
		}
		kept := bytes.Contains(out, []byte("See https://shop.example/offer."))
		if kept == on {
			t.Errorf("Text %v: the text part's link kept %v\n%s", on, kept, out)
		}
	}
}
