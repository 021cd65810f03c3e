package smtpclient

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// ErrAuthFailed: the server refused the credentials (535, RFC 4954 §6) or
// the SASL exchange failed. It is wrapped by Auth's error, with the
// server's reply as an *Error when there was one.
var ErrAuthFailed = errors.New("smtpclient: authentication failed")

// AuthMechanisms returns the SASL mechanisms the server offers (the AUTH
// extension's parameters, upper case), or nil.
func (c *Client) AuthMechanisms() []string {
	p, ok := c.ext["AUTH"]
	if !ok {
		return nil
	}
	return strings.Fields(strings.ToUpper(p))
}

// Auth authenticates with the SASL client a (RFC 4954): AUTH with the
// initial response, then a challenge-response exchange until 235. The
// credentials never reach DebugWriter. It needs a prior Hello and the
// server's AUTH (else ErrNotSupported); the caller decides whether the
// session is protected enough to send them (submission needs TLS).
//
// A refusal is an error wrapping ErrAuthFailed and the server's *Error;
// the session stays usable, so another mechanism can be tried.
func (c *Client) Auth(ctx context.Context, a sasl.Client) error {
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.end()
	if !c.helloDone || c.AuthMechanisms() == nil {
		return fmt.Errorf("%w: AUTH", ErrNotSupported)
	}
	mech, ir, err := a.Start()
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrAuthFailed, mech, err)
	}
	if !validMechanism(mech) {
		return fmt.Errorf("%w: SASL mechanism %q", ErrInvalidInput, mech)
	}
	line := "AUTH " + mech
	if ir != nil {
		line += " " + encodeResponse(ir)
	}
	r, err := c.secret("AUTH", line, "AUTH "+mech+" [credentials]")
	for err == nil && r.Code == 334 {
		var challenge []byte
		challenge, err = base64.StdEncoding.DecodeString(strings.TrimSpace(strings.Join(r.Lines, "")))
		if err != nil {
			// RFC 4954 §4: a malformed challenge is answered with "*".
			c.secret("AUTH", "*", "*") //nolint:errcheck // the 501 that follows ends the exchange
			return fmt.Errorf("%w: %s: malformed challenge", ErrAuthFailed, mech)
		}
		resp, nerr := a.Next(challenge)
		if nerr != nil {
			c.secret("AUTH", "*", "*") //nolint:errcheck
			return fmt.Errorf("%w: %s: %w", ErrAuthFailed, mech, nerr)
		}
		r, err = c.secret("AUTH", encodeResponse(resp), "[credentials]")
	}
	if err != nil {
		return err
	}
	if r.Code != 235 {
		return fmt.Errorf("%w: %s: %w", ErrAuthFailed, mech, replyError("AUTH", r))
	}
	return nil
}

// encodeResponse is a SASL response on the wire: base64, "=" when empty
// (RFC 4954 §4).
func encodeResponse(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

// secret sends line, showing shown in the transcript instead, and reads
// the reply, which may be 334 or 235.
func (c *Client) secret(command, line, shown string) (Reply, error) {
	if c.debug != nil {
		fmt.Fprintf(c.debug, "C: %s\n", shown)
	}
	c.line = append(append(c.line[:0], line...), '\r', '\n')
	c.bw.Write(c.line)
	if err := c.flush(command, c.opts.CommandTimeout); err != nil {
		return Reply{}, err
	}
	c.setDeadline(c.opts.CommandTimeout)
	return c.read(command, either)
}

// validMechanism reports an RFC 4422 §3.1 mechanism name: 1 to 20 of
// A-Z, 0-9, "-" and "_".
func validMechanism(m string) bool {
	if m == "" || len(m) > 20 {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
