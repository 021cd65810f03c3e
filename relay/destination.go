package relay

import (
	"net/netip"

	"github.com/mxrelay/mxrelay/internal/netguard"
)

// checkDestination returns an error wrapping ErrForbiddenAddress when ip is
// not the address of a public mail server: not globally reachable by the
// IANA special-purpose address registries (loopback, RFC 1918 and unique
// local, CGNAT, link-local including 169.254.169.254, unspecified,
// multicast, reserved, benchmarking and documentation ranges, Teredo, ...),
// or the same hidden inside an IPv4-mapped, NAT64 or 6to4 IPv6 form; see
// netguard.Check.
//
// A recipient's domain is chosen by whoever typed the address, so its MX
// can name any address: without this check a web form could make the
// server talk to its own metadata service or to hosts behind the firewall
// (SSRF). It is applied to the address that is about to be dialled, after
// resolution, so DNS rebinding cannot get around it.
func checkDestination(ip netip.Addr) error {
	return netguard.Check(ip)
}
