package smtpclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
)

// IsTLS reports whether the session runs over TLS.
func (c *Client) IsTLS() bool { return c.isTLS }

// TLSConnectionState returns the TLS state after StartTLS, or ok false.
func (c *Client) TLSConnectionState() (state tls.ConnectionState, ok bool) {
	tc, ok := c.conn.(*tls.Conn)
	if !ok {
		return tls.ConnectionState{}, false
	}
	return tc.ConnectionState(), true
}

// RemoteAddr is the server's network address.
func (c *Client) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// StartTLS upgrades the session to TLS (RFC 3207) with config (its
// ServerName must be set by the caller, who decides how to verify). It
// needs a prior Hello and the server's STARTTLS (else ErrNotSupported,
// nothing sent). A reply other than 220 is an *Error and the session goes
// on in plaintext. Anything the server sent after the 220 aborts the
// session with ErrTLSInjection (CVE-2011-0411). A failed handshake closes
// the session. After the handshake the extensions are forgotten and EHLO is
// sent again, so Extensions reflects the TLS session only.
func (c *Client) StartTLS(ctx context.Context, config *tls.Config) error {
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.end()
	if c.isTLS {
		return errors.New("smtpclient: STARTTLS: already TLS")
	}
	if !c.helloDone || !c.Supports("STARTTLS") {
		return fmt.Errorf("%w: STARTTLS", ErrNotSupported)
	}
	r, err := c.cmd("STARTTLS", c.opts.CommandTimeout, "STARTTLS")
	if err != nil {
		return err
	}
	if r.Code != 220 {
		return replyError("STARTTLS", r)
	}
	if n := c.rr.r.Buffered(); n > 0 {
		err := fmt.Errorf("%w (%d bytes before the handshake): %w", ErrTLSInjection, n, ErrProtocol)
		c.shut(err)
		return err
	}
	tc := tls.Client(c.conn, config)
	c.setDeadline(c.opts.CommandTimeout)
	if err := tc.HandshakeContext(ctx); err != nil {
		return c.fail("TLS handshake", err)
	}
	c.mu.Lock()
	c.conn = tc
	c.mu.Unlock()
	c.rr.r.Reset(tc)
	c.bw.Reset(&c.cw)
	c.isTLS = true
	if c.debug != nil {
		st := tc.ConnectionState()
		fmt.Fprintf(c.debug, "[TLS %s %s]\n", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	}
	// RFC 3207 §4.2: discard what was learnt in plaintext and EHLO again.
	return c.hello()
}
