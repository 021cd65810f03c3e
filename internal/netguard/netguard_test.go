package netguard

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// checkCases go range by range through the table: for every row an address
// inside it, and around the edges of a range the first address outside.
var checkCases = []struct {
	addr string
	ok   bool // true: globally reachable
}{
	// 0.0.0.0/8 and 0.0.0.0/32.
	{"0.0.0.0", false}, {"0.1.2.3", false}, {"0.255.255.255", false}, {"1.0.0.0", true},
	// 10.0.0.0/8.
	{"10.0.0.1", false}, {"10.255.255.255", false}, {"9.255.255.255", true}, {"11.0.0.0", true},
	// 100.64.0.0/10.
	{"100.64.0.1", false}, {"100.127.255.255", false}, {"100.63.255.255", true}, {"100.128.0.0", true},
	// 127.0.0.0/8.
	{"127.0.0.1", false}, {"127.255.255.254", false}, {"126.255.255.255", true}, {"128.0.0.0", true},
	// 169.254.0.0/16.
	{"169.254.169.254", false}, {"169.253.255.255", true}, {"169.255.0.0", true},
	// 172.16.0.0/12.
	{"172.16.0.1", false}, {"172.31.255.255", false}, {"172.15.255.255", true}, {"172.32.0.0", true},
	// 192.0.0.0/24 and the rows inside it.
	{"192.0.0.200", false}, {"192.0.0.255", false}, {"191.255.255.255", true}, {"192.0.1.0", true},
	{"192.0.0.1", false}, {"192.0.0.7", false}, // /29 service continuity
	{"192.0.0.8", false},                                             // dummy
	{"192.0.0.9", true}, {"192.0.0.10", true}, {"192.0.0.11", false}, // PCP, TURN anycast
	{"192.0.0.170", false}, {"192.0.0.171", false}, // NAT64 discovery
	// 192.0.2.0/24.
	{"192.0.2.1", false}, {"192.0.1.255", true}, {"192.0.3.0", true},
	// 192.88.99.0/24.
	{"192.88.99.1", false}, {"192.88.98.255", true}, {"192.88.100.0", true},
	// 192.168.0.0/16.
	{"192.168.1.1", false}, {"192.167.255.255", true}, {"192.169.0.0", true},
	// 198.18.0.0/15.
	{"198.18.0.1", false}, {"198.19.255.255", false}, {"198.17.255.255", true}, {"198.20.0.0", true},
	// 198.51.100.0/24.
	{"198.51.100.7", false}, {"198.51.99.255", true}, {"198.51.101.0", true},
	// 203.0.113.0/24.
	{"203.0.113.9", false}, {"203.0.112.255", true}, {"203.0.114.0", true},
	// 224.0.0.0/4.
	{"224.0.0.1", false}, {"239.255.255.250", false}, {"223.255.255.255", true},
	// 240.0.0.0/4 and 255.255.255.255/32.
	{"240.0.0.1", false}, {"255.255.255.254", false}, {"255.255.255.255", false},
	// Public IPv4.
	{"8.8.8.8", true}, {"1.1.1.1", true},

	// Outside 2000::/3.
	{"4000::1", false}, {"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false}, {"c000::1", false},
	{"2000::1", true}, {"3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true},
	// ::/128, ::1/128, ::/96.
	{"::", false}, {"::1", false}, {"::2", false}, {"::127.0.0.1", false}, {"::8.8.8.8", false},
	// ::ffff:0:0/96: the IPv4 address decides.
	{"::ffff:127.0.0.1", false}, {"::ffff:10.1.2.3", false}, {"::ffff:169.254.169.254", false},
	{"::ffff:0.0.0.0", false}, {"::ffff:8.8.8.8", true},
	// ::ffff:0:0:0/96 (SIIT), whatever the IPv4 address.
	{"::ffff:0:7f00:1", false}, {"::ffff:0:808:808", false},
	// 64:ff9b::/96: the IPv4 address in the last 32 bits decides.
	{"64:ff9b::7f00:1", false}, {"64:ff9b::a9fe:a9fe", false}, {"64:ff9b::a00:1", false},
	{"64:ff9b::c612:1", false}, {"64:ff9b::808:808", true}, {"64:ff9b::1:0:0", false},
	// 64:ff9b:1::/48, whatever the IPv4 address.
	{"64:ff9b:1::1", false}, {"64:ff9b:1::808:808", false},
	// 100::/64 and 100:0:0:1::/64.
	{"100::1", false}, {"100:0:0:1::1", false},
	// 2001::/23 and the rows inside it.
	{"2001:4::1", false}, {"2001:1ff:ffff::1", false}, {"2001:200::1", true}, {"2000:ffff::1", true},
	{"2001:0:5ef5:79fb::1", false}, // Teredo
	{"2001:1::1", true}, {"2001:1::2", true}, {"2001:1::3", true}, {"2001:1::4", false},
	{"2001:2::1", false}, {"2001:2:1::1", false}, // benchmarking, then the rest of 2001::/23
	{"2001:3::1", true}, {"2001:3:ffff::1", true}, // AMT
	{"2001:4:112::1", true}, {"2001:4:113::1", false}, // AS112-v6
	{"2001:10::1", false}, {"2001:1f::1", false}, // deprecated ORCHID
	{"2001:20::1", true}, {"2001:2f::1", true}, // ORCHIDv2
	{"2001:30::1", true}, {"2001:40::1", false}, // DETs
	// 2001:db8::/32.
	{"2001:db8::1", false}, {"2001:db7:ffff::1", true}, {"2001:db9::1", true},
	// 2002::/16: the IPv4 address in bits 16 to 48 decides.
	{"2002:7f00:1::1", false}, {"2002:0a00:0001::1", false}, {"2002:c000:0201::1", false},
	{"2002:808:808::1", true},
	// 3fff::/20.
	{"3fff::1", false}, {"3fff:fff:ffff::1", false}, {"3fff:1000::", true}, {"3ffe:ffff::1", true},
	// 5f00::/16.
	{"5f00::1", false},
	// fc00::/7.
	{"fc00::1", false}, {"fd12:3456::1", false},
	// fe80::/10, with and without a zone.
	{"fe80::1", false}, {"fe80::1%eth0", false},
	// fec0::/10.
	{"fec0::1", false},
	// ff00::/8.
	{"ff02::1", false}, {"ff0e::1", false},
	// Public IPv6.
	{"2606:4700::1111", true}, {"2001:4860:4860::8888", true}, {"2a00:1450:4001:80b::201a", true},
}

func TestCheck(t *testing.T) {
	for _, tt := range checkCases {
		err := Check(netip.MustParseAddr(tt.addr))
		if tt.ok && err != nil {
			t.Errorf("Check(%s) = %v, want nil", tt.addr, err)
		}
		if !tt.ok && !errors.Is(err, ErrForbidden) {
			t.Errorf("Check(%s) = %v, want ErrForbidden", tt.addr, err)
		}
	}
	if err := Check(netip.Addr{}); !errors.Is(err, ErrForbidden) {
		t.Errorf("Check(zero Addr) = %v, want ErrForbidden", err)
	}
}

// Every row of the table is the deciding one for at least one case.
func TestEveryRangeTested(t *testing.T) {
	hit := map[netip.Prefix]bool{}
	for _, tt := range checkCases {
		a := netip.MustParseAddr(tt.addr).WithZone("")
		if r, ok := lookup(a); ok {
			hit[r.prefix] = true
		}
	}
	for _, r := range ranges {
		if !hit[r.prefix] {
			t.Errorf("no case for %s", r)
		}
	}
}

func TestCheckMessage(t *testing.T) {
	for addr, want := range map[string]string{
		"169.254.169.254": "netguard: address not globally reachable: 169.254.169.254 is in 169.254.0.0/16 link-local (RFC 3927)",
		"64:ff9b::7f00:1": "netguard: address not globally reachable: 64:ff9b::7f00:1 is in 64:ff9b::/96 NAT64 well-known prefix (RFC 6052), for 127.0.0.1 in 127.0.0.0/8 loopback (RFC 1122)",
		"4000::1":         "netguard: address not globally reachable: 4000::1 is in ::/0 reserved by IETF (outside 2000::/3)",
	} {
		if err := Check(netip.MustParseAddr(addr)); err == nil || err.Error() != want {
			t.Errorf("Check(%s) = %v\nwant %s", addr, err, want)
		}
	}
}

func TestControl(t *testing.T) {
	tests := []struct {
		network, address string
		ok               bool
	}{
		{"tcp", "127.0.0.1:443", false},
		{"tcp6", "[::1]:443", false},
		{"tcp6", "[fe80::1%eth0]:443", false},
		{"tcp6", "[64:ff9b::a9fe:a9fe]:80", false},
		{"tcp4", "8.8.8.8:25", true},
		{"tcp6", "[2001:4860:4860::8888]:25", true},
		{"tcp", "mta-sts.example.com:443", false}, // not an address: refused
		{"unix", "/run/socket", false},
	}
	for _, tt := range tests {
		err := Control(tt.network, tt.address, nil)
		if tt.ok != (err == nil) || err != nil && !errors.Is(err, ErrForbidden) {
			t.Errorf("Control(%q, %q) = %v, want ok %v", tt.network, tt.address, err, tt.ok)
		}
	}
}

// A dialer with Control does not connect to a forbidden address.
func TestControlDialer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan struct{})
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
			close(accepted)
		}
	}()
	d := net.Dialer{Timeout: 5 * time.Second, Control: Control}
	c, err := d.Dial("tcp", l.Addr().String())
	if err == nil {
		c.Close()
		t.Fatal("dialled the loopback")
	}
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("dial error %v, want ErrForbidden naming the loopback", err)
	}
	select {
	case <-accepted:
		t.Fatal("the listener accepted a connection")
	case <-time.After(50 * time.Millisecond):
	}
}

func BenchmarkCheck(b *testing.B) {
	addrs := []netip.Addr{
		netip.MustParseAddr("8.8.8.8"),
		netip.MustParseAddr("10.1.2.3"),
		netip.MustParseAddr("2a00:1450:4001:80b::201a"),
		netip.MustParseAddr("64:ff9b::808:808"),
	}
	for b.Loop() {
		for _, a := range addrs {
			_ = Check(a)
		}
	}
}
