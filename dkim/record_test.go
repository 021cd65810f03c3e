package dkim_test

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/dkim"
)

func TestTXTRecord(t *testing.T) {
	ed := edKey(t).(ed25519.PrivateKey)
	rk := rsaKey(t).(*rsa.PrivateKey)

	rec, err := dkim.TXTRecord(ed.Public())
	if err != nil {
		t.Fatal(err)
	}
	p, ok := strings.CutPrefix(rec, "v=DKIM1; k=ed25519; p=")
	if !ok {
		t.Fatalf("record %q", rec)
	}
	raw, err := base64.StdEncoding.DecodeString(p)
	if err != nil || !ed25519.PublicKey(raw).Equal(ed.Public()) {
		t.Errorf("p= is not the raw Ed25519 key: %v", err)
	}
	// A private key is accepted and published as its public half.
	if rec2, err := dkim.TXTRecord(ed); err != nil || rec2 != rec {
		t.Errorf("TXTRecord(private) = %q, %v", rec2, err)
	}

	rec, err = dkim.TXTRecord(&rk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p, ok = strings.CutPrefix(rec, "v=DKIM1; k=rsa; p=")
	if !ok {
		t.Fatalf("record %q", rec)
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil || !rk.PublicKey.Equal(pub) {
		t.Errorf("p= is not the PKIX RSA key: %v", err)
	}

	for _, tc := range []struct {
		name string
		pub  any
		want error
	}{
		{"nil", nil, dkim.ErrNoKey},
		{"nil rsa", (*rsa.PublicKey)(nil), dkim.ErrNoKey},
		{"ecdsa", ecdsaKey(t).Public(), dkim.ErrUnsupportedKey},
		{"weak rsa", &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 767), E: 65537}, dkim.ErrWeakKey},
		{"short ed25519", ed25519.PublicKey(make([]byte, 31)), dkim.ErrInvalidKey},
		{"string", "v=DKIM1", dkim.ErrUnsupportedKey},
	} {
		if _, err := dkim.TXTRecord(tc.pub); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestSplitTXT(t *testing.T) {
	for _, n := range []int{0, 1, 254, 255, 256, 510, 511, 1000} {
		s := strings.Repeat("a", n)
		parts := dkim.SplitTXT(s)
		if strings.Join(parts, "") != s {
			t.Errorf("%d: parts do not join back", n)
		}
		want := max(1, (n+254)/255)
		if len(parts) != want {
			t.Errorf("%d: %d parts, want %d", n, len(parts), want)
		}
		for _, p := range parts {
			if len(p) > 255 {
				t.Errorf("%d: part of %d octets", n, len(p))
			}
		}
	}
}

func TestZoneRecord(t *testing.T) {
	rk := rsaKey(t)
	line, err := dkim.ZoneRecord("example.com.", "s1", rk.Public())
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := dkim.TXTRecord(rk.Public())
	prefix := "s1._domainkey.example.com. IN TXT ( \""
	if !strings.HasPrefix(line, prefix) || !strings.HasSuffix(line, "\" )") {
		t.Fatalf("line %q", line)
	}
	inner := strings.TrimSuffix(strings.TrimPrefix(line, prefix), "\" )")
	parts := strings.Split(inner, "\" \"")
	if len(parts) != 2 || strings.Join(parts, "") != rec {
		t.Errorf("line does not hold the record in 2 strings: %q", line)
	}
	for _, tc := range []struct {
		domain, sel string
		want        error
	}{
		{"", "s", dkim.ErrNoDomain},
		{"example.com", "", dkim.ErrNoSelector},
		{"exa mple.com", "s", dkim.ErrInvalidDomain},
		{"example.com", "s\"", dkim.ErrInvalidSelector},
	} {
		if _, err := dkim.ZoneRecord(tc.domain, tc.sel, rk.Public()); !errors.Is(err, tc.want) {
			t.Errorf("ZoneRecord(%q, %q): %v, want %v", tc.domain, tc.sel, err, tc.want)
		}
	}
	if got := dkim.RecordName("example.com", "sel"); got != "sel._domainkey.example.com" {
		t.Errorf("RecordName = %q", got)
	}
}
