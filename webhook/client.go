package webhook

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/mxrelay/mxrelay/internal/netguard"
)

// newClient returns the client a Dispatcher without one uses: no proxy
// (a proxy would be dialled instead of the endpoint, out of the guard's
// sight), TLS 1.2 or later, and unless allowPrivate a dialer that refuses
// every address netguard refuses, checked after name resolution for each
// address dialled, so that a host name pointing (or rebound) at the
// loopback, the private network or a metadata service is not reached.
func newClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		dialer.Control = guard
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   10 * time.Second,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: noRedirect,
	}
}

// guard is netguard.Control with an error that says what happened at the
// end of "dial tcp 127.0.0.1:443: ...".
func guard(network, address string, c syscall.RawConn) error {
	if err := netguard.Control(network, address, c); err != nil {
		return fmt.Errorf("forbidden address: %w", err)
	}
	return nil
}

// noRedirect makes a 3xx the answer, and so a failure: a receiver that
// moved is reconfigured, not followed, and signed events never go to a
// place the operator did not name.
func noRedirect(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}

// withoutRedirects returns a copy of c that does not follow redirects.
func withoutRedirects(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = noRedirect
	return &cc
}
