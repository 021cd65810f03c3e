package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
)

// KeyType is a kind of DKIM key, named as in the k= tag of the key record.
type KeyType string

const (
	// RSA keys sign with rsa-sha256 (RFC 6376, RFC 8301). Every receiver
	// verifies them.
	RSA KeyType = "rsa"
	// Ed25519 keys sign with ed25519-sha256 (RFC 8463): short keys and
	// signatures, but not every receiver verifies them yet.
	Ed25519 KeyType = "ed25519"
)

// RSAKeyBits is the size of the RSA keys GenerateKey makes (RFC 8301 §3.2
// advises at least 2048).
const RSAKeyBits = 2048

// GenerateKey makes a new private key: RSA of RSAKeyBits bits, or Ed25519.
// Save it with MarshalPrivateKey and publish TXTRecord(key.Public()).
func GenerateKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case RSA:
		k, err := rsa.GenerateKey(rand.Reader, RSAKeyBits)
		if err != nil {
			return nil, fmt.Errorf("dkim: generating RSA key: %w", err)
		}
		return k, nil
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("dkim: generating Ed25519 key: %w", err)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedKey, string(t))
	}
}

// MarshalPrivateKey encodes an RSA or Ed25519 private key as an unencrypted
// PEM "PRIVATE KEY" block (PKCS #8), which ParsePrivateKey reads back.
// Store it with restrictive file permissions.
func MarshalPrivateKey(key crypto.Signer) ([]byte, error) {
	if err := checkSigner(key); err != nil {
		return nil, err
	}
	switch key.(type) {
	case *rsa.PrivateKey, ed25519.PrivateKey:
	default:
		return nil, fmt.Errorf("%w: cannot marshal %T", ErrUnsupportedKey, key)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("dkim: marshaling key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey reads the first private key in PEM data: PKCS #1
// ("RSA PRIVATE KEY") or PKCS #8 ("PRIVATE KEY"), RSA or Ed25519, as made
// by openssl genrsa, openssl genpkey, or MarshalPrivateKey. Other PEM
// blocks before the key (a certificate, parameters) are skipped. Encrypted
// keys are refused with ErrEncryptedKey, other algorithms (ECDSA) with
// ErrUnsupportedKey, RSA keys under 1024 bits with ErrWeakKey, and anything
// else with ErrInvalidKey.
func ParsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	rest := pemBytes
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%w: no PEM private key block found", ErrInvalidKey)
		}
		if _, ok := block.Headers["DEK-Info"]; ok {
			return nil, ErrEncryptedKey
		}
		var (
			key any
			err error
		)
		switch block.Type {
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, ErrEncryptedKey
		case "EC PRIVATE KEY", "DSA PRIVATE KEY", "OPENSSH PRIVATE KEY":
			return nil, fmt.Errorf("%w: PEM block %q", ErrUnsupportedKey, block.Type)
		default:
			continue
		}
		if err != nil {
			// crypto/rsa refuses keys under 1024 bits while parsing them.
			if bits := rsaModulusBits(block.Bytes, block.Type == "PRIVATE KEY"); bits > 0 && bits < 1024 {
				return nil, fmt.Errorf("%w: %d bits, need at least 1024", ErrWeakKey, bits)
			}
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidKey, block.Type, err)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, key)
		}
		if err := checkSigner(signer); err != nil {
			return nil, err
		}
		return signer, nil
	}
}

var oidRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}

// rsaModulusBits returns the modulus size of a DER RSA private key, PKCS #1
// or inside PKCS #8, or 0 if der is not one.
func rsaModulusBits(der []byte, pkcs8 bool) int {
	if pkcs8 {
		var p struct {
			Version    int
			Algo       pkix.AlgorithmIdentifier
			PrivateKey []byte
		}
		if _, err := asn1.Unmarshal(der, &p); err != nil || !p.Algo.Algorithm.Equal(oidRSA) {
			return 0
		}
		der = p.PrivateKey
	}
	var k struct {
		Version int
		N       *big.Int
	}
	if _, err := asn1.Unmarshal(der, &k); err != nil || k.N == nil {
		return 0
	}
	return k.N.BitLen()
}
