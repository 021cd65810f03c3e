package dkim

import "errors"

// Errors returned by NewSigner, Sign, the key functions and Verify. They are
// wrapped with context; test for them with errors.Is.
var (
	// ErrNoDomain: a Config has no Domain.
	ErrNoDomain = errors.New("dkim: no domain")
	// ErrNoSelector: a Config has no Selector.
	ErrNoSelector = errors.New("dkim: no selector")
	// ErrInvalidDomain: the Domain is not a sequence of DNS labels in ASCII
	// (A-label) form.
	ErrInvalidDomain = errors.New("dkim: invalid domain")
	// ErrInvalidSelector: the Selector is not a sequence of DNS labels.
	ErrInvalidSelector = errors.New("dkim: invalid selector")
	// ErrInvalidConfig: another Config field (canonicalization, header
	// names, expiration, identifier) is not acceptable.
	ErrInvalidConfig = errors.New("dkim: invalid config")
	// ErrNoConfig: NewSigner was called without any Config, or Sign on a
	// Signer not made by NewSigner.
	ErrNoConfig = errors.New("dkim: no config")

	// ErrNoKey: a Config has a nil Key, or a nil key was given. A key that
	// is a nil pointer or slice (a nil *rsa.PrivateKey, say), or a
	// crypto.Signer whose Public method returns nil, is reported with an
	// error that matches both ErrNoKey and ErrInvalidKey.
	ErrNoKey = errors.New("dkim: no key")
	// ErrUnsupportedKey: the key is neither RSA nor Ed25519 (ECDSA, for
	// instance), or the PEM block holds a kind of key that is not supported.
	ErrUnsupportedKey = errors.New("dkim: unsupported key type")
	// ErrEncryptedKey: the PEM private key is encrypted; decrypt it first
	// (openssl pkey -in key.pem -out plain.pem).
	ErrEncryptedKey = errors.New("dkim: encrypted private key")
	// ErrInvalidKey: the bytes are not a PEM private key that can be
	// parsed, or a key given is malformed: an *rsa.PrivateKey that fails
	// its Validate method (missing N, D or primes, say), an *ecdsa.PrivateKey
	// without curve or scalar, an ed25519.PrivateKey that is not 64 bytes
	// or whose public half is not its seed's, an RSA public key with an
	// unusable modulus or exponent, an Ed25519 public key that is not 32
	// bytes, or a nil one of any of these.
	ErrInvalidKey = errors.New("dkim: invalid private key")
	// ErrWeakKey: an RSA key shorter than 1024 bits (RFC 8301 §3.2).
	ErrWeakKey = errors.New("dkim: RSA key too short")

	// ErrNoFrom: the message has no From header field, which DKIM must sign
	// (RFC 6376 §5.4).
	ErrNoFrom = errors.New("dkim: message has no From header field")
	// ErrMultipleFrom: the message has more than one From header field
	// (RFC 5322 §3.6 allows exactly one); receivers reject such messages.
	ErrMultipleFrom = errors.New("dkim: message has more than one From header field")
	// ErrHeaderNotTerminated: the input ended before the empty line that
	// ends the header block.
	ErrHeaderNotTerminated = errors.New("dkim: header block not terminated by an empty line")
	// ErrTooManyFields: the message has so many instances of the header
	// fields to sign that the signature's h= tag would make a line longer
	// than 998 octets.
	ErrTooManyFields = errors.New("dkim: too many header fields to sign")
	// ErrMalformedHeader: a line of the header block is neither a header
	// field ("Name: value") nor the continuation of one, or holds a bare
	// CR, which the SMTP client would send as a line break.
	ErrMalformedHeader = errors.New("dkim: malformed header field")

	// ErrTempFail is wrapped by a VerifyResult.Err when the signature could
	// not be checked for a temporary reason, such as a DNS timeout
	// (RFC 6376 §3.9, TEMPFAIL).
	ErrTempFail = errors.New("dkim: temporary verification failure")
	// ErrPermFail is wrapped by a VerifyResult.Err when the signature is
	// invalid: malformed, expired, no key published, body hash or signature
	// mismatch (RFC 6376 §3.9, PERMFAIL).
	ErrPermFail = errors.New("dkim: signature verification failed")
	// ErrTooManySignatures is returned by Verify, with the results of the
	// first VerifyOptions.MaxSignatures signatures, when the message carries
	// more signatures than that.
	ErrTooManySignatures = errors.New("dkim: too many signatures")
)
