package webhook

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Bounds of the retry schedule.
const (
	// MaxBackoff caps DefaultBackoff.
	MaxBackoff = 10 * time.Minute
	// MaxRetryAfter caps the wait a Retry-After header can ask for.
	MaxRetryAfter = time.Hour
)

// DefaultBackoff is the wait after the attempt-th failed attempt at a batch
// (attempt counts from 1): 5 s, doubling with each attempt, at most
// MaxBackoff, less a random 0–20 % so that endpoints failing together do
// not retry together. A failure answered with a Retry-After (429 or 503)
// waits as asked instead.
func DefaultBackoff(attempt int) time.Duration {
	d := MaxBackoff
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 8 { // 5 s << 7 = 640 s, over the cap
		d = min(5*time.Second<<(attempt-1), MaxBackoff)
	}
	return d - time.Duration(rand.Float64()*0.2*float64(d))
}

// retryAfter returns the wait a 429 or 503 asks for in its Retry-After
// header (RFC 9110 §10.2.3: delay-seconds or an HTTP-date), capped at
// MaxRetryAfter; zero for other statuses, no header, an unparsable one, or
// a time already past.
func retryAfter(resp *http.Response, now time.Time) time.Duration {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return 0
	}
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if strings.TrimLeft(v, "0123456789") == "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter // too many digits for int64 is long enough too
		}
		d = time.Duration(n) * time.Second
	} else {
		t, err := http.ParseTime(v)
		if err != nil {
			return 0
		}
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}
