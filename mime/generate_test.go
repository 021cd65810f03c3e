package mime_test

import (
	"math/rand/v2"
	"net/mail"
	"strconv"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/mime"
)

// Pools the generator draws from: the text people write and the edge cases
// writers get wrong.
var (
	genWords = []string{
		"hello", "Sale", "50%", "off", "été", "Noël", "façade", "naïve", "Grüße",
		"Straße", "日本語", "テキスト", "中文", "Привет", "Ελληνικά", "שלום", "مرحبا",
		"☕", "🎉", "👩‍👩‍👧", "—", "…", "\"quoted\"", "(paren)", "a,b", "x;y", "<tag>",
		"=?utf-8?q?x?=", "=?", "?=", "_under_", "back\\slash", "tab\there", "ctl\x01",
		"del\x7f", "nbsp\u00a0", "zwj\u200d", "rtl\u202e", "e\u0301", "@", "a.b",
		strings.Repeat("long", 20), strings.Repeat("é", 40), "", " ",
	}
	genNames = []string{
		"", "Alice", "Bob Smith", "John Q. Public", "Zoë Martin", "Jörg Müller",
		"李小龙", "Support, Team", "O'Brien", "\"Quoted\"", " padded ", "a  b",
		"Δοκιμή Ελληνικά", "🎉 Party", "=?utf-8?q?fake?=", "x@y.example",
	}
	genAddrs = []string{
		"alice@example.com", "bob@Example.ORG", "carol.d+tag@mail.example.net",
		"dave@bücher.example", "eve@例子.测试", "o'brien@example.ie",
		"x_y-z@sub.domain.example", "jörg@example.de", "δοκιμή@παράδειγμα.δοκιμή",
		"UPPER@EXAMPLE.COM", "upper@example.com", "a@[192.0.2.1]",
	}
	genFiles = []string{
		"report.pdf", "Übersicht März.pdf", "日本語の資料.docx", "quote\"and\\slash.txt",
		"a;b=c.txt", "spaces  in  name .png", "", "=?utf-8?q?x?=.bin",
		strings.Repeat("very-long-name-", 12) + ".zip", "tab\tname.txt", "émoji🎉.jpg",
	}
	genTypes = []string{
		"application/pdf", "image/png", "image/jpeg", "text/plain; charset=utf-8",
		"application/octet-stream", "text/csv", "", "application/vnd.ms-excel",
	}
	genHeaderNames = []string{"X-Campaign", "X-Mailer", "Precedence", "X-Entity-Ref-ID", "Keywords", "X-Tag"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func genText(r *rand.Rand, maxWords int) string {
	var b strings.Builder
	for i := range r.IntN(maxWords + 1) {
		if i > 0 {
			b.WriteString(pick(r, []string{" ", " ", " ", "  ", "\t"}))
		}
		b.WriteString(pick(r, genWords))
	}
	return b.String()
}

func genBody(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(30) {
		b.WriteString(genText(r, 20))
		if r.IntN(10) == 0 {
			b.WriteString(strings.Repeat("x", r.IntN(1500)))
		}
		if r.IntN(8) == 0 {
			b.WriteString(" ")
		}
		b.WriteString(pick(r, []string{"\n", "\r\n", "\r", "\n\n", "\r\n.\r\n", "\n-- \n"}))
	}
	if r.IntN(3) == 0 {
		b.WriteString(genText(r, 5))
	}
	return b.String()
}

func genAddressList(r *rand.Rand, max int) []mail.Address {
	var out []mail.Address
	for range r.IntN(max + 1) {
		out = append(out, mail.Address{Name: pick(r, genNames), Address: pick(r, genAddrs)})
	}
	return out
}

// randomMessage builds a valid message from the pools.
func randomMessage(r *rand.Rand) *mime.Message {
	m := &mime.Message{
		From:    mail.Address{Name: pick(r, genNames), Address: pick(r, genAddrs)},
		ReplyTo: genAddressList(r, 1),
		To:      genAddressList(r, 4),
		Cc:      genAddressList(r, 2),
		Bcc:     genAddressList(r, 2),
		Subject: genText(r, 25),
	}
	if len(m.To)+len(m.Cc)+len(m.Bcc) == 0 {
		m.To = genAddressList(r, 1)
		m.To = append(m.To, mail.Address{Address: "fallback@example.com"})
	}
	if r.IntN(4) != 0 {
		m.Text = genBody(r)
	}
	if r.IntN(2) == 0 {
		m.HTML = "<html><body>" + genBody(r) + "</body></html>"
	}
	for i := range r.IntN(4) {
		a := mime.Attachment{
			Filename:    pick(r, genFiles),
			ContentType: pick(r, genTypes),
			Data:        make([]byte, r.IntN(3000)),
		}
		for j := range a.Data {
			a.Data[j] = byte(r.Uint32())
		}
		if r.IntN(3) == 0 {
			a.ContentID = "part" + strconv.Itoa(i) + "@gen.example"
		}
		m.Attachments = append(m.Attachments, a)
	}
	if m.Text == "" && m.HTML == "" && len(m.Attachments) == 0 {
		m.Text = "fallback\n"
	}
	for range r.IntN(4) {
		if m.Header == nil {
			m.Header = map[string][]string{}
		}
		name := pick(r, genHeaderNames)
		m.Header[name] = append(m.Header[name], genText(r, 12))
	}
	switch r.IntN(3) {
	case 0:
		m.ListUnsubscribe = "https://example.com/unsubscribe?id=" + strconv.Itoa(r.IntN(1e6))
	case 1:
		m.ListUnsubscribe = "mailto:unsub@example.com?subject=" + strconv.Itoa(r.IntN(1e6))
	}
	return m
}

// TestGenerated reads a few hundred generated messages back with go-message
// (TestPythonEmail reads the same ones with Python).
func TestGenerated(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 6))
	for i := range 300 {
		m := randomMessage(rng)
		raw, err := m.AppendTo(nil, fixedOptions())
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		roundTrip(t, m, raw)
	}
}
