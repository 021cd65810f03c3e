package dkim

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

var bhTag = regexp.MustCompile(`bh=([^;]+);`)

// bodyHashKey signs go-msgauth's signatures whose bh= is compared.
var bodyHashKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

// msgauthBodyHash is go-msgauth's body hash of body: the bh= of a
// signature it makes over a message with that body.
func msgauthBodyHash(t testing.TB, body []byte, c msgauth.Canonicalization) string {
	t.Helper()
	s, err := msgauth.NewSigner(&msgauth.SignOptions{Domain: "example.com", Selector: "x", Signer: bodyHashKey,
		HeaderCanonicalization: c, BodyCanonicalization: c, HeaderKeys: []string{"From"}})
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("From: a@example.com\r\n\r\n"))
	s.Write(body)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sig := strings.Join(strings.Fields(s.Signature()), "")
	m := bhTag.FindStringSubmatch(sig)
	if m == nil {
		t.Fatalf("no bh= in %q", sig)
	}
	return m[1]
}

// ourBodyHash is hashBody's, base64 as in bh=.
func ourBodyHash(body []byte, relaxed bool) string {
	h := sha256.New()
	hashBody(h, body, relaxed)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// lineBreaksCRLF makes every bare CR and bare LF of b a CRLF, as the SMTP
// client sends them and as hashBody reads them; go-msgauth reads a bare CR
// as a plain byte.
func lineBreaksCRLF(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	b = bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

// checkBodyHash compares hashBody with go-msgauth for both
// canonicalizations.
func checkBodyHash(t *testing.T, body []byte) {
	t.Helper()
	for _, c := range []msgauth.Canonicalization{msgauth.CanonicalizationSimple, msgauth.CanonicalizationRelaxed} {
		want := msgauthBodyHash(t, lineBreaksCRLF(body), c)
		if got := ourBodyHash(body, c == msgauth.CanonicalizationRelaxed); got != want {
			t.Fatalf("%s body hash of %q: %s, go-msgauth %s", c, body, got, want)
		}
	}
}

var awkwardBodies = []string{
	"", "\r\n", "\r\n\r\n\r\n", "x", "x\r\n", "x\r\n\r\n\r\n", "  \r\n", " x \r\n", "a  b\t\tc \t\r\n",
	"\t\r\n \r\nx\r\n \t \r\n\r\n", "a\nb\n\n", "a\rb\r\r\n", "lead\r\n\r\n  \r\nmid\r\n", "caf\xc3\xa9  \r\n",
	strings.Repeat("word ", 180) + "\r\n", "no final line break", "trailing space ", "\t", " ", ".\r\n..\r\n",
	"x\r\n\r\n \r\n\r\ny\r\n", "x\n \n\ny", "\r", "\n", "\r\r", "a \r b\r\n",
}

func TestBodyHashMatchesGoMsgauth(t *testing.T) {
	for _, b := range awkwardBodies {
		checkBodyHash(t, []byte(b))
	}
}

// FuzzBodyHash compares our body canonicalization with go-msgauth's on
// random bodies, both canonicalizations.
func FuzzBodyHash(f *testing.F) {
	for _, b := range awkwardBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkBodyHash(t, body) })
}
