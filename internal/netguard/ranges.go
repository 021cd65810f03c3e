package netguard

import "net/netip"

// verdict says what an address inside a range gets.
type verdict uint8

const (
	// refuse: not globally reachable ("Globally Reachable" False or N/A
	// in the registry, or outside the allocated unicast space).
	refuse verdict = iota
	// allow: globally reachable; listed only where it carves an exception
	// out of a wider refused range.
	allow
	// embedded4: the address stands for the IPv4 address in its last 32
	// bits, which is what is really reached; refused when that IPv4
	// address is.
	embedded4
	// embedded6to4: as embedded4, with the IPv4 address in bits 16 to 48
	// (2002:AABB:CCDD::/48 is 6to4 for AA.BB.CC.DD, RFC 3056 §2).
	embedded6to4
)

// addrRange is one row of the table.
type addrRange struct {
	prefix  netip.Prefix
	name    string // the registry's name, lower case, or ours
	rfc     string // where the range is defined, "" if nowhere in particular
	verdict verdict
}

func row(prefix, name, rfc string, v verdict) addrRange {
	return addrRange{prefix: netip.MustParsePrefix(prefix), name: name, rfc: rfc, verdict: v}
}

// ranges is the table Check consults: the most specific range that holds an
// address decides; an address in no range is allowed.
//
// It is taken from the IANA IPv4 Special-Purpose Address Registry and the
// IANA IPv6 Special-Purpose Address Registry (RFC 6890, RFC 8190): every
// entry whose "Globally Reachable" is False or N/A is refused, and the
// entries marked True that sit inside a refused one are allowed. Entries
// marked True that sit in no refused range (192.31.196.0/24 AS112-v4,
// 192.52.193.0/24 AMT, 192.175.48.0/24 and 2620:4f:8000::/48 AS112
// direct delegation) need no row. The snapshot is of the registries'
// contents in 2025: their newest rows are 3fff::/20 (RFC 9637) and
// 5f00::/16 (RFC 9602) of 2024 and 100:0:0:1::/64 (RFC 9780) of 2025. When
// updating, compare row by row with
// https://www.iana.org/assignments/iana-ipv4-special-registry/ and
// https://www.iana.org/assignments/iana-ipv6-special-registry/, and give
// every new row a case in the tests.
//
// Beyond the registries, the table refuses:
//   - 224.0.0.0/4, IPv4 multicast, and ff00::/8, IPv6 multicast;
//   - fec0::/10, the deprecated IPv6 site-local range, which older stacks
//     still route locally;
//   - ::/96, the deprecated IPv4-compatible addresses, whole: ::127.0.0.1
//     must not reach the loopback through a stack that still honours them;
//   - ::ffff:0:0:0/96, the IPv4-translated addresses of SIIT, whole;
//   - every IPv6 address outside 2000::/3, the only block the IANA IPv6
//     Address Space registry allocates to global unicast (the rest is
//     "Reserved by IETF"), save 64:ff9b::/96.
//
// And it settles three rows the registries leave to the user:
//   - ::ffff:0:0/96 (IPv4-mapped) is whatever the IPv4 address it maps is;
//   - 64:ff9b::/96, the NAT64 well-known prefix (True in the registry), is
//     allowed only when the IPv4 address in its last 32 bits (RFC 6052
//     §2.2) is: 64:ff9b::7f00:1 is 127.0.0.1 behind the translator;
//   - 2002::/16, 6to4 (N/A in the registry), likewise with the IPv4
//     address in bits 16 to 48: 2002:7f00:1::1 is refused. 6to4 for a
//     public IPv4 address is allowed rather than refused whole because it
//     names a host that is reachable, through a relay, from anywhere.
var ranges = []addrRange{
	// IANA IPv4 Special-Purpose Address Registry.
	row("0.0.0.0/8", "this network", "RFC 791", refuse),
	row("0.0.0.0/32", "this host on this network", "RFC 1122", refuse),
	row("10.0.0.0/8", "private-use", "RFC 1918", refuse),
	row("100.64.0.0/10", "shared address space (CGNAT)", "RFC 6598", refuse),
	row("127.0.0.0/8", "loopback", "RFC 1122", refuse),
	row("169.254.0.0/16", "link-local", "RFC 3927", refuse),
	row("172.16.0.0/12", "private-use", "RFC 1918", refuse),
	row("192.0.0.0/24", "IETF protocol assignments", "RFC 6890", refuse),
	row("192.0.0.0/29", "IPv4 service continuity prefix", "RFC 7335", refuse),
	row("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", refuse),
	row("192.0.0.9/32", "port control protocol anycast", "RFC 7723", allow),
	row("192.0.0.10/32", "traversal using relays around NAT anycast", "RFC 8155", allow),
	row("192.0.0.170/32", "NAT64/DNS64 discovery", "RFC 7050", refuse),
	row("192.0.0.171/32", "NAT64/DNS64 discovery", "RFC 7050", refuse),
	row("192.0.2.0/24", "documentation (TEST-NET-1)", "RFC 5737", refuse),
	row("192.88.99.0/24", "deprecated 6to4 relay anycast", "RFC 7526", refuse),
	row("192.168.0.0/16", "private-use", "RFC 1918", refuse),
	row("198.18.0.0/15", "benchmarking", "RFC 2544", refuse),
	row("198.51.100.0/24", "documentation (TEST-NET-2)", "RFC 5737", refuse),
	row("203.0.113.0/24", "documentation (TEST-NET-3)", "RFC 5737", refuse),
	row("240.0.0.0/4", "reserved", "RFC 1112", refuse),
	row("255.255.255.255/32", "limited broadcast", "RFC 919", refuse),
	// IPv4 beyond the registry.
	row("224.0.0.0/4", "multicast", "RFC 5771", refuse),

	// IANA IPv6 Address Space: only 2000::/3 is global unicast.
	row("::/0", "reserved by IETF (outside 2000::/3)", "", refuse),
	row("2000::/3", "global unicast", "RFC 4291", allow),
	// IANA IPv6 Special-Purpose Address Registry.
	row("::/128", "unspecified", "RFC 4291", refuse),
	row("::1/128", "loopback", "RFC 4291", refuse),
	row("::ffff:0:0/96", "IPv4-mapped", "RFC 4291", embedded4),
	row("64:ff9b::/96", "NAT64 well-known prefix", "RFC 6052", embedded4),
	row("64:ff9b:1::/48", "local-use IPv4/IPv6 translation", "RFC 8215", refuse),
	row("100::/64", "discard-only", "RFC 6666", refuse),
	row("100:0:0:1::/64", "dummy IPv6 prefix", "RFC 9780", refuse),
	row("2001::/23", "IETF protocol assignments", "RFC 2928", refuse),
	row("2001::/32", "Teredo", "RFC 4380", refuse),
	row("2001:1::1/128", "port control protocol anycast", "RFC 7723", allow),
	row("2001:1::2/128", "traversal using relays around NAT anycast", "RFC 8155", allow),
	row("2001:1::3/128", "DNS-SD service registration protocol anycast", "RFC 9665", allow),
	row("2001:2::/48", "benchmarking", "RFC 5180", refuse),
	row("2001:3::/32", "AMT", "RFC 7450", allow),
	row("2001:4:112::/48", "AS112-v6", "RFC 7535", allow),
	row("2001:10::/28", "deprecated ORCHID", "RFC 4843", refuse),
	row("2001:20::/28", "ORCHIDv2", "RFC 7343", allow),
	row("2001:30::/28", "drone remote ID protocol entity tags", "RFC 9374", allow),
	row("2001:db8::/32", "documentation", "RFC 3849", refuse),
	row("2002::/16", "6to4", "RFC 3056", embedded6to4),
	row("3fff::/20", "documentation", "RFC 9637", refuse),
	row("5f00::/16", "segment routing (SRv6) SIDs", "RFC 9602", refuse),
	row("fc00::/7", "unique-local (private)", "RFC 4193", refuse),
	row("fe80::/10", "link-local", "RFC 4291", refuse),
	// IPv6 beyond the registry.
	row("::/96", "IPv4-compatible (deprecated)", "RFC 4291", refuse),
	row("::ffff:0:0:0/96", "IPv4-translated (SIIT)", "RFC 2765", refuse),
	row("fec0::/10", "site-local (deprecated)", "RFC 3879", refuse),
	row("ff00::/8", "multicast", "RFC 4291", refuse),
}
