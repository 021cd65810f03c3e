// Package netguard refuses addresses that are not globally reachable, so
// that a host name chosen by someone else (a recipient domain's MX host, an
// MTA-STS policy host) cannot point a dial at the loopback, the private
// network, a cloud metadata service or any other special-purpose range: a
// server-side request forgery (SSRF).
//
// There is one table of ranges, built from the IANA IPv4 and IPv6
// Special-Purpose Address Registries, and two ways in: Check
// for an address about to be dialled, and Control for net.Dialer.Control,
// which sees each address after name resolution, just before the connect,
// so that DNS rebinding cannot get round it. IPv6 forms that carry an IPv4
// address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by
// the IPv4 address they reach.
package netguard

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
)

// ErrForbidden is wrapped by every error of Check and Control.
var ErrForbidden = errors.New("netguard: address not globally reachable")

// v4Ranges and v6Ranges are the table split by family, most specific range
// first, so that the first range holding an address is the one that
// decides.
var v4Ranges, v6Ranges = split(ranges)

func split(all []addrRange) (v4, v6 []addrRange) {
	for _, r := range all {
		if r.prefix.Addr().Is4() {
			v4 = append(v4, r)
		} else {
			v6 = append(v6, r)
		}
	}
	byBits := func(a, b addrRange) int { return b.prefix.Bits() - a.prefix.Bits() }
	slices.SortStableFunc(v4, byBits)
	slices.SortStableFunc(v6, byBits)
	return v4, v6
}

// lookup returns the most specific range holding a, which has no zone.
func lookup(a netip.Addr) (addrRange, bool) {
	table := v6Ranges
	if a.Is4() {
		table = v4Ranges
	}
	for _, r := range table {
		if r.prefix.Contains(a) {
			return r, true
		}
	}
	return addrRange{}, false
}

// Check returns nil when a is globally reachable, and otherwise an error
// wrapping ErrForbidden that names a and the range it is in, such as
// "169.254.169.254 is in 169.254.0.0/16 link-local (RFC 3927)".
//
// Refused are the ranges the IANA registries mark as not globally reachable
// (private-use, shared, loopback, link-local, documentation, benchmarking,
// reserved, unique-local, Teredo and the other IETF protocol assignments
// ...), multicast, the deprecated IPv6 site-local and IPv4-compatible
// ranges, and IPv6 outside 2000::/3. An IPv4-mapped, NAT64 (64:ff9b::/96)
// or 6to4 (2002::/16) address is refused when the IPv4 address it carries
// is. The zero Addr is refused; a zone is ignored.
func Check(a netip.Addr) error {
	if !a.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbidden)
	}
	a = a.WithZone("")
	r, ok := lookup(a)
	if !ok {
		return nil
	}
	switch r.verdict {
	case refuse:
		return fmt.Errorf("%w: %s is in %s", ErrForbidden, a, r)
	case embedded4, embedded6to4:
		b := a.As16()
		v4 := netip.AddrFrom4([4]byte(b[12:16]))
		if r.verdict == embedded6to4 {
			v4 = netip.AddrFrom4([4]byte(b[2:6]))
		}
		if inner, ok := lookup(v4); ok && inner.verdict == refuse {
			return fmt.Errorf("%w: %s is in %s, for %s in %s", ErrForbidden, a, r, v4, inner)
		}
	}
	return nil
}

// String gives the range as "169.254.0.0/16 link-local (RFC 3927)".
func (r addrRange) String() string {
	if r.rfc == "" {
		return r.prefix.String() + " " + r.name
	}
	return r.prefix.String() + " " + r.name + " (" + r.rfc + ")"
}

// Control is a net.Dialer Control function that refuses to connect to an
// address Check refuses. The dialer calls it for every address it is about
// to connect to, after name resolution, so a host name that resolves (or is
// rebound) to a forbidden address is caught however it got there. address
// must be "ip:port", as the dialer gives for TCP and UDP; anything else is
// refused.
func Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s address %q: %w", ErrForbidden, network, address, err)
	}
	return Check(ap.Addr())
}
