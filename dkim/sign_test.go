package dkim_test

import (
	"bytes"
	"crypto"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mxrelay/mxrelay/dkim"
)

// TestSignVerify signs every test message with every configuration and
// checks the result with go-msgauth's verifier through an injected lookup.
func TestSignVerify(t *testing.T) {
	cfgs, recs := testConfigs(t)
	msgs := messages(t)
	for _, m := range extraMessages(t) {
		msgs[m.name] = m.msg
	}
	for cname, cfg := range cfgs {
		s := mustSigner(t, cfg...)
		for mname, msg := range msgs {
			t.Run(cname+"/"+mname, func(t *testing.T) {
				signed := sign(t, s, msg)
				if !bytes.HasSuffix(signed, msg) {
					t.Fatal("signed message does not end with the original bytes")
				}
				sigs := signed[:len(signed)-len(msg)]
				if n := bytes.Count(sigs, []byte("DKIM-Signature:")); n != len(cfg) {
					t.Fatalf("%d DKIM-Signature fields, want %d:\n%s", n, len(cfg), sigs)
				}
				if bytes.Contains(sigs, []byte(" l=")) || bytes.Contains(sigs, []byte(";l=")) {
					t.Errorf("signature has an l= tag:\n%s", sigs)
				}
				res := verifyAll(t, signed, recs, len(cfg))
				for i, r := range res {
					if r.Domain != cfg[i].Domain || r.Selector != cfg[i].Selector {
						t.Errorf("result %d: d=%s s=%s, want d=%s s=%s", i, r.Domain, r.Selector, cfg[i].Domain, cfg[i].Selector)
					}
					if cfg[i].Expiration > 0 {
						if got := r.Expiration.Sub(r.Time); got < cfg[i].Expiration || got > cfg[i].Expiration+2*time.Second {
							t.Errorf("x= - t= = %v, want about %v", got, cfg[i].Expiration)
						}
					} else if !r.Expiration.IsZero() {
						t.Errorf("unexpected x= tag: %v", r.Expiration)
					}
				}
			})
		}
	}
}

// TestSignReaders feeds messages in awkward pieces: one byte per read,
// data together with io.EOF, and a header line longer than the read buffer.
func TestSignReaders(t *testing.T) {
	cfgs, recs := testConfigs(t)
	s := mustSigner(t, cfgs["dual-mixed"]...)
	msgs := []namedMessage{{"multipart", messages(t)["multipart"]}}
	msgs = append(msgs, extraMessages(t)...)
	huge := "From: a@example.com\r\nX-Long: " + strings.Repeat("z", 100<<10) + "\r\nSubject: " +
		strings.Repeat("folded ", 10000) + "\r\n\r\nbody\r\n"
	msgs = append(msgs, namedMessage{"100KB header line", []byte(huge)})
	for _, m := range msgs {
		for rname, wrap := range map[string]func(io.Reader) io.Reader{
			"one-byte": iotest.OneByteReader,
			"data-err": iotest.DataErrReader,
			"half":     iotest.HalfReader,
		} {
			t.Run(m.name+"/"+rname, func(t *testing.T) {
				var out bytes.Buffer
				if err := s.Sign(&out, wrap(bytes.NewReader(m.msg))); err != nil {
					t.Fatal(err)
				}
				if !bytes.HasSuffix(out.Bytes(), m.msg) {
					t.Fatal("output does not end with the message")
				}
				verifyAll(t, out.Bytes(), recs, 2)
			})
		}
	}
}

func TestCanonicalizationTag(t *testing.T) {
	ed := edKey(t)
	for _, tc := range []struct {
		h, b dkim.Canonicalization
		want string
	}{
		{"", "", "c=relaxed/relaxed"},
		{dkim.Simple, dkim.Simple, "c=simple/simple"},
		{dkim.Relaxed, dkim.Simple, "c=relaxed/simple"},
		{dkim.Simple, "", "c=simple/relaxed"},
	} {
		s := mustSigner(t, dkim.Config{Domain: "example.com", Selector: "ed", Key: ed, HeaderCanonicalization: tc.h, BodyCanonicalization: tc.b})
		signed := sign(t, s, messages(t)["plain"])
		if !bytes.Contains(signed, []byte(tc.want+";")) {
			t.Errorf("%q/%q: no %s in\n%s", tc.h, tc.b, tc.want, signed)
		}
	}
}

var hTag = regexp.MustCompile(`(?:^|[;\s])h=([^;]*);`)

// signedHeaders returns the h= list of the first signature, lower case.
func signedHeaders(t *testing.T, signed []byte) []string {
	t.Helper()
	sig, _, _ := strings.Cut(string(signed), "\r\n\r\n")
	// Unfold the first signature only.
	sig = strings.ReplaceAll(sig, "\r\n ", " ")
	sig = strings.ReplaceAll(sig, "\r\n\t", " ")
	m := hTag.FindStringSubmatch(sig)
	if m == nil {
		t.Fatalf("no h= tag in %q", sig)
	}
	var out []string
	for h := range strings.SplitSeq(m[1], ":") {
		out = append(out, strings.ToLower(strings.Join(strings.Fields(h), "")))
	}
	return out
}

func TestSignedHeaders(t *testing.T) {
	ed := edKey(t)
	msgs := messages(t)
	for _, tc := range []struct {
		name string
		cfg  dkim.Config
		msg  string
		want string
	}{
		{"default/plain", dkim.Config{}, "plain",
			"from:from:to:to:cc:subject:subject:date:date:message-id:reply-to:mime-version:content-type:content-transfer-encoding:list-unsubscribe:list-unsubscribe-post"},
		{"default/folded", dkim.Config{}, "folded-headers",
			"from:from:to:to:cc:cc:subject:subject:date:date:message-id:reply-to:reply-to:in-reply-to:references:mime-version:content-type:content-transfer-encoding:list-unsubscribe:list-unsubscribe:list-unsubscribe-post:list-unsubscribe-post"},
		{"default/duplicates", dkim.Config{}, "duplicate-headers",
			"from:from:to:to:to:cc:subject:subject:date:date:message-id:reply-to:list-unsubscribe:list-unsubscribe-post"},
		{"no-oversign", dkim.Config{Oversign: []string{}}, "plain",
			"from:to:subject:date:message-id:mime-version:content-type:content-transfer-encoding"},
		{"custom", dkim.Config{Headers: []string{"Subject", "X-Mailer", "Received"}, Oversign: []string{"X-Campaign"}}, "duplicate-headers",
			"from:subject:received:received:x-campaign"},
		{"custom-no-from", dkim.Config{Headers: []string{"Date"}, Oversign: []string{"from"}}, "plain",
			"from:from:date"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Domain, cfg.Selector, cfg.Key = "example.com", "ed", ed
			got := strings.Join(signedHeaders(t, sign(t, mustSigner(t, cfg), msgs[tc.msg])), ":")
			if got != tc.want {
				t.Errorf("h=\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestDefaultsAreCopies(t *testing.T) {
	h := dkim.DefaultHeaders()
	h[0] = "X-Changed"
	if dkim.DefaultHeaders()[0] != "From" {
		t.Fatal("DefaultHeaders shares its slice")
	}
	o := dkim.DefaultOversign()
	o[0] = "X-Changed"
	if dkim.DefaultOversign()[0] != "From" {
		t.Fatal("DefaultOversign shares its slice")
	}
}

// TestTampering checks that changes after signing break every signature.
func TestTampering(t *testing.T) {
	cfgs, recs := testConfigs(t)
	msg := messages(t)["folded-headers"]
	for _, cname := range []string{"dual", "rsa-simple", "ed-relaxed"} {
		signed := sign(t, mustSigner(t, cfgs[cname]...), msg)
		verifyAll(t, signed, recs, len(cfgs[cname]))
		sigs := string(signed[:len(signed)-len(msg)])
		for _, tc := range []struct {
			name string
			edit func(string) string
		}{
			{"body byte", func(m string) string { return strings.Replace(m, "\r\nBody.", "\r\nBody!", 1) }},
			{"body appended", func(m string) string { return m + "PS: click here\r\n" }},
			{"signed header", func(m string) string { return strings.Replace(m, "Subject: A subject", "Subject: B subject", 1) }},
			{"second From on top", func(m string) string { return "From: Mallory <ceo@example.com>\r\n" + m }},
			{"second From at bottom", func(m string) string {
				return strings.Replace(m, "\r\n\r\n", "\r\nFrom: Mallory <ceo@example.com>\r\n\r\n", 1)
			}},
			{"second Subject", func(m string) string { return "Subject: Urgent: wire money\r\n" + m }},
			{"added Cc", func(m string) string { return "Cc: mallory@example.net\r\n" + m }},
			{"added Reply-To", func(m string) string { return "Reply-To: mallory@example.net\r\n" + m }},
			{"removed To", func(m string) string { return strings.Replace(m, "To: Bob", "X-To: Bob", 1) }},
		} {
			t.Run(cname+"/"+tc.name, func(t *testing.T) {
				body := tc.edit(string(msg))
				if body == string(msg) {
					t.Fatal("edit changed nothing")
				}
				verifyFails(t, []byte(sigs+body), recs)
			})
		}
	}
}

// TestSignOnlyHeaderFold checks that relaxed canonicalization survives
// what relays do to whitespace, and simple does not.
func TestRelaxedSurvivesRefolding(t *testing.T) {
	cfgs, recs := testConfigs(t)
	msg := messages(t)["folded-headers"]
	refold := func(m string) string {
		m = strings.Replace(m, "Subject: A subject that is folded\r\n  over", "Subject:   A subject that is folded over", 1)
		return strings.Replace(m, "\r\nBody.\r\n", "\r\nBody.   \r\n\r\n\r\n", 1)
	}
	signed := sign(t, mustSigner(t, cfgs["ed-relaxed"]...), msg)
	sigs := string(signed[:len(signed)-len(msg)])
	verifyAll(t, []byte(sigs+refold(string(msg))), recs, 1)

	signed = sign(t, mustSigner(t, cfgs["ed-simple"]...), msg)
	sigs = string(signed[:len(signed)-len(msg)])
	verifyFails(t, []byte(sigs+refold(string(msg))), recs)
}

func TestSignBadMessage(t *testing.T) {
	s := mustSigner(t, dkim.Config{Domain: "example.com", Selector: "ed", Key: edKey(t)})
	for _, tc := range []struct {
		name, msg string
		want      error
	}{
		{"empty", "", dkim.ErrHeaderNotTerminated},
		{"no From", "To: bob@example.net\r\nSubject: x\r\n\r\nbody\r\n", dkim.ErrNoFrom},
		{"two From", "From: a@example.com\r\nFrom: b@example.com\r\n\r\nbody\r\n", dkim.ErrMultipleFrom},
		{"From case", "FROM: a@example.com\r\nfrom: b@example.com\r\n\r\n", dkim.ErrMultipleFrom},
		{"header never ends", "From: a@example.com\r\nSubject: x\r\n", dkim.ErrHeaderNotTerminated},
		{"header cut mid-line", "From: a@example.com\r\nSubj", dkim.ErrHeaderNotTerminated},
		{"no colon", "From: a@example.com\r\nnot a header\r\n\r\n", dkim.ErrMalformedHeader},
		{"starts with continuation", " From: a@example.com\r\n\r\n", dkim.ErrMalformedHeader},
		{"empty name", ": x\r\nFrom: a@example.com\r\n\r\n", dkim.ErrMalformedHeader},
		{"bare CR in header", "From:\r0\n\n", dkim.ErrMalformedHeader},
		{"bare CR ending the header early", "From: a@example.com\r\r\nSubject: x\r\n\r\n", dkim.ErrMalformedHeader},
		{"mbox From line", "From alice@example.com Thu Nov 26 10:00:00 2026\r\nFrom: a@example.com\r\n\r\n", dkim.ErrMalformedHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := s.Sign(&out, strings.NewReader(tc.msg))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Sign: %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "dkim: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if out.Len() != 0 {
				t.Errorf("wrote %d bytes on error", out.Len())
			}
		})
	}
}

// Many instances of a signed field make a long h= list: it is folded
// between names, so no line of the signature passes 78 characters, and
// the signature verifies.
func TestSignManyFields(t *testing.T) {
	ed := edKey(t)
	s := mustSigner(t, dkim.Config{Domain: "example.com", Selector: "ed", Key: ed, Headers: []string{"Received"}})
	var msg strings.Builder
	msg.WriteString("From: a@example.com\r\n")
	for range 110 { // 110 × len("Received:") > 998
		msg.WriteString("Received: from a by b\r\n")
	}
	msg.WriteString("\r\nbody\r\n")
	signed := sign(t, s, []byte(msg.String()))
	sig, _, _ := strings.Cut(string(signed), "\r\nReceived:")
	for line := range strings.SplitSeq(sig, "\r\n") {
		if len(line) > 78 {
			t.Errorf("a line of %d characters: %q", len(line), line)
		}
	}
	// From, 110 Received, then the eight oversigned names once each.
	if got := len(signedHeaders(t, signed)); got != 1+110+len(dkim.DefaultOversign()) {
		t.Errorf("h= lists %d fields, want %d", got, 1+110+len(dkim.DefaultOversign()))
	}
	recs := keyRecords{}
	recs.add(t, "example.com", "ed", ed)
	verifyAll(t, signed, recs, 1)
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func TestSignIOErrors(t *testing.T) {
	s := mustSigner(t, dkim.Config{Domain: "example.com", Selector: "ed", Key: edKey(t)},
		dkim.Config{Domain: "example.com", Selector: "rsa", Key: rsaKey(t)})
	boom := errors.New("boom")
	msg := messages(t)["plain"]
	// Fails in the body, after the header was read.
	r := io.MultiReader(bytes.NewReader(msg), errReader{boom})
	if err := s.Sign(io.Discard, r); !errors.Is(err, boom) {
		t.Errorf("read error: got %v", err)
	}
	// Fails in the header.
	if err := s.Sign(io.Discard, io.MultiReader(strings.NewReader("From: a@b.c\r\n"), errReader{boom})); !errors.Is(err, boom) {
		t.Errorf("header read error: got %v", err)
	}
	if err := s.Sign(errWriter{boom}, bytes.NewReader(msg)); !errors.Is(err, boom) {
		t.Errorf("write error: got %v", err)
	}
	// The Signer still works afterwards.
	_, recs := testConfigs(t)
	verifyAll(t, sign(t, s, msg), recs, 2)
}

func TestNewSignerErrors(t *testing.T) {
	ed, rsaK := edKey(t), rsaKey(t)
	weak, err := loadKeyFile("testdata/rsa768-weak.pem")
	if !errors.Is(err, dkim.ErrWeakKey) || weak != nil {
		t.Fatalf("weak key file: %v", err)
	}
	ok := dkim.Config{Domain: "example.com", Selector: "sel", Key: ed}
	with := func(f func(*dkim.Config)) dkim.Config { c := ok; f(&c); return c }
	for _, tc := range []struct {
		name string
		cfg  dkim.Config
		want error
	}{
		{"no domain", with(func(c *dkim.Config) { c.Domain = "" }), dkim.ErrNoDomain},
		{"no selector", with(func(c *dkim.Config) { c.Selector = "" }), dkim.ErrNoSelector},
		{"domain with space", with(func(c *dkim.Config) { c.Domain = "exa mple.com" }), dkim.ErrInvalidDomain},
		{"domain with CRLF", with(func(c *dkim.Config) { c.Domain = "example.com\r\nBcc: x" }), dkim.ErrInvalidDomain},
		{"domain with semicolon", with(func(c *dkim.Config) { c.Domain = "example.com; s=evil" }), dkim.ErrInvalidDomain},
		{"domain empty label", with(func(c *dkim.Config) { c.Domain = "example..com" }), dkim.ErrInvalidDomain},
		{"domain trailing dot", with(func(c *dkim.Config) { c.Domain = "example.com." }), dkim.ErrInvalidDomain},
		{"domain hyphen", with(func(c *dkim.Config) { c.Domain = "-example.com" }), dkim.ErrInvalidDomain},
		{"domain U-label", with(func(c *dkim.Config) { c.Domain = "bücher.example" }), dkim.ErrInvalidDomain},
		{"domain label too long", with(func(c *dkim.Config) { c.Domain = strings.Repeat("a", 64) + ".com" }), dkim.ErrInvalidDomain},
		{"domain too long", with(func(c *dkim.Config) { c.Domain = strings.Repeat("abcdefghi.", 26) + "com" }), dkim.ErrInvalidDomain},
		{"selector with colon", with(func(c *dkim.Config) { c.Selector = "a:b" }), dkim.ErrInvalidSelector},
		{"selector with equals", with(func(c *dkim.Config) { c.Selector = "a=b" }), dkim.ErrInvalidSelector},
		{"nil key", with(func(c *dkim.Config) { c.Key = nil }), dkim.ErrNoKey},
		{"ecdsa key", with(func(c *dkim.Config) { c.Key = ecdsaKey(t) }), dkim.ErrUnsupportedKey},
		{"bad canonicalization", with(func(c *dkim.Config) { c.BodyCanonicalization = "nowsp" }), dkim.ErrInvalidConfig},
		{"negative expiration", with(func(c *dkim.Config) { c.Expiration = -time.Hour }), dkim.ErrInvalidConfig},
		{"tiny expiration", with(func(c *dkim.Config) { c.Expiration = time.Millisecond }), dkim.ErrInvalidConfig},
		{"bad header name", with(func(c *dkim.Config) { c.Headers = []string{"Subject:"} }), dkim.ErrInvalidConfig},
		{"bad oversign name", with(func(c *dkim.Config) { c.Oversign = []string{"Sub ject"} }), dkim.ErrInvalidConfig},
		{"identifier other domain", with(func(c *dkim.Config) { c.Identifier = "@example.org" }), dkim.ErrInvalidConfig},
		{"identifier lookalike", with(func(c *dkim.Config) { c.Identifier = "@badexample.com" }), dkim.ErrInvalidConfig},
		{"identifier other case", with(func(c *dkim.Config) { c.Identifier = "@EXAMPLE.com" }), dkim.ErrInvalidConfig},
		{"identifier no at", with(func(c *dkim.Config) { c.Identifier = "example.com" }), dkim.ErrInvalidConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := dkim.NewSigner(tc.cfg)
			if !errors.Is(err, tc.want) || s != nil {
				t.Fatalf("NewSigner: %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "dkim: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			// The same error from the second of two Configs.
			if _, err := dkim.NewSigner(ok, tc.cfg); !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "config 1") {
				t.Errorf("second config: %v", err)
			}
		})
	}
	if _, err := dkim.NewSigner(); !errors.Is(err, dkim.ErrNoConfig) {
		t.Errorf("no config: %v", err)
	}
	msg := bytes.NewReader(messages(t)["plain"])
	if err := new(dkim.Signer).Sign(io.Discard, msg); !errors.Is(err, dkim.ErrNoConfig) {
		t.Errorf("zero Signer: %v", err)
	}
	if err := (*dkim.Signer)(nil).Sign(io.Discard, msg); !errors.Is(err, dkim.ErrNoConfig) {
		t.Errorf("nil Signer: %v", err)
	}
	for _, good := range []dkim.Config{
		ok,
		{Domain: "Mail.Example.COM", Selector: "s2026-01._x", Key: rsaK},
		{Domain: "xn--bcher-kva.example", Selector: "sel", Key: ed, Identifier: "news@sub.xn--bcher-kva.example"},
		{Domain: "example.com", Selector: "sel", Key: ed, Identifier: "@example.com", Expiration: time.Second},
	} {
		if _, err := dkim.NewSigner(good); err != nil {
			t.Errorf("NewSigner(%s/%s): %v", good.Domain, good.Selector, err)
		}
	}
}

// TestSignConcurrent shares one Signer between goroutines (run with -race).
func TestSignConcurrent(t *testing.T) {
	cfgs, recs := testConfigs(t)
	s := mustSigner(t, cfgs["dual"]...)
	msgs := messages(t)
	done := make(chan []byte, len(msgs))
	for _, m := range msgs {
		go func() {
			var out bytes.Buffer
			if err := s.Sign(&out, bytes.NewReader(m)); err != nil {
				t.Error(err)
			}
			done <- out.Bytes()
		}()
	}
	for range msgs {
		verifyAll(t, <-done, recs, 2)
	}
}

func TestSignerKeys(t *testing.T) {
	ed, err := dkim.GenerateKey(dkim.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	rk, err := dkim.GenerateKey(dkim.RSA)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dkim.NewSigner(dkim.Config{Domain: "example.com", Selector: "ed", Key: ed}, dkim.Config{Domain: "example.com", Selector: "rsa", Key: rk})
	if err != nil {
		t.Fatal(err)
	}
	keys := s.Keys()
	if len(keys) != 2 || keys[0].Selector != "ed" || keys[0].Algorithm != "ed25519-sha256" ||
		keys[1].Selector != "rsa" || keys[1].Algorithm != "rsa-sha256" || keys[1].Domain != "example.com" {
		t.Fatalf("Keys = %+v", keys)
	}
	if !ed.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(keys[0].Public) {
		t.Error("the Ed25519 public key is not the signer's")
	}
	if (*dkim.Signer)(nil).Keys() != nil {
		t.Error("a nil Signer has keys")
	}
}
