package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Header names of a delivery.
const (
	// SignatureHeader carries the timestamp and the signatures of the
	// body: "t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=...]".
	SignatureHeader = "Mxrelay-Signature"
	// DeliveryHeader names the batch: "<endpoint hash>-<first>-<last>",
	// the value of Payload.DeliveryID. It is not signed; the body it is
	// derived from is.
	DeliveryHeader = "Mxrelay-Delivery"
)

// UserAgent is the User-Agent of every POST.
const UserAgent = "mxrelay-webhook"

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock, either way, when Verify is given a tolerance of zero.
const DefaultTolerance = 5 * time.Minute

// MinSecretLen is the least length in octets of an Endpoint's secret.
const MinSecretLen = 16

// Sign returns the value of the Mxrelay-Signature header for body sent at
// t: "t=" and t in decimal Unix seconds, then for each secret, in order,
// ",v1=" and the lower-case hexadecimal HMAC-SHA256 under that secret of
// the timestamp's digits, a full stop and the body. Empty secrets are
// skipped, as Verify ignores them; with none left the value holds only
// the timestamp.
func Sign(t time.Time, body []byte, secrets ...[]byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.Grow(2 + len(ts) + len(secrets)*(4+2*sha256.Size))
	b.WriteString("t=")
	b.WriteString(ts)
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		b.WriteString(",v1=")
		b.WriteString(hex.EncodeToString(mac(s, ts, body)))
	}
	return b.String()
}

// mac is HMAC-SHA256 under secret of ts + "." + body.
func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}
