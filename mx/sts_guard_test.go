package mx_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/internal/netguard"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
)

// goResolver returns a net.Resolver that asks only the mxtest server at
// addr, so that the default policy dialer resolves policy hosts from a
// test zone.
func goResolver(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// The default policy client refuses, at dial time, a policy host that
// resolves to an address that is not globally reachable, including IPv6
// forms that reach a private IPv4 address.
func TestLookupSTSRefusesSpecialAddresses(t *testing.T) {
	for _, addr := range []string{
		"64:ff9b::7f00:1",    // NAT64 of 127.0.0.1
		"64:ff9b::a9fe:a9fe", // NAT64 of 169.254.169.254
		"2002:a00:1::1",      // 6to4 of 10.0.0.1
		"::127.0.0.1",        // IPv4-compatible 127.0.0.1
		"198.18.0.1",         // benchmarking
		"240.0.0.1",          // reserved
		"192.0.2.1",          // documentation
		"127.0.0.1",
	} {
		t.Run(addr, func(t *testing.T) {
			d := mxtest.Domain{AAAA: []string{addr}}
			if netip.MustParseAddr(addr).Is4() {
				d = mxtest.Domain{A: []string{addr}}
			}
			srv, r := newServer(t, mxtest.Zone{
				"_mta-sts.evil.example": {TXT: []string{"v=STSv1; id=1;"}},
				"mta-sts.evil.example":  d,
			})
			mx.SetPolicyHostResolver(r, goResolver(srv.Addr()))
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			p, err := r.LookupSTS(ctx, "evil.example")
			if p != nil || !errors.Is(err, netguard.ErrForbidden) {
				t.Fatalf("LookupSTS = %v, %v; want netguard.ErrForbidden", p, err)
			}
		})
	}
}
