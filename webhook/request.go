package webhook

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// MaxBodySize is the largest body VerifyRequest reads, in octets. The
// Dispatcher's limits (MaxBatchBytes at most 4 MiB, an item at most
// queue.MaxOutboxItemSize, BatchSize at most MaxBatchSize) keep every body
// it sends well under it.
const MaxBodySize = 8 << 20

// VerifyRequest reads the body of r, at most MaxBodySize octets, checks
// its Mxrelay-Signature header with Verify against the receiver's clock,
// and decodes the payload. tolerance and secrets are as for Verify. The
// error wraps ErrNoSignature, ErrBadSignature or ErrExpired when the
// signature is refused (answer 401 or 403: the Dispatcher retries every
// non-2xx, so a receiver with the wrong secret holds its events until it
// has the right one or they pass MaxAge), ErrBodyTooLarge, or
// ErrInvalidPayload for a verified body that is not a payload.
//
// The caller answers with a 2xx once the events are safely in hand; the
// Dispatcher may deliver an event again when an answer is lost, so a
// receiver that must act once skips events whose Seqs it has seen (see
// the package documentation).
func VerifyRequest(r *http.Request, tolerance time.Duration, secrets ...[]byte) (*Payload, error) {
	values := r.Header.Values(SignatureHeader)
	switch len(values) {
	case 0:
		return nil, ErrNoSignature
	case 1:
	default:
		return nil, fmt.Errorf("%w: %d %s headers", ErrBadSignature, len(values), SignatureHeader)
	}
	if _, err := parseSignature(values[0]); err != nil {
		return nil, err // before reading a body that cannot be verified
	}
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
		if err != nil {
			return nil, fmt.Errorf("webhook: reading the body: %w", err)
		}
		if len(body) > MaxBodySize {
			return nil, fmt.Errorf("%w: over %d octets", ErrBodyTooLarge, MaxBodySize)
		}
	}
	if err := Verify(values[0], body, time.Now(), tolerance, secrets...); err != nil {
		return nil, err
	}
	return decodePayload(body)
}
