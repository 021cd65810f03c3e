package relay

import (
	"errors"
	"net/netip"
	"testing"
)

func TestCheckDestination(t *testing.T) {
	forbidden := []string{
		"127.0.0.1", "127.3.4.5", "::1",
		"10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1",
		"100.64.0.1", "100.127.255.254",
		"169.254.169.254", "fe80::1",
		"0.0.0.0", "::", "0.1.2.3",
		"224.0.0.1", "239.255.255.250", "ff02::1", "ff05::2",
		"fc00::1", "fd12:3456::1",
		"::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254",
		"64:ff9b::a9fe:a9fe", // NAT64 of 169.254.169.254
		"2002:7f00:1::1",     // 6to4 of 127.0.0.1
		"::7f00:1",           // IPv4-compatible 127.0.0.1
		"255.255.255.255", "192.0.2.10", "2001:db8::25",
		// Forms the dialer let through before it shared netguard's table.
		"64:ff9b:1::a00:1", // local-use NAT64 (RFC 8215)
		"fec0::1",          // site-local
		"2001::1",          // Teredo
		"2001:2::1",        // benchmarking
		"3fff::1",          // documentation (RFC 9637)
		"::ffff:0:a00:1",   // IPv4-translated 10.0.0.1
		"192.88.99.1",      // 6to4 relay anycast
		"198.18.0.1", "240.0.0.1", "198.51.100.7", "203.0.113.9",
	}
	for _, s := range forbidden {
		err := checkDestination(netip.MustParseAddr(s))
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("checkDestination(%s) = %v, want ErrForbiddenAddress", s, err)
		}
	}
	allowed := []string{
		"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "192.169.0.1",
		"2a00:1450:4001:80b::201a", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
	}
	for _, s := range allowed {
		if err := checkDestination(netip.MustParseAddr(s)); err != nil {
			t.Errorf("checkDestination(%s) = %v, want nil", s, err)
		}
	}
	if err := checkDestination(netip.Addr{}); err == nil {
		t.Error("checkDestination(invalid) = nil")
	}
}
