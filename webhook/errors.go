package webhook

import (
	"errors"
	"time"

	"github.com/mxrelay/mxrelay/internal/netguard"
)

// Errors of this package; match them with errors.Is.
var (
	// ErrNoSignature: the request carries no Mxrelay-Signature header, or
	// one without a v1 signature.
	ErrNoSignature = errors.New("webhook: no signature")
	// ErrBadSignature: the signature header is malformed, or none of its
	// v1 signatures is the HMAC of the body under any of the secrets.
	ErrBadSignature = errors.New("webhook: bad signature")
	// ErrExpired: the signature is good but its timestamp is further from
	// the receiver's clock than the tolerance, in the past or the future: a
	// replay, or clocks that disagree.
	ErrExpired = errors.New("webhook: signature timestamp out of tolerance")
	// ErrBodyTooLarge: a request body over MaxBodySize octets.
	ErrBodyTooLarge = errors.New("webhook: body too large")
	// ErrInvalidPayload: a body that verified but is not a payload this
	// package writes.
	ErrInvalidPayload = errors.New("webhook: invalid payload")

	// ErrInvalidEndpoint: an Endpoint that Run refuses (a URL that is not
	// http or https, has no host, carries a user name or a fragment; a
	// missing or short secret; a name used twice).
	ErrInvalidEndpoint = errors.New("webhook: invalid endpoint")
	// ErrInvalidConfig: a Dispatcher field that Run refuses (no Store, no
	// Endpoints, a negative or out-of-range limit).
	ErrInvalidConfig = errors.New("webhook: invalid dispatcher configuration")
	// ErrRunning: Run was called while another Run of the same Dispatcher
	// had not returned.
	ErrRunning = errors.New("webhook: dispatcher already running")

	// ErrTooOld is wrapped by the reason given to OnDrop for items that
	// passed MaxAge without being delivered; the reason also wraps the
	// error of the last failed attempt, when this process made one.
	ErrTooOld = errors.New("webhook: items older than MaxAge")
	// ErrInvalidItem is wrapped by the reason given to OnDrop for items
	// whose Data is not valid JSON in UTF-8; they are never sent.
	ErrInvalidItem = errors.New("webhook: item is not valid JSON")

	// ErrForbiddenAddress is wrapped by the error of a POST that the
	// default client refused to dial because the endpoint's address is
	// loopback, private, link-local or otherwise not globally reachable
	// (see [Dispatcher.AllowPrivateAddrs]). It is the same value as
	// relay.ErrForbiddenAddress.
	ErrForbiddenAddress = netguard.ErrForbidden
)

// StatusError is the error of a POST that the endpoint answered with a
// status other than 2xx (a 3xx included: redirects are never followed).
type StatusError struct {
	StatusCode int    // such as 503
	Status     string // the status line's code and text, such as "503 Service Unavailable"
	// RetryAfter is the wait a 429 or 503 asked for in its Retry-After
	// header, capped at MaxRetryAfter; zero when none was given.
	RetryAfter time.Duration
}

// Error says what the endpoint answered.
func (e *StatusError) Error() string {
	return "webhook: endpoint answered " + e.Status
}
