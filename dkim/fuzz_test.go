package dkim_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/mxrelay/mxrelay/dkim"
)

// FuzzSign signs arbitrary input: Sign either refuses it with one of the
// package's errors or produces signatures that verify, followed by the
// input unchanged. The seed corpus is in testdata/fuzz/FuzzSign.
func FuzzSign(f *testing.F) {
	for _, m := range messages(f) {
		f.Add(m)
	}
	f.Add([]byte("From: a@example.com\r\n\r\n"))
	f.Add([]byte("From: a@example.com\n\nbody"))
	f.Add([]byte("From: a@example.com\r\n \r\n\r\n"))
	f.Add([]byte("From: a@example.com\r\nSubject: \xff\xfe\r\n\r\n\x00\r\n.\r\n"))

	edK := edKey(f)
	recs := keyRecords{}
	recs.add(f, "example.com", "ed", edK)
	relaxed := mustSigner(f, dkim.Config{Domain: "example.com", Selector: "ed", Key: edK})
	simple := mustSigner(f, dkim.Config{Domain: "example.com", Selector: "ed", Key: edK,
		HeaderCanonicalization: dkim.Simple, BodyCanonicalization: dkim.Simple})
	known := []error{dkim.ErrTooManyFields, dkim.ErrNoFrom, dkim.ErrMultipleFrom, dkim.ErrHeaderNotTerminated, dkim.ErrMalformedHeader}

	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, s := range []*dkim.Signer{relaxed, simple} {
			var out bytes.Buffer
			err := s.Sign(&out, bytes.NewReader(msg))
			if err != nil {
				ok := false
				for _, k := range known {
					ok = ok || errors.Is(err, k)
				}
				if !ok {
					t.Fatalf("Sign: unexpected error %v", err)
				}
				if out.Len() != 0 {
					t.Fatal("output written on error")
				}
				continue
			}
			if !bytes.HasSuffix(out.Bytes(), msg) {
				t.Fatal("signed message does not end with the input")
			}
			// As the receiver gets it (the SMTP client makes every line
			// break CRLF), and as it is when it has no bare CR, which
			// go-msgauth reads differently.
			forms := [][]byte{wireForm(out.Bytes())}
			if !hasBareCR(msg) {
				forms = append(forms, out.Bytes())
			}
			for _, m := range forms {
				res, err := dkim.Verify(context.Background(), bytes.NewReader(m), &dkim.VerifyOptions{LookupTXT: recs.lookup})
				if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
					t.Fatalf("Verify: %v", err)
				}
				if len(res) == 0 || res[0].Err != nil {
					t.Fatalf("our signature does not verify: %+v", res)
				}
			}
		}
	})
}

// FuzzParsePrivateKey checks that no input panics and that any key
// accepted is usable.
func FuzzParsePrivateKey(f *testing.F) {
	for _, name := range []string{"rsa2048-pkcs1.pem", "rsa2048-pkcs8.pem", "ed25519.pem", "ecdsa-p256.pem", "rsa2048-encrypted-pkcs1.pem"} {
		b, err := readTestdata(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := dkim.ParsePrivateKey(b)
		if err != nil {
			if k != nil {
				t.Fatal("key and error")
			}
			return
		}
		if _, err := dkim.TXTRecord(k.Public()); err != nil {
			t.Fatalf("parsed key has no record: %v", err)
		}
		if _, err := dkim.NewSigner(dkim.Config{Domain: "example.com", Selector: "s", Key: k}); err != nil {
			t.Fatalf("parsed key refused: %v", err)
		}
	})
}

// wireForm is m as the SMTP client sends it: every CRLF, bare CR and bare
// LF a CRLF, and a CRLF at the end if there is none.
func wireForm(m []byte) []byte {
	m = bytes.ReplaceAll(m, []byte("\r\n"), []byte("\n"))
	m = bytes.ReplaceAll(m, []byte("\r"), []byte("\n"))
	m = bytes.ReplaceAll(m, []byte("\n"), []byte("\r\n"))
	if !bytes.HasSuffix(m, []byte("\r\n")) {
		m = append(m, "\r\n"...)
	}
	return m
}

// hasBareCR reports whether m has a CR not followed by LF.
func hasBareCR(m []byte) bool {
	return bytes.Count(m, []byte("\r")) != bytes.Count(m, []byte("\r\n"))
}
