package dkim

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"hash"
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

// splitBodyHash is the body hash of body written to a bodyHasher in
// pieces cut at cuts (offsets into body, in order), base64 as in bh=.
func splitBodyHash(body []byte, relaxed bool, cuts ...int) string {
	h := sha256.New()
	b := bodyHasher{h: h, relaxed: relaxed}
	prev := 0
	for _, c := range cuts {
		c = min(max(c, prev), len(body))
		b.Write(body[prev:c])
		prev = c
	}
	b.Write(body[prev:])
	b.close()
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// awkwardSplitBodies adds, to awkwardBodies, bodies whose trouble spots
// (a CRLF, a run of whitespace, trailing empty lines) can be cut anywhere.
var awkwardSplitBodies = append(append([]string(nil), awkwardBodies...),
	"a \r\n\r\n \r\nb  \t c\r\n\r\n\r\n", " x\r\n  y \r\n\t\r\n\r\nz\r\n\r\n",
	"one\r\ntwo\r\n\r\n\r\nthree\r\n", "x  \r\n \r\n\r", "\r\n\r\nx", "\t \t", "a\r\r\n\n\rb")

// TestBodyHasherSplits writes every awkward body in two pieces, cut at
// every offset, in three pieces for the short ones, and a byte at a time:
// the hash must not depend on where Writes begin and end, and must be
// go-msgauth's.
func TestBodyHasherSplits(t *testing.T) {
	for _, s := range awkwardSplitBodies {
		body := []byte(s)
		checkBodyHash(t, body)
		for _, relaxed := range []bool{false, true} {
			want := ourBodyHash(body, relaxed)
			check := func(cuts ...int) {
				t.Helper()
				if got := splitBodyHash(body, relaxed, cuts...); got != want {
					t.Fatalf("relaxed=%v body %q cut at %v: %s, in one Write %s", relaxed, body, cuts, got, want)
				}
			}
			ones := make([]int, len(body))
			for i := range ones {
				ones[i] = i + 1
			}
			check(ones...)
			for i := 0; i <= len(body); i++ {
				check(i)
				if len(body) <= 40 {
					for j := i; j <= len(body); j++ {
						check(i, j)
					}
				}
			}
		}
	}
}

// TestBodyHasherRuns checks that a canonical body is hashed in one Write
// to the hash, bar the CRLF added to a last line that lacks one.
func TestBodyHasherRuns(t *testing.T) {
	body := []byte(strings.Repeat("a line of text, canonical as it is\r\n", 100) + "\r\n\r\nmore\r\n\r\n")
	for _, relaxed := range []bool{false, true} {
		var w countingHash
		w.Hash = sha256.New()
		hashBody(&w, body, relaxed)
		if w.writes != 1 {
			t.Errorf("relaxed=%v: %d Writes to the hash, want 1", relaxed, w.writes)
		}
	}
}

type countingHash struct {
	hash.Hash
	writes int
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.writes++
	return c.Hash.Write(p)
}

// FuzzBodyHash compares our body canonicalization with go-msgauth's on
// random bodies, both canonicalizations, and checks that writing the body
// in three pieces, cut where the fuzzer says, changes nothing.
func FuzzBodyHash(f *testing.F) {
	for i, b := range awkwardSplitBodies {
		f.Add([]byte(b), uint16(i), uint16(2*i+1))
	}
	f.Fuzz(func(t *testing.T, body []byte, cut1, cut2 uint16) {
		checkBodyHash(t, body)
		if len(body) == 0 {
			return
		}
		a, b := int(cut1)%(len(body)+1), int(cut2)%(len(body)+1)
		a, b = min(a, b), max(a, b)
		for _, relaxed := range []bool{false, true} {
			if got, want := splitBodyHash(body, relaxed, a, b), ourBodyHash(body, relaxed); got != want {
				t.Fatalf("relaxed=%v body %q cut at %d, %d: %s, in one Write %s", relaxed, body, a, b, got, want)
			}
		}
	})
}
