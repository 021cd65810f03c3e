package webhook

import (
	"crypto/hmac"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxHeaderLen bounds the signature header that Verify parses: a few
// dozen signatures, far more than a rotation needs.
const maxHeaderLen = 4096

// Verify checks header, the value of an Mxrelay-Signature header, against
// body as received, before anything parses the body. It returns nil when
// one of the header's v1 signatures is the HMAC-SHA256 of the timestamp,
// a full stop and body under one of the secrets, and the timestamp is
// within tolerance of now, in the past or the future; a tolerance of zero
// or less means DefaultTolerance. Empty secrets are ignored. Signatures
// are compared in constant time.
//
// The errors match, with errors.Is: ErrNoSignature (no header, or no v1 in
// it), ErrBadSignature (a malformed header, no matching signature, or no
// secret to check with) and ErrExpired (a good signature with a timestamp
// out of tolerance: checked last, so it never answers for a forgery).
// Elements other than t and v1 are ignored, for later schemes.
func Verify(header string, body []byte, now time.Time, tolerance time.Duration, secrets ...[]byte) error {
	h, err := parseSignature(header)
	if err != nil {
		return err
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	keys := 0
	match := false
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		keys++
		want := mac(s, h.ts, body)
		for _, sig := range h.v1 {
			if hmac.Equal(want, sig) {
				match = true
			}
		}
	}
	switch {
	case keys == 0:
		return fmt.Errorf("%w: no secret to verify with", ErrBadSignature)
	case !match:
		return fmt.Errorf("%w: no v1 signature matches the body", ErrBadSignature)
	}
	t := time.Unix(h.t, 0)
	if d := now.Sub(t); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed at %s, %s from now (tolerance %s)", ErrExpired, t.UTC().Format(time.RFC3339), d.Round(time.Second), tolerance)
	}
	return nil
}

// signature is a parsed Mxrelay-Signature header.
type signature struct {
	ts string // the digits of t, as signed
	t  int64
	v1 [][]byte // decoded v1 values; those that are not hexadecimal are left out
}

// parseSignature parses "t=<digits>,v1=<hex>,...": elements separated by
// commas, each "key=value", spaces and tabs around elements allowed, empty
// elements skipped, exactly one t, unknown keys ignored.
func parseSignature(header string) (*signature, error) {
	header = strings.Trim(header, " \t")
	if header == "" {
		return nil, ErrNoSignature
	}
	if len(header) > maxHeaderLen {
		return nil, fmt.Errorf("%w: header of %d octets, over %d", ErrBadSignature, len(header), maxHeaderLen)
	}
	var h signature
	seenT, seenV1 := false, false
	for el := range strings.SplitSeq(header, ",") {
		el = strings.Trim(el, " \t")
		if el == "" {
			continue
		}
		key, value, ok := strings.Cut(el, "=")
		if !ok {
			return nil, fmt.Errorf("%w: element %q is not key=value", ErrBadSignature, clip(el, 40))
		}
		switch key {
		case "t":
			if seenT {
				return nil, fmt.Errorf("%w: two timestamps", ErrBadSignature)
			}
			seenT = true
			t, err := parseUnix(value)
			if err != nil {
				return nil, err
			}
			h.ts, h.t = value, t
		case "v1":
			seenV1 = true
			if sig, err := hex.DecodeString(value); err == nil {
				h.v1 = append(h.v1, sig)
			}
		}
	}
	switch {
	case !seenV1:
		return nil, fmt.Errorf("%w: no v1 element", ErrNoSignature)
	case !seenT:
		return nil, fmt.Errorf("%w: no timestamp", ErrBadSignature)
	}
	return &h, nil
}

// parseUnix parses the value of t: one to 19 ASCII digits.
func parseUnix(s string) (int64, error) {
	if s == "" || len(s) > 19 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%w: timestamp %q is not decimal seconds", ErrBadSignature, clip(s, 40))
	}
	t, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: timestamp %q: %w", ErrBadSignature, s, err)
	}
	return t, nil
}

// clip shortens s to at most n octets, without splitting a UTF-8 sequence,
// marking the cut with "...".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - 3
	for i > 0 && s[i]&0xc0 == 0x80 {
		i--
	}
	return s[:i] + "..."
}
