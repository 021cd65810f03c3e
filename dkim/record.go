package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
)

// maxTXTString is the longest character-string a TXT record may hold
// (RFC 1035 §3.3).
const maxTXTString = 255

// TXTRecord returns the value of the DNS TXT record that publishes pub
// (RFC 6376 §3.6.1): "v=DKIM1; k=rsa; p=<base64 of the PKIX
// SubjectPublicKeyInfo>" for an *rsa.PublicKey, "v=DKIM1; k=ed25519;
// p=<base64 of the 32-byte key>" for an ed25519.PublicKey (RFC 8463 §4).
// A private key (anything with a Public method, such as a crypto.Signer)
// is accepted too and its public half published.
//
// The value is longer than 255 octets for RSA keys of 2048 bits: see
// SplitTXT and ZoneRecord.
func TXTRecord(pub crypto.PublicKey) (string, error) {
	if k, ok := pub.(interface{ Public() crypto.PublicKey }); ok {
		var err error
		if pub, err = publicKey(k); err != nil {
			return "", err
		}
	}
	if err := checkPublic(pub); err != nil {
		return "", err
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			return "", fmt.Errorf("dkim: encoding RSA public key: %w", err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(p), nil
	}
	return "", fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
}

// SplitTXT splits a TXT record value into character-strings of at most 255
// octets each (RFC 1035 §3.3.14), as a zone file or DNS API that takes
// several strings wants them. Receivers join them back without separators
// (RFC 6376 §3.6.2.2). An empty value gives one empty string.
func SplitTXT(value string) []string {
	if value == "" {
		return []string{""}
	}
	parts := make([]string, 0, len(value)/maxTXTString+1)
	for len(value) > maxTXTString {
		parts = append(parts, value[:maxTXTString])
		value = value[maxTXTString:]
	}
	return append(parts, value)
}

// RecordName returns the DNS name at which receivers look up the key for
// selector and domain: "selector._domainkey.domain" (RFC 6376 §3.6.2.1).
func RecordName(domain, selector string) string {
	return selector + "._domainkey." + strings.TrimSuffix(domain, ".")
}

// ZoneRecord returns a line for a DNS zone file (RFC 1035 §5.1) that
// publishes pub for domain and selector, the value split into quoted
// character-strings:
//
//	sel._domainkey.example.com. IN TXT ( "v=DKIM1; k=rsa; p=MIIB..." "...AQAB" )
func ZoneRecord(domain, selector string, pub crypto.PublicKey) (string, error) {
	if domain == "" {
		return "", ErrNoDomain
	}
	if selector == "" {
		return "", ErrNoSelector
	}
	if !validDomain(strings.TrimSuffix(domain, ".")) {
		return "", fmt.Errorf("%w: %q", ErrInvalidDomain, domain)
	}
	if !validDomain(selector) {
		return "", fmt.Errorf("%w: %q", ErrInvalidSelector, selector)
	}
	v, err := TXTRecord(pub)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(RecordName(domain, selector))
	b.WriteString(". IN TXT (")
	for _, s := range SplitTXT(v) {
		// The value holds no quote or backslash: base64, letters, "=; ".
		b.WriteString(` "`)
		b.WriteString(s)
		b.WriteString(`"`)
	}
	b.WriteString(" )")
	return b.String(), nil
}
