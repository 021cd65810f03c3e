package dkim

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// Canonicalization names a DKIM canonicalization algorithm (RFC 6376 §3.4).
type Canonicalization string

const (
	// Relaxed tolerates the whitespace and header-folding changes that
	// relays commonly make (RFC 6376 §3.4.2, §3.4.4). It is the default.
	Relaxed Canonicalization = "relaxed"
	// Simple tolerates almost no change (RFC 6376 §3.4.1, §3.4.3).
	Simple Canonicalization = "simple"
)

// DefaultHeaders returns the header fields signed when Config.Headers is
// nil: From, To, Cc, Subject, Date, Message-ID, Reply-To, In-Reply-To,
// References, MIME-Version, Content-Type, Content-Transfer-Encoding,
// List-Unsubscribe, List-Unsubscribe-Post and List-Id. Each one present in the
// message is signed as many times as it occurs. The slice is a fresh copy.
func DefaultHeaders() []string { return append([]string(nil), defaultHeaders...) }

// DefaultOversign returns the header fields oversigned when Config.Oversign
// is nil: From, Subject, Date, To, Cc, Reply-To, List-Unsubscribe and
// List-Unsubscribe-Post. They are listed in the signature's h= tag once
// more than they occur in the message, so that a header field of that name
// added after signing (a second From, a Cc that was not there) breaks the
// signature (RFC 6376 §8.15). The slice is a fresh copy.
func DefaultOversign() []string { return append([]string(nil), defaultOversign...) }

var defaultHeaders = []string{
	"From", "To", "Cc", "Subject", "Date", "Message-ID", "Reply-To",
	"In-Reply-To", "References", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "List-Unsubscribe", "List-Unsubscribe-Post",
	"List-Id",
}

var defaultOversign = []string{
	"From", "Subject", "Date", "To", "Cc", "Reply-To",
	"List-Unsubscribe", "List-Unsubscribe-Post",
}

// Config describes one DKIM signature. A Signer made from several Configs
// adds one DKIM-Signature header field per Config, in the order given.
type Config struct {
	// Domain is the signing domain (the d= tag), in ASCII: an
	// internationalized domain must be given as A-labels ("xn--...").
	// Required.
	Domain string
	// Selector names the key under Domain (the s= tag): receivers fetch it
	// from the TXT record at Selector._domainkey.Domain. Required.
	Selector string
	// Key signs: a *rsa.PrivateKey of at least 1024 bits (2048 advised,
	// RFC 8301) for rsa-sha256, or an ed25519.PrivateKey for ed25519-sha256
	// (RFC 8463). Any crypto.Signer whose Public method returns a
	// *rsa.PublicKey or an ed25519.PublicKey works, so the key may live in
	// an HSM. Required.
	Key crypto.Signer

	// Identifier is the optional i= tag (the AUID), such as
	// "@news.example.com"; its domain must be Domain or a subdomain of it,
	// written in the same case.
	// Empty → no i= tag.
	Identifier string
	// HeaderCanonicalization and BodyCanonicalization: "" → Relaxed.
	HeaderCanonicalization Canonicalization
	BodyCanonicalization   Canonicalization
	// Headers lists the header fields to sign, each as many times as it
	// occurs in the message. From, List-Unsubscribe and
	// List-Unsubscribe-Post (RFC 8058 §3.1) are always signed when
	// present, listed or not. nil → DefaultHeaders().
	Headers []string
	// Oversign lists the header fields to sign once more than they occur,
	// so that none can be added after signing. Oversign only fields that
	// nobody on the way should add. nil → DefaultOversign(); an empty non-nil
	// slice → no oversigning.
	Oversign []string
	// Expiration, if positive, adds an x= tag this long after the signing
	// time (rounded up to the next second); receivers then treat the
	// signature as invalid after it. Zero → no x= tag. Values below one
	// second are refused.
	Expiration time.Duration
}

// signConfig is a checked Config.
type signConfig struct {
	Config
	headers []string // names to sign, From first, no duplicates
	extra   []string // oversigned names not in headers, in order
	sign    []string // headers, then extra
	idx     []int    // Signer.names index of each of sign
	over    []bool   // whether each of sign is oversigned
}

func (c *Config) check() (*signConfig, error) {
	if c.Domain == "" {
		return nil, ErrNoDomain
	}
	if c.Selector == "" {
		return nil, ErrNoSelector
	}
	if !validDomain(c.Domain) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidDomain, c.Domain)
	}
	if !validDomain(c.Selector) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidSelector, c.Selector)
	}
	if err := checkSigner(c.Key); err != nil {
		return nil, err
	}
	if c.Identifier != "" {
		// Compared case-sensitively, as go-msgauth's verifier does.
		i := strings.LastIndexByte(c.Identifier, '@')
		dom := c.Identifier[i+1:]
		if i < 0 || strings.ContainsAny(c.Identifier, " \t\r\n;") ||
			(dom != c.Domain && !strings.HasSuffix(dom, "."+c.Domain)) {
			return nil, fmt.Errorf("%w: identifier %q is not in domain %q", ErrInvalidConfig, c.Identifier, c.Domain)
		}
	}
	sc := &signConfig{Config: *c}
	for _, p := range []*Canonicalization{&sc.HeaderCanonicalization, &sc.BodyCanonicalization} {
		switch *p {
		case "":
			*p = Relaxed
		case Relaxed, Simple:
		default:
			return nil, fmt.Errorf("%w: unknown canonicalization %q", ErrInvalidConfig, string(*p))
		}
	}
	if c.Expiration < 0 || (c.Expiration > 0 && c.Expiration < time.Second) {
		return nil, fmt.Errorf("%w: expiration %v", ErrInvalidConfig, c.Expiration)
	}

	headers := c.Headers
	if headers == nil {
		headers = defaultHeaders
	}
	oversign := c.Oversign
	if oversign == nil {
		oversign = defaultOversign
	}
	seen := map[string]bool{"from": true}
	isOver := map[string]bool{}
	sc.headers = []string{"From"}
	for _, h := range headers {
		if !validFieldName(h) {
			return nil, fmt.Errorf("%w: header field name %q", ErrInvalidConfig, h)
		}
		if l := strings.ToLower(h); !seen[l] {
			seen[l] = true
			sc.headers = append(sc.headers, h)
		}
	}
	// RFC 8058 §3.1: a one-click unsubscribe counts only when the
	// signature covers both fields, so they are signed whenever present,
	// as From is, whatever Headers lists.
	for _, h := range []string{"List-Unsubscribe", "List-Unsubscribe-Post"} {
		if l := strings.ToLower(h); !seen[l] {
			seen[l] = true
			sc.headers = append(sc.headers, h)
		}
	}
	for _, h := range oversign {
		if !validFieldName(h) {
			return nil, fmt.Errorf("%w: header field name %q", ErrInvalidConfig, h)
		}
		l := strings.ToLower(h)
		isOver[l] = true
		if !seen[l] {
			seen[l] = true
			sc.extra = append(sc.extra, h)
		}
	}
	sc.sign = append(append(sc.sign, sc.headers...), sc.extra...)
	for _, h := range sc.sign {
		sc.over = append(sc.over, isOver[strings.ToLower(h)])
	}
	return sc, nil
}

// headerKeys returns the h= list for a message in which the fields of
// each of the Signer's names occur counts[i] times.
func (sc *signConfig) headerKeys(counts []int) []string {
	keys := make([]string, 0, len(sc.headers)+len(sc.extra)+8)
	for i, h := range sc.sign {
		n := counts[sc.idx[i]]
		if sc.over[i] {
			n++
		}
		for range n {
			keys = append(keys, h)
		}
	}
	return keys
}

// checkSigner accepts well-formed RSA keys of at least 1024 bits and
// Ed25519 keys.
func checkSigner(k crypto.Signer) error {
	if k == nil {
		return ErrNoKey
	}
	pub, err := publicKey(k)
	if err != nil {
		return err
	}
	return checkPublic(pub)
}

// publicKey returns k.Public(), once checkPrivate has made sure that the
// call cannot panic, or an error if k has no public key.
func publicKey(k interface{ Public() crypto.PublicKey }) (crypto.PublicKey, error) {
	if err := checkPrivate(k); err != nil {
		return nil, err
	}
	pub := k.Public()
	if isNil(pub) {
		return nil, noKeyError(fmt.Sprintf("%T has no public key", k))
	}
	return pub, nil
}

// checkPrivate checks the private keys of crypto/rsa, crypto/ecdsa and
// crypto/ed25519, whose Public and Sign methods panic or misbehave on
// malformed values, and refuses nil pointers of other types, whose methods
// would most likely dereference them.
func checkPrivate(k any) error {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if k == nil {
			return noKeyError("nil *rsa.PrivateKey")
		}
		// Validate refuses a missing or inconsistent N, E, D or primes,
		// without modifying the key.
		if err := k.Validate(); err != nil {
			return fmt.Errorf("%w: RSA: %w", ErrInvalidKey, err)
		}
	case *ecdsa.PrivateKey:
		if k == nil {
			return noKeyError("nil *ecdsa.PrivateKey")
		}
		// Any other ECDSA key is refused by checkPublic: DKIM has no
		// ECDSA algorithm (RFC 8463 added Ed25519 only).
	case ed25519.PrivateKey:
		if k == nil {
			return noKeyError("nil ed25519.PrivateKey")
		}
		if len(k) != ed25519.PrivateKeySize {
			return fmt.Errorf("%w: Ed25519 private key of %d bytes, want %d", ErrInvalidKey, len(k), ed25519.PrivateKeySize)
		}
		// The second half is the public key; if it is not the seed's,
		// every signature fails to verify.
		if !bytes.Equal(ed25519.NewKeyFromSeed(k.Seed())[ed25519.SeedSize:], k[ed25519.SeedSize:]) {
			return fmt.Errorf("%w: Ed25519 public half does not match the seed", ErrInvalidKey)
		}
	default:
		if isNil(k) {
			return noKeyError(fmt.Sprintf("nil %T", k))
		}
	}
	return nil
}

// checkPublic accepts RSA public keys of at least 1024 bits and Ed25519
// public keys.
func checkPublic(pub crypto.PublicKey) error {
	if pub == nil {
		return ErrNoKey
	}
	if isNil(pub) {
		return noKeyError(fmt.Sprintf("nil %T", pub))
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N == nil || p.N.Sign() <= 0 {
			return fmt.Errorf("%w: RSA modulus missing or not positive", ErrInvalidKey)
		}
		if p.N.BitLen() < 1024 {
			return fmt.Errorf("%w: %d bits, need at least 1024", ErrWeakKey, p.N.BitLen())
		}
		if p.N.Bit(0) == 0 {
			return fmt.Errorf("%w: RSA modulus is even", ErrInvalidKey)
		}
		// crypto/rsa's limits: odd, at least 3, fits in 32 bits.
		if p.E < 3 || p.E&1 == 0 || p.E > 1<<31-1 {
			return fmt.Errorf("%w: RSA public exponent %d", ErrInvalidKey, p.E)
		}
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 public key of %d bytes", ErrInvalidKey, len(p))
		}
	default:
		return fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
	return nil
}

// isNil reports whether v is nil or holds a nil pointer, slice, map,
// channel or function.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Chan, reflect.Func, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// noKeyError is a key that is no key at all: a nil pointer or slice in a
// non-nil interface, or a Signer without a public key. It matches both
// ErrInvalidKey and ErrNoKey.
type noKeyError string

func (e noKeyError) Error() string   { return ErrInvalidKey.Error() + ": " + string(e) }
func (e noKeyError) Unwrap() []error { return []error{ErrInvalidKey, ErrNoKey} }

// validDomain reports whether s is a dot-separated sequence of DNS labels
// of letters, digits and hyphens (RFC 6376 §3.1 sub-domain, RFC 5321 §4.1.2),
// plus the underscore, which some selectors use in practice.
func validDomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// validFieldName reports whether s is a header field name: printable
// US-ASCII except colon (RFC 5322 §2.2).
func validFieldName[T string | []byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return true
}
