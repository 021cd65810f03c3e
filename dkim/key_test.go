package dkim_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/dkim"
)

func TestParsePrivateKey(t *testing.T) {
	for _, tc := range []struct {
		file string
		want error // nil → parses
		kind string
	}{
		{"rsa2048-pkcs1.pem", nil, "rsa"},
		{"rsa2048-pkcs8.pem", nil, "rsa"},
		{"ed25519.pem", nil, "ed25519"},
		{"ecdsa-p256.pem", dkim.ErrUnsupportedKey, ""},
		{"rsa768-weak.pem", dkim.ErrWeakKey, ""},
		{"rsa2048-encrypted-pkcs1.pem", dkim.ErrEncryptedKey, ""},
		{"rsa2048-encrypted-pkcs8.pem", dkim.ErrEncryptedKey, ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile("testdata/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			k, err := dkim.ParsePrivateKey(b)
			if tc.want != nil {
				if !errors.Is(err, tc.want) || k != nil {
					t.Fatalf("got %v, %v; want %v", k, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch k.(type) {
			case *rsa.PrivateKey:
				if tc.kind != "rsa" {
					t.Errorf("got RSA, want %s", tc.kind)
				}
			case ed25519.PrivateKey:
				if tc.kind != "ed25519" {
					t.Errorf("got Ed25519, want %s", tc.kind)
				}
			default:
				t.Errorf("got %T", k)
			}
		})
	}
}

func TestParsePrivateKeyBadInput(t *testing.T) {
	rsaPEM, err := os.ReadFile("testdata/rsa2048-pkcs1.pem")
	if err != nil {
		t.Fatal(err)
	}
	edPEM, err := os.ReadFile("testdata/ed25519.pem")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", dkim.ErrInvalidKey},
		{"garbage", "not a key at all", dkim.ErrInvalidKey},
		{"base64 without armor", "MIIEpAIBAAKCAQEAp08yqTew6cVPtHbJFS1Q5Pf5Q1IlL1vNVidGQjo6VeYV7jQY", dkim.ErrInvalidKey},
		{"corrupt body", "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", dkim.ErrInvalidKey},
		{"pkcs8 body in pkcs1 block", strings.Replace(strings.Replace(string(edPEM), "BEGIN PRIVATE", "BEGIN RSA PRIVATE", 1), "END PRIVATE", "END RSA PRIVATE", 1), dkim.ErrInvalidKey},
		{"public key only", "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n", dkim.ErrInvalidKey},
		{"openssh", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n", dkim.ErrUnsupportedKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := dkim.ParsePrivateKey([]byte(tc.in))
			if !errors.Is(err, tc.want) || k != nil {
				t.Fatalf("got %v, %v; want %v", k, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "dkim: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	// A certificate or other block before the key is skipped.
	withCert := "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" + string(rsaPEM)
	if _, err := dkim.ParsePrivateKey([]byte(withCert)); err != nil {
		t.Errorf("key after another block: %v", err)
	}
}

func TestGenerateKey(t *testing.T) {
	types := []dkim.KeyType{dkim.Ed25519}
	if !testing.Short() {
		types = append(types, dkim.RSA)
	}
	for _, kt := range types {
		t.Run(string(kt), func(t *testing.T) {
			k, err := dkim.GenerateKey(kt)
			if err != nil {
				t.Fatal(err)
			}
			if rk, ok := k.(*rsa.PrivateKey); ok && rk.N.BitLen() != dkim.RSAKeyBits {
				t.Errorf("RSA key of %d bits", rk.N.BitLen())
			}
			pemBytes, err := dkim.MarshalPrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			back, err := dkim.ParsePrivateKey(pemBytes)
			if err != nil {
				t.Fatal(err)
			}
			if !back.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
				t.Error("key changed through MarshalPrivateKey/ParsePrivateKey")
			}
			rec, err := dkim.TXTRecord(k.Public())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(rec, "v=DKIM1; k="+string(kt)+"; p=") {
				t.Errorf("record %q", rec)
			}
			// The new key signs and verifies.
			recs := keyRecords{}
			recs.add(t, "example.com", "new", k)
			s := mustSigner(t, dkim.Config{Domain: "example.com", Selector: "new", Key: k})
			verifyAll(t, sign(t, s, messages(t)["plain"]), recs, 1)
		})
	}
	if _, err := dkim.GenerateKey("dsa"); !errors.Is(err, dkim.ErrUnsupportedKey) {
		t.Errorf("GenerateKey(dsa): %v", err)
	}
	if _, err := dkim.MarshalPrivateKey(nil); !errors.Is(err, dkim.ErrNoKey) {
		t.Errorf("MarshalPrivateKey(nil): %v", err)
	}
	if _, err := dkim.MarshalPrivateKey(ecdsaKey(t)); !errors.Is(err, dkim.ErrUnsupportedKey) {
		t.Errorf("MarshalPrivateKey(ecdsa): %v", err)
	}
}
