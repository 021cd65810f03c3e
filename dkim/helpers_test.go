package dkim_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/dkim"
)

// Fixed keys from testdata: RSA-2048 generation is slow under -race.
var (
	rsaKeyOnce = sync.OnceValues(func() (crypto.Signer, error) { return loadKeyFile("testdata/rsa2048-pkcs1.pem") })
	edKeyOnce  = sync.OnceValues(func() (crypto.Signer, error) { return loadKeyFile("testdata/ed25519.pem") })
)

func loadKeyFile(name string) (crypto.Signer, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return dkim.ParsePrivateKey(b)
}

func rsaKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := rsaKeyOnce()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func edKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := edKeyOnce()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// keyRecords maps "selector._domainkey.domain" to TXT values.
type keyRecords map[string]string

func (k keyRecords) add(t testing.TB, domain, selector string, key crypto.Signer) {
	t.Helper()
	v, err := dkim.TXTRecord(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	k[dkim.RecordName(domain, selector)] = v
}

func (k keyRecords) lookup(_ context.Context, name string) ([]string, error) {
	if v, ok := k[name]; ok {
		return []string{v}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// testConfigs are the signer set-ups every message is signed with, and the
// records that verify them: all four header/body canonicalization pairs
// with each key type, dual signatures, i=, x= and no oversigning.
func testConfigs(t testing.TB) (map[string][]dkim.Config, keyRecords) {
	rsaK, edK := rsaKey(t), edKey(t)
	recs := keyRecords{}
	recs.add(t, "example.com", "rsa", rsaK)
	recs.add(t, "example.com", "ed", edK)
	recs.add(t, "mail.example.com", "s2026_a", rsaK)
	return map[string][]dkim.Config{
		"rsa-relaxed":   {{Domain: "example.com", Selector: "rsa", Key: rsaK}},
		"ed-relaxed":    {{Domain: "example.com", Selector: "ed", Key: edK}},
		"rsa-simple":    {{Domain: "example.com", Selector: "rsa", Key: rsaK, HeaderCanonicalization: dkim.Simple, BodyCanonicalization: dkim.Simple}},
		"ed-simple":     {{Domain: "example.com", Selector: "ed", Key: edK, HeaderCanonicalization: dkim.Simple, BodyCanonicalization: dkim.Simple}},
		"ed-mixed":      {{Domain: "example.com", Selector: "ed", Key: edK, HeaderCanonicalization: dkim.Relaxed, BodyCanonicalization: dkim.Simple}},
		"ed-mixed-sr":   {{Domain: "example.com", Selector: "ed", Key: edK, HeaderCanonicalization: dkim.Simple, BodyCanonicalization: dkim.Relaxed}},
		"rsa-mixed":     {{Domain: "example.com", Selector: "rsa", Key: rsaK, HeaderCanonicalization: dkim.Relaxed, BodyCanonicalization: dkim.Simple}},
		"rsa-mixed-sr":  {{Domain: "example.com", Selector: "rsa", Key: rsaK, HeaderCanonicalization: dkim.Simple, BodyCanonicalization: dkim.Relaxed}},
		"dual":          {{Domain: "example.com", Selector: "ed", Key: edK}, {Domain: "example.com", Selector: "rsa", Key: rsaK}},
		"dual-mixed":    {{Domain: "example.com", Selector: "ed", Key: edK, BodyCanonicalization: dkim.Simple}, {Domain: "mail.example.com", Selector: "s2026_a", Key: rsaK, HeaderCanonicalization: dkim.Simple, Identifier: "alice@mail.example.com"}},
		"rsa-expiring":  {{Domain: "example.com", Selector: "rsa", Key: rsaK, Expiration: 72 * time.Hour}},
		"ed-no-oversig": {{Domain: "example.com", Selector: "ed", Key: edK, Oversign: []string{}}},
	}, recs
}

// messages returns testdata/messages/*.eml by base name.
func messages(t testing.TB) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob("testdata/messages/*.eml")
	if err != nil || len(names) == 0 {
		t.Fatalf("no test messages: %v", err)
	}
	m := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		m[strings.TrimSuffix(filepath.Base(n), ".eml")] = b
	}
	return m
}

func mustSigner(t testing.TB, cfgs ...dkim.Config) *dkim.Signer {
	t.Helper()
	s, err := dkim.NewSigner(cfgs...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sign(t testing.TB, s *dkim.Signer, msg []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := s.Sign(&out, bytes.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// verifyAll checks that msg carries want signatures and all verify.
func verifyAll(t testing.TB, msg []byte, recs keyRecords, want int) []dkim.VerifyResult {
	t.Helper()
	res, err := dkim.Verify(context.Background(), bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: recs.lookup})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(res) != want {
		t.Fatalf("Verify: %d results, want %d", len(res), want)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Errorf("signature %d (d=%s s=%s): %v", i, r.Domain, r.Selector, r.Err)
		}
	}
	return res
}

// verifyFails checks that msg has at least one signature and none verifies.
func verifyFails(t testing.TB, msg []byte, recs keyRecords) {
	t.Helper()
	res, err := dkim.Verify(context.Background(), bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: recs.lookup})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(res) == 0 {
		t.Fatal("no signature found")
	}
	for i, r := range res {
		if r.Err == nil {
			t.Errorf("signature %d (s=%s) verified, want a failure", i, r.Selector)
		} else if !errors.Is(r.Err, dkim.ErrPermFail) {
			t.Errorf("signature %d: %v, want ErrPermFail", i, r.Err)
		}
	}
}

func ecdsaKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func readTestdata(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", name))
}
