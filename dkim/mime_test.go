package dkim_test

import (
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/mime"
)

// mimeMessages are messages as the relay produces them, written by the
// mime package.
func mimeMessages(t *testing.T) []namedMessage {
	t.Helper()
	date := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	alice := mail.Address{Name: "Alice Example", Address: "alice@example.com"}
	bob := mail.Address{Name: "Bob", Address: "bob@example.net"}
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR fake image bytes \x00\xff\r\n.\r\n")
	msgs := map[string]*mime.Message{
		"plain": {From: alice, To: []mail.Address{bob}, Cc: []mail.Address{{Address: "carol@example.org"}},
			Subject: "Plain text", Text: "Hello Bob,\n\nplain text.\n", Date: date},
		"unicode-alternative": {From: mail.Address{Name: "Zoë Ünïcode", Address: "zoe@example.com"}, To: []mail.Address{bob},
			ReplyTo: []mail.Address{{Name: "Support", Address: "support@example.com"}},
			Subject: "Grüße aus Köln — 日本語の件名 that is long enough to need folding across several encoded words 📨",
			Text:    "Grüße, Bob!\r\nÇa va? 日本語のテキスト。\r\n",
			HTML:    "<p>Grüße, <b>Bob</b>! 日本語</p>",
			Date:    date, ListUnsubscribe: "https://example.com/unsub?u=42&l=7"},
		"attachments-inline": {From: alice, To: []mail.Address{bob}, Subject: "Report",
			Text: "See the report.", HTML: `<p>See the report.</p><img src="cid:logo@example.com">`,
			Attachments: []mime.Attachment{
				{Filename: "report 2026 – Übersicht.pdf", ContentType: "application/pdf", Data: []byte(strings.Repeat("%PDF-1.7 binary\x00\xff", 2000))},
				{Filename: "logo.png", ContentType: "image/png", Data: png, ContentID: "logo@example.com"},
			}, Date: date},
		"long-lines": {From: alice, To: []mail.Address{bob}, Subject: strings.Repeat("long subject ", 20),
			Text: strings.Repeat("word ", 400) + "\n" + strings.Repeat("x", 3000) + "\n.leading dot\n\ttab   \n",
			Date: date, Header: map[string][]string{"X-Campaign": {"november"}, "X-Mailer": {"mxrelay test"}},
			ListUnsubscribe: "mailto:unsub@example.com?subject=unsubscribe"},
		"no-final-newline": {From: alice, To: []mail.Address{bob}, Subject: "x", Text: "no final newline", Date: date},
	}
	var out []namedMessage
	for name, m := range msgs {
		b, err := m.Bytes()
		if err != nil {
			t.Fatalf("mime %s: %v", name, err)
		}
		out = append(out, namedMessage{"mime-" + name, b})
	}
	slices.SortFunc(out, func(a, b namedMessage) int { return strings.Compare(a.name, b.name) })
	return out
}

// TestMimeMessages signs messages straight from the mime package and
// verifies them with go-msgauth and dkimpy.
func TestMimeMessages(t *testing.T) {
	t.Parallel()
	cfgs, recs := testConfigs(t)
	dual := mustSigner(t, cfgs["dual"]...)
	simple := mustSigner(t, cfgs["rsa-simple"]...)
	var job []dkimpyMessage
	dir := t.TempDir()
	for _, m := range mimeMessages(t) {
		for sname, s := range map[string]int{"dual": 2, "rsa-simple": 1} {
			signer := dual
			if sname == "rsa-simple" {
				signer = simple
			}
			signed := sign(t, signer, m.msg)
			verifyAll(t, signed, recs, s)
			h := signedHeaders(t, signed)
			if strings.Contains(string(m.msg), "\r\nList-Unsubscribe:") && !slices.Contains(h, "list-unsubscribe") {
				t.Errorf("%s: List-Unsubscribe not signed: %v", m.name, h)
			}
			path := filepath.Join(dir, fmt.Sprintf("%02d.eml", len(job)))
			if err := os.WriteFile(path, signed, 0o600); err != nil {
				t.Fatal(err)
			}
			job = append(job, dkimpyMessage{Name: sname + "/" + m.name, Path: path, Signatures: s, wantOK: true})
		}
	}
	if testing.Short() {
		return
	}
	t.Run("dkimpy", func(t *testing.T) {
		requireDkimpy(t)
		results := runDkimpy(t, recs, job)
		for _, m := range job {
			rs := results[m.Name]
			if len(rs) != m.Signatures {
				t.Errorf("%s: %d results, want %d", m.Name, len(rs), m.Signatures)
			}
			for _, r := range rs {
				if !r.OK {
					t.Errorf("%s: signature %d: dkimpy: %s", m.Name, r.Idx, r.Error)
				}
			}
		}
	})
}
