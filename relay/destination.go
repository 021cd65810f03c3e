package relay

import (
	"fmt"
	"net/netip"
)

// Prefixes that are never a public mail server. A recipient's domain is
// chosen by whoever typed the address, so its MX can name any address:
// without this check a web form could make the server talk to its own
// metadata service or to hosts behind the firewall (SSRF).
var forbiddenPrefixes = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},        // RFC 791
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT)"},  // RFC 6598
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol"},    // RFC 6890
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},    // RFC 2544
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},          // RFC 1112 (incl. broadcast)
	{netip.MustParsePrefix("::/96"), "IPv4-compatible"},         // RFC 4291, deprecated
	{netip.MustParsePrefix("100::/64"), "discard-only"},         // RFC 6666
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},   // RFC 3849
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},    // RFC 5737
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"}, // RFC 5737
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},  // RFC 5737
}

// Prefixes that embed an IPv4 address which is what is really reached.
var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052
	sixToFour   = netip.MustParsePrefix("2002::/16")    // RFC 3056
)

// checkDestination returns an error wrapping ErrForbiddenAddress when ip is
// not an address of a public mail server: loopback, RFC 1918 and unique
// local (fc00::/7), CGNAT, link-local (including 169.254.169.254), unspecified,
// multicast, reserved and documentation ranges, and the same hidden inside
// IPv4-mapped, NAT64 or 6to4 IPv6 forms. It is applied to the address that is
// about to be dialled, after resolution, so DNS rebinding cannot get around it.
func checkDestination(ip netip.Addr) error {
	if what := forbiddenKind(ip); what != "" {
		return fmt.Errorf("%w: %s is %s", ErrForbiddenAddress, ip, what)
	}
	return nil
}

func forbiddenKind(ip netip.Addr) string {
	if !ip.IsValid() {
		return "invalid"
	}
	ip = ip.Unmap() // ::ffff:a.b.c.d is a.b.c.d
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsMulticast():
		return "multicast"
	}
	for _, p := range forbiddenPrefixes {
		if p.prefix.Contains(ip) {
			return p.what
		}
	}
	if ip.Is6() {
		b := ip.As16()
		var v4 netip.Addr
		switch {
		case nat64Prefix.Contains(ip):
			v4 = netip.AddrFrom4([4]byte(b[12:16]))
		case sixToFour.Contains(ip):
			v4 = netip.AddrFrom4([4]byte(b[2:6]))
		}
		if v4.IsValid() {
			if what := forbiddenKind(v4); what != "" {
				return what + " (embedded in " + ip.String() + ")"
			}
		}
	}
	return ""
}
