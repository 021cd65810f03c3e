package dkim_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/dkim"
)

// publicSigner is a crypto.Signer, such as an HSM key, whose Public method
// returns pub.
type publicSigner struct{ pub crypto.PublicKey }

func (s publicSigner) Public() crypto.PublicKey { return s.pub }

func (s publicSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("publicSigner cannot sign")
}

// ptrSigner is a crypto.Signer with pointer methods that dereference the
// receiver, as most do.
type ptrSigner struct{ key ed25519.PrivateKey }

func (s *ptrSigner) Public() crypto.PublicKey { return s.key.Public() }

func (s *ptrSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return s.key.Sign(r, d, o)
}

// noPanic runs f and turns a panic into an error that matches no sentinel,
// so that the caller's errors.Is check reports it.
func noPanic(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}

// TestMalformedKeys passes broken keys to every exported function that
// takes one: none may panic, each must return an error wrapping want.
func TestMalformedKeys(t *testing.T) {
	goodRSA := rsaKey(t).(*rsa.PrivateKey)
	goodEd := edKey(t).(ed25519.PrivateKey)
	goodEC := ecdsaKey(t).(*ecdsa.PrivateKey)

	rsaWith := func(f func(k *rsa.PrivateKey)) *rsa.PrivateKey {
		k := *goodRSA // shallow copy: f replaces fields, never mutates them
		f(&k)
		return &k
	}
	ecWith := func(f func(k *ecdsa.PrivateKey)) *ecdsa.PrivateKey {
		k := *goodEC
		f(&k)
		return &k
	}
	edOfLen := func(n int) ed25519.PrivateKey {
		k := make(ed25519.PrivateKey, n)
		copy(k, goodEd)
		return k
	}
	mismatchedEd := edOfLen(ed25519.PrivateKeySize)
	mismatchedEd[40] ^= 1 // public half no longer the seed's

	for _, tc := range []struct {
		name string
		key  crypto.Signer
		want []error // every one must match
	}{
		{"rsa typed nil", (*rsa.PrivateKey)(nil), []error{dkim.ErrInvalidKey, dkim.ErrNoKey}},
		{"rsa zero value", &rsa.PrivateKey{}, []error{dkim.ErrInvalidKey}},
		{"rsa nil N", rsaWith(func(k *rsa.PrivateKey) { k.N = nil }), []error{dkim.ErrInvalidKey}},
		{"rsa nil N no precomputed", rsaWith(func(k *rsa.PrivateKey) { k.N, k.Precomputed = nil, rsa.PrecomputedValues{} }), []error{dkim.ErrInvalidKey}},
		{"rsa nil D", rsaWith(func(k *rsa.PrivateKey) { k.D = nil }), []error{dkim.ErrInvalidKey}},
		{"rsa nil D no precomputed", rsaWith(func(k *rsa.PrivateKey) { k.D, k.Precomputed = nil, rsa.PrecomputedValues{} }), []error{dkim.ErrInvalidKey}},
		{"rsa zero E", rsaWith(func(k *rsa.PrivateKey) { k.E, k.Precomputed = 0, rsa.PrecomputedValues{} }), []error{dkim.ErrInvalidKey}},
		{"rsa wrong D", rsaWith(func(k *rsa.PrivateKey) { k.D, k.Precomputed = big.NewInt(3), rsa.PrecomputedValues{} }), []error{dkim.ErrInvalidKey}},
		{"rsa no primes", rsaWith(func(k *rsa.PrivateKey) { k.Primes, k.Precomputed = nil, rsa.PrecomputedValues{} }), []error{dkim.ErrInvalidKey}},
		{"rsa nil prime", rsaWith(func(k *rsa.PrivateKey) {
			k.Primes, k.Precomputed = []*big.Int{k.Primes[0], nil}, rsa.PrecomputedValues{}
		}), []error{dkim.ErrInvalidKey}},
		{"rsa only public", &rsa.PrivateKey{PublicKey: goodRSA.PublicKey}, []error{dkim.ErrInvalidKey}},

		{"ecdsa typed nil", (*ecdsa.PrivateKey)(nil), []error{dkim.ErrInvalidKey, dkim.ErrNoKey}},
		{"ecdsa zero value", &ecdsa.PrivateKey{}, []error{dkim.ErrUnsupportedKey}},
		{"ecdsa nil Curve", ecWith(func(k *ecdsa.PrivateKey) { k.Curve = nil }), []error{dkim.ErrUnsupportedKey}},

		{"ed25519 nil", ed25519.PrivateKey(nil), []error{dkim.ErrInvalidKey, dkim.ErrNoKey}},
		{"ed25519 empty", ed25519.PrivateKey{}, []error{dkim.ErrInvalidKey}},
		{"ed25519 10 bytes", edOfLen(10), []error{dkim.ErrInvalidKey}},
		{"ed25519 31 bytes", edOfLen(31), []error{dkim.ErrInvalidKey}},
		{"ed25519 seed only", edOfLen(ed25519.SeedSize), []error{dkim.ErrInvalidKey}},
		{"ed25519 63 bytes", edOfLen(63), []error{dkim.ErrInvalidKey}},
		{"ed25519 65 bytes", edOfLen(65), []error{dkim.ErrInvalidKey}},
		{"ed25519 128 bytes", edOfLen(128), []error{dkim.ErrInvalidKey}},
		{"ed25519 public half mismatch", mismatchedEd, []error{dkim.ErrInvalidKey}},

		{"signer public nil", publicSigner{nil}, []error{dkim.ErrInvalidKey, dkim.ErrNoKey}},
		{"signer public rsa typed nil", publicSigner{(*rsa.PublicKey)(nil)}, []error{dkim.ErrInvalidKey, dkim.ErrNoKey}},
		{"signer public rsa nil N", publicSigner{&rsa.PublicKey{E: 65537}}, []error{dkim.ErrInvalidKey}},
		{"signer public rsa zero E", publicSigner{&rsa.PublicKey{N: goodRSA.N}}, []error{dkim.ErrInvalidKey}},
		{"signer public rsa negative N", publicSigner{&rsa.PublicKey{N: new(big.Int).Neg(goodRSA.N), E: 65537}}, []error{dkim.ErrInvalidKey}},
		{"signer public ed25519 nil", publicSigner{ed25519.PublicKey(nil)}, []error{dkim.ErrInvalidKey, dkim.ErrNoKey}},
		{"signer public ecdsa nil", publicSigner{(*ecdsa.PublicKey)(nil)}, []error{dkim.ErrInvalidKey, dkim.ErrNoKey}},
		{"signer public ed25519 short", publicSigner{ed25519.PublicKey(make([]byte, 10))}, []error{dkim.ErrInvalidKey}},
		{"signer typed nil pointer", (*ptrSigner)(nil), []error{dkim.ErrInvalidKey, dkim.ErrNoKey}},
		// Well-formed keys of a kind DKIM does not use keep their own
		// sentinel.
		{"signer public string", publicSigner{"v=DKIM1"}, []error{dkim.ErrUnsupportedKey}},
		{"signer public ecdsa", publicSigner{goodEC.Public()}, []error{dkim.ErrUnsupportedKey}},
		{"ecdsa", goodEC, []error{dkim.ErrUnsupportedKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(fn string, err error) {
				t.Helper()
				for _, w := range tc.want {
					if !errors.Is(err, w) {
						t.Errorf("%s: %v; want errors.Is %v", fn, err, w)
						return
					}
				}
				// NewSigner puts "config N: " before the errors of a
				// second Config.
				if !strings.HasPrefix(err.Error(), "dkim: ") && !strings.HasPrefix(err.Error(), "config 1: dkim: ") {
					t.Errorf("%s: error %q lacks the package prefix", fn, err)
				}
			}
			cfg := dkim.Config{Domain: "example.com", Selector: "sel", Key: tc.key}
			check("NewSigner", noPanic(func() error {
				s, err := dkim.NewSigner(cfg)
				if err == nil {
					// Refused too late: see what signing does.
					err = fmt.Errorf("NewSigner accepted the key; Sign: %v", s.Sign(io.Discard, strings.NewReader("From: a@example.com\r\n\r\nbody\r\n")))
				} else if s != nil {
					err = fmt.Errorf("Signer and error %w", err)
				}
				return err
			}))
			check("NewSigner second config", noPanic(func() error {
				_, err := dkim.NewSigner(dkim.Config{Domain: "example.com", Selector: "ed", Key: goodEd}, cfg)
				return err
			}))
			check("MarshalPrivateKey", noPanic(func() error {
				b, err := dkim.MarshalPrivateKey(tc.key)
				if err == nil {
					err = fmt.Errorf("MarshalPrivateKey accepted the key: %d bytes", len(b))
				}
				return err
			}))
			check("TXTRecord", noPanic(func() error {
				rec, err := dkim.TXTRecord(tc.key)
				if err == nil {
					err = fmt.Errorf("TXTRecord accepted the key: %q", rec)
				}
				return err
			}))
			check("ZoneRecord", noPanic(func() error {
				_, err := dkim.ZoneRecord("example.com", "sel", tc.key)
				return err
			}))
		})
	}
}

// TestMalformedPublicKeys passes broken public keys to TXTRecord and
// ZoneRecord.
func TestMalformedPublicKeys(t *testing.T) {
	n := rsaKey(t).(*rsa.PrivateKey).N
	for _, tc := range []struct {
		name string
		pub  crypto.PublicKey
		want []error
	}{
		{"rsa typed nil", (*rsa.PublicKey)(nil), []error{dkim.ErrInvalidKey, dkim.ErrNoKey}},
		{"rsa zero value", &rsa.PublicKey{}, []error{dkim.ErrInvalidKey}},
		{"rsa zero E", &rsa.PublicKey{N: n}, []error{dkim.ErrInvalidKey}},
		{"rsa even E", &rsa.PublicKey{N: n, E: 65536}, []error{dkim.ErrInvalidKey}},
		{"rsa zero N", &rsa.PublicKey{N: new(big.Int), E: 65537}, []error{dkim.ErrInvalidKey}},
		{"rsa negative N", &rsa.PublicKey{N: new(big.Int).Neg(n), E: 65537}, []error{dkim.ErrInvalidKey}},
		{"ed25519 nil", ed25519.PublicKey(nil), []error{dkim.ErrInvalidKey, dkim.ErrNoKey}},
		{"ed25519 10 bytes", make(ed25519.PublicKey, 10), []error{dkim.ErrInvalidKey}},
		{"ed25519 33 bytes", make(ed25519.PublicKey, 33), []error{dkim.ErrInvalidKey}},
		{"ecdsa typed nil", (*ecdsa.PublicKey)(nil), []error{dkim.ErrInvalidKey, dkim.ErrNoKey}},
		{"ecdsa zero value", &ecdsa.PublicKey{}, []error{dkim.ErrUnsupportedKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for fn, f := range map[string]func() error{
				"TXTRecord":  func() error { _, err := dkim.TXTRecord(tc.pub); return err },
				"ZoneRecord": func() error { _, err := dkim.ZoneRecord("example.com", "sel", tc.pub); return err },
			} {
				err := noPanic(f)
				for _, w := range tc.want {
					if !errors.Is(err, w) {
						t.Errorf("%s: %v; want errors.Is %v", fn, err, w)
					}
				}
			}
		})
	}
}

// TestParsePrivateKeyMalformedDER feeds ParsePrivateKey well-armored PEM
// blocks whose DER holds broken keys.
func TestParsePrivateKeyMalformedDER(t *testing.T) {
	goodRSA := rsaKey(t).(*rsa.PrivateKey)
	type pkcs1 struct {
		Version               int
		N                     *big.Int
		E                     int
		D, P, Q, Dp, Dq, Qinv *big.Int
		AdditionalPrimes      []asn1.RawValue `asn1:"optional,omitempty"`
	}
	type pkcs8 struct {
		Version    int
		Algo       pkix.AlgorithmIdentifier
		PrivateKey []byte
	}
	der := func(v any) []byte {
		b, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	armor := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
	zero, one := new(big.Int), big.NewInt(1)
	p := goodRSA.Primes
	oidEd25519 := asn1.ObjectIdentifier{1, 3, 101, 112}
	oidRSA := asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	nullParams := asn1.RawValue{Tag: asn1.TagNull}
	seed := func(n int) []byte { return der(make([]byte, n)) } // OCTET STRING of n bytes
	ecPKCS8, err := x509.MarshalPKCS8PrivateKey(ecdsaKey(t))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		pem  []byte
		want error
	}{
		{"pkcs1 all zero", armor("RSA PRIVATE KEY", der(pkcs1{N: zero, D: zero, P: zero, Q: zero, Dp: zero, Dq: zero, Qinv: zero})), dkim.ErrInvalidKey},
		{"pkcs1 all one", armor("RSA PRIVATE KEY", der(pkcs1{N: one, E: 1, D: one, P: one, Q: one, Dp: one, Dq: one, Qinv: one})), dkim.ErrWeakKey},
		{"pkcs1 all one but N", armor("RSA PRIVATE KEY", der(pkcs1{N: goodRSA.N, E: 1, D: one, P: one, Q: one, Dp: one, Dq: one, Qinv: one})), dkim.ErrInvalidKey},
		{"pkcs1 wrong D", armor("RSA PRIVATE KEY", der(pkcs1{N: goodRSA.N, E: goodRSA.E, D: big.NewInt(3), P: p[0], Q: p[1], Dp: one, Dq: one, Qinv: one})), dkim.ErrInvalidKey},
		{"pkcs1 negative N", armor("RSA PRIVATE KEY", der(pkcs1{N: new(big.Int).Neg(goodRSA.N), E: goodRSA.E, D: goodRSA.D, P: p[0], Q: p[1], Dp: one, Dq: one, Qinv: one})), dkim.ErrInvalidKey},
		{"pkcs1 huge E", armor("RSA PRIVATE KEY", der(pkcs1{N: goodRSA.N, E: 1<<31 + 1, D: goodRSA.D, P: p[0], Q: p[1], Dp: one, Dq: one, Qinv: one})), dkim.ErrInvalidKey},
		{"pkcs8 rsa garbage inside", armor("PRIVATE KEY", der(pkcs8{Algo: pkix.AlgorithmIdentifier{Algorithm: oidRSA, Parameters: nullParams}, PrivateKey: []byte{0x30, 0x03, 0x02, 0x01}})), dkim.ErrInvalidKey},
		{"pkcs8 ed25519 no seed", armor("PRIVATE KEY", der(pkcs8{Algo: pkix.AlgorithmIdentifier{Algorithm: oidEd25519}})), dkim.ErrInvalidKey},
		{"pkcs8 ed25519 10-byte seed", armor("PRIVATE KEY", der(pkcs8{Algo: pkix.AlgorithmIdentifier{Algorithm: oidEd25519}, PrivateKey: seed(10)})), dkim.ErrInvalidKey},
		{"pkcs8 ed25519 64-byte seed", armor("PRIVATE KEY", der(pkcs8{Algo: pkix.AlgorithmIdentifier{Algorithm: oidEd25519}, PrivateKey: seed(64)})), dkim.ErrInvalidKey},
		{"pkcs8 ed25519 seed not octet string", armor("PRIVATE KEY", der(pkcs8{Algo: pkix.AlgorithmIdentifier{Algorithm: oidEd25519}, PrivateKey: []byte{0xff, 0xff, 0xff}})), dkim.ErrInvalidKey},
		{"pkcs8 unknown algorithm", armor("PRIVATE KEY", der(pkcs8{Algo: pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 3}}, PrivateKey: seed(32)})), dkim.ErrInvalidKey},
		{"pkcs8 ecdsa", armor("PRIVATE KEY", ecPKCS8), dkim.ErrUnsupportedKey},
		{"truncated pkcs1", armor("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(goodRSA)[:100]), dkim.ErrInvalidKey},
		{"truncated armor", []byte("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA"), dkim.ErrInvalidKey},
		{"binary garbage", []byte{0, 0xff, '-', '-', '-', '-', '-', 0x80}, dkim.ErrInvalidKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var k crypto.Signer
			err := noPanic(func() (err error) { k, err = dkim.ParsePrivateKey(tc.pem); return err })
			if !errors.Is(err, tc.want) || k != nil {
				t.Fatalf("got %v, %v; want %v", k, err, tc.want)
			}
		})
	}

}
