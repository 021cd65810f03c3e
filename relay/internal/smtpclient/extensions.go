package smtpclient

import (
	"strconv"
	"strings"
)

// parseExtensions reads the EHLO reply lines after the first (RFC 5321
// §4.1.1.1): "KEYWORD params".
func parseExtensions(lines []string) map[string]string {
	ext := make(map[string]string, len(lines))
	for _, l := range lines[min(1, len(lines)):] {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		if k == "" {
			continue
		}
		ext[strings.ToUpper(k)] = strings.TrimSpace(v)
	}
	return ext
}

// Extensions returns a copy of the extensions from the last EHLO reply,
// keyed by upper-case keyword, with their parameters ("SIZE" → "10240000").
// It is empty before Hello, after HELO, and after StartTLS until the new
// EHLO.
func (c *Client) Extensions() map[string]string {
	m := make(map[string]string, len(c.ext))
	for k, v := range c.ext {
		m[k] = v
	}
	return m
}

// Supports reports whether the server offered the extension (any case).
func (c *Client) Supports(ext string) bool {
	_, ok := c.ext[strings.ToUpper(ext)]
	return ok
}

// MaxSize is the server's SIZE limit in octets (RFC 1870), 0 if none.
func (c *Client) MaxSize() int64 {
	v := c.ext["SIZE"]
	if v == "" {
		return 0 // no SIZE, or SIZE without a number: no limit given
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// RcptMax is the server's LIMITS RCPTMAX (RFC 9422 §4.2), the most
// recipients one transaction may have, 0 if none. Send sends no more than
// that many and reports the rest with ErrTooManyRecipients, for the caller
// to send in another transaction.
func (c *Client) RcptMax() int {
	for _, f := range strings.Fields(c.ext["LIMITS"]) {
		k, v, ok := strings.Cut(f, "=")
		if ok && strings.EqualFold(k, "RCPTMAX") {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}
