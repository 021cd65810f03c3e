package dkim

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// DefaultMaxSignatures is how many signatures Verify checks when
// VerifyOptions.MaxSignatures is zero.
const DefaultMaxSignatures = 10

// VerifyOptions tunes Verify. The zero value (or nil) looks keys up in the
// DNS with net.DefaultResolver.
type VerifyOptions struct {
	// LookupTXT returns the TXT record values at name, which is
	// "selector._domainkey.domain", each record's strings joined. Return
	// an error wrapping ErrTempFail, a context error, or a *net.DNSError
	// that is temporary or a timeout for a temporary failure; any other
	// error means there is no key (PERMFAIL). nil → net.DefaultResolver.
	// Tests and pre-publication checks serve their own keys here.
	LookupTXT func(ctx context.Context, name string) ([]string, error)
	// MaxSignatures caps how many signatures are checked, from the top;
	// 0 → DefaultMaxSignatures.
	MaxSignatures int
}

// VerifyResult is the outcome for one DKIM-Signature header field.
type VerifyResult struct {
	Domain     string    // the d= tag
	Selector   string    // the s= tag
	Identifier string    // the i= tag, or "@" + Domain
	Algorithm  string    // the a= tag, such as "rsa-sha256"
	HeaderKeys []string  // the h= tag: the signed header fields
	Time       time.Time // the t= tag; zero if absent
	Expiration time.Time // the x= tag; zero if absent
	// Err is nil if the signature is valid. Otherwise it wraps ErrPermFail
	// (invalid) or ErrTempFail (could not be checked now).
	Err error
}

// Verify checks every DKIM signature of the message read from r (RFC 6376
// §6) and returns one result per DKIM-Signature header field, topmost
// first; a message without signatures gives none. The error is for the
// message as a whole (unreadable, malformed header block) or
// ErrTooManySignatures alongside the results checked.
//
// It is meant for self-checks, such as signing a message and verifying it
// against a key before publishing the key; a receiving MTA would add
// policy (DMARC alignment, key size) on top.
func Verify(ctx context.Context, r io.Reader, opts *VerifyOptions) ([]VerifyResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var o VerifyOptions
	if opts != nil {
		o = *opts
	}
	if o.LookupTXT == nil {
		o.LookupTXT = net.DefaultResolver.LookupTXT
	}
	if o.MaxSignatures <= 0 {
		o.MaxSignatures = DefaultMaxSignatures
	}

	var buf bytes.Buffer
	br := bufio.NewReader(r)
	fields, err := readHeader(br, &buf)
	if err != nil {
		return nil, err
	}
	var tags []map[string]string
	for _, f := range fields {
		if bytes.EqualFold(f.name(buf.Bytes()), []byte("DKIM-Signature")) {
			_, v, _ := strings.Cut(string(buf.Bytes()[f.start:f.end]), ":")
			tags = append(tags, parseTags(v))
		}
	}
	if len(tags) == 0 {
		return nil, nil
	}

	lookup := func(name string) ([]string, error) {
		txts, err := o.LookupTXT(ctx, name)
		if err != nil && isTemporary(err) {
			return nil, &net.DNSError{Err: err.Error(), Name: name, IsTemporary: true}
		}
		return txts, err
	}
	verifs, err := msgauth.VerifyWithOptions(io.MultiReader(&buf, br), &msgauth.VerifyOptions{
		LookupTXT:        lookup,
		MaxVerifications: o.MaxSignatures,
	})
	if errors.Is(err, msgauth.ErrTooManySignatures) {
		err = ErrTooManySignatures
	} else if err != nil {
		return nil, fmt.Errorf("dkim: verifying: %w", err)
	}
	res := make([]VerifyResult, len(verifs))
	for i, v := range verifs {
		res[i] = VerifyResult{
			Domain:     v.Domain,
			Identifier: v.Identifier,
			HeaderKeys: v.HeaderKeys,
			Time:       v.Time,
			Expiration: v.Expiration,
		}
		if i < len(tags) {
			res[i].Selector = tags[i]["s"]
			res[i].Algorithm = tags[i]["a"]
		}
		if v.Err != nil {
			kind := ErrPermFail
			if msgauth.IsTempFail(v.Err) {
				kind = ErrTempFail
			}
			res[i].Err = &verifyError{kind: kind, err: v.Err}
		}
	}
	return res, err
}

// verifyError is a VerifyResult.Err: one of ErrPermFail, ErrTempFail and
// go-msgauth's reason.
type verifyError struct {
	kind, err error
}

func (e *verifyError) Error() string {
	return e.kind.Error() + ": " + strings.TrimPrefix(e.err.Error(), "dkim: ")
}

func (e *verifyError) Unwrap() []error { return []error{e.kind, e.err} }

// isTemporary reports whether a lookup error is temporary.
func isTemporary(err error) bool {
	if errors.Is(err, ErrTempFail) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}
	var de *net.DNSError
	return errors.As(err, &de) && (de.IsTemporary || de.IsTimeout)
}

// parseTags reads a tag-list (RFC 6376 §3.2) leniently, whitespace removed
// from the values; it is used only to report s= and a=.
func parseTags(s string) map[string]string {
	m := make(map[string]string)
	for part := range strings.SplitSeq(s, ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		m[strings.TrimSpace(k)] = strings.Join(strings.Fields(v), "")
	}
	return m
}
