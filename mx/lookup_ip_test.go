package mx_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestLookupIP(t *testing.T) {
	srv, _ := newServer(t, mxtest.Zone{
		"both.example":  {TTL: 300, A: []string{"192.0.2.1", "192.0.2.2"}, AAAA: []string{"2001:db8::1"}},
		"v4.example":    {TTL: 300, A: []string{"192.0.2.1"}},
		"v6.example":    {TTL: 300, AAAA: []string{"2001:db8::1"}},
		"none.example":  {TTL: 300, TXT: []string{"x"}},
		"alias.example": {TTL: 300, CNAME: "both.example"},
		"half.example":  {TTL: 300, A: []string{"192.0.2.7"}},
	})
	tests := []struct {
		pref mx.IPPreference
		host string
		want []netip.Addr
		err  error
	}{
		{mx.PreferIPv4, "both.example", addrs("192.0.2.1", "192.0.2.2", "2001:db8::1"), nil},
		{mx.PreferIPv6, "both.example", addrs("2001:db8::1", "192.0.2.1", "192.0.2.2"), nil},
		{mx.IPv4Only, "both.example", addrs("192.0.2.1", "192.0.2.2"), nil},
		{mx.IPv6Only, "both.example", addrs("2001:db8::1"), nil},
		{mx.PreferIPv4, "alias.example", addrs("192.0.2.1", "192.0.2.2", "2001:db8::1"), nil},
		{mx.PreferIPv4, "v6.example", addrs("2001:db8::1"), nil},
		{mx.IPv4Only, "v6.example", nil, mx.ErrNoRecords},
		{mx.PreferIPv4, "none.example", nil, mx.ErrNoRecords},
		{mx.PreferIPv4, "nx.example", nil, mx.ErrNoDomain},
		{mx.PreferIPv4, "192.0.2.9", addrs("192.0.2.9"), nil},
		{mx.PreferIPv4, "2001:db8::9", addrs("2001:db8::9"), nil},
		{mx.PreferIPv4, "bad..name", nil, mx.ErrInvalidName},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.host, "/", tt.pref), func(t *testing.T) {
			r := srv.Resolver()
			r.IPPreference = tt.pref
			got, err := r.LookupIP(context.Background(), tt.host)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || (err != nil && !mx.IsPermanent(err)) {
					t.Fatalf("got %v, %v; want permanent %v", got, err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// One family failing while the other has addresses: those addresses, not
// cached.
func TestLookupIPPartialFailure(t *testing.T) {
	srv, r := newServer(t, mxtest.Zone{
		"host.example": {TTL: 300, A: []string{"192.0.2.1"}, AAAA: []string{"2001:db8::1"},
			Faults: mxtest.Faults{ServFail: true, Types: []string{"AAAA"}}},
	})
	for range 2 {
		got, err := r.LookupIP(context.Background(), "host.example")
		if err != nil || !slices.Equal(got, addrs("192.0.2.1")) {
			t.Fatalf("got %v, %v", got, err)
		}
	}
	if n := srv.Count("host.example", "A"); n != 2 {
		t.Fatalf("%d A queries, want 2 (partial answers are not cached)", n)
	}
	r.IPPreference = mx.IPv6Only
	if _, err := r.LookupIP(context.Background(), "host.example"); err == nil || mx.IsPermanent(err) {
		t.Fatalf("IPv6 only: %v, want temporary", err)
	}
}

// Both families failing: a temporary error, not cached.
func TestLookupIPFailure(t *testing.T) {
	srv, r := newServer(t, mxtest.Zone{
		"host.example": {TTL: 300, A: []string{"192.0.2.1"}, AAAA: []string{"2001:db8::1"}},
	})
	srv.SetFaults(mxtest.Faults{ServFail: true})
	if _, err := r.LookupIP(context.Background(), "host.example"); err == nil || mx.IsPermanent(err) {
		t.Fatalf("got %v, want temporary", err)
	}
	srv.SetFaults(mxtest.Faults{})
	if got, err := r.LookupIP(context.Background(), "host.example"); err != nil || len(got) != 2 {
		t.Fatalf("after recovery: %v, %v", got, err)
	}
}

func TestSecureVariants(t *testing.T) {
	_, r := newServer(t, mxtest.Zone{
		"signed.example":    {TTL: 300, MX: []mx.MX{{Host: "mx.signed.example", Pref: 1}}, Faults: mxtest.Faults{AD: true}},
		"mx.signed.example": {TTL: 300, A: []string{"192.0.2.1"}, Faults: mxtest.Faults{AD: true}},
		"plain.example":     {TTL: 300, MX: []mx.MX{{Host: "mx.plain.example", Pref: 1}}},
		"mx.plain.example":  {TTL: 300, A: []string{"192.0.2.1"}},
		"implicit.example":  {TTL: 300, A: []string{"192.0.2.1"}, Faults: mxtest.Faults{AD: true}},
		"half.example":      {TTL: 300, A: []string{"192.0.2.1"}, AAAA: []string{"2001:db8::1"}, Faults: mxtest.Faults{AD: true, Types: []string{"A", "MX"}}},
	})
	ctx := context.Background()
	for domain, want := range map[string]bool{"signed.example": true, "plain.example": false, "implicit.example": true, "half.example": false} {
		if _, ad, err := r.LookupMXSecure(ctx, domain); err != nil || ad != want {
			t.Errorf("LookupMXSecure(%s) = %v, %v; want %v", domain, ad, err, want)
		}
	}
	for host, want := range map[string]bool{"mx.signed.example": true, "mx.plain.example": false, "half.example": false, "192.0.2.1": true} {
		if _, ad, err := r.LookupIPSecure(ctx, host); err != nil || ad != want {
			t.Errorf("LookupIPSecure(%s) = %v, %v; want %v", host, ad, err, want)
		}
	}
}

func TestLookupTLSA(t *testing.T) {
	rec := mx.TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: []byte{0xde, 0xad, 0xbe, 0xef}}
	srv, r := newServer(t, mxtest.Zone{
		"_25._tcp.signed.example":   {TTL: 300, TLSA: []mx.TLSA{rec}, Faults: mxtest.Faults{AD: true}},
		"_25._tcp.unsigned.example": {TTL: 300, TLSA: []mx.TLSA{rec}},
		"_25._tcp.nodata.example":   {TTL: 300, TXT: []string{"x"}, Faults: mxtest.Faults{AD: true}},
		"_25._tcp.bogus.example":    {TTL: 300, Faults: mxtest.Faults{ServFail: true}},
		"_25._tcp.alias.example":    {TTL: 300, CNAME: "_25._tcp.signed.example", Faults: mxtest.Faults{AD: true}},
		"_465._tcp.signed.example":  {TTL: 300, TLSA: []mx.TLSA{rec, rec}, Faults: mxtest.Faults{AD: true}},
	})
	ctx := context.Background()
	tests := []struct {
		host  string
		port  int
		n     int
		ad    bool
		temp  bool
		isErr bool
	}{
		{"signed.example", 25, 1, true, false, false},
		{"SIGNED.example.", 25, 1, true, false, false},
		{"signed.example", 465, 2, true, false, false},
		{"unsigned.example", 25, 1, false, false, false},
		{"nodata.example", 25, 0, true, false, false},
		{"nx.example", 25, 0, false, false, false},
		{"alias.example", 25, 1, true, false, false},
		{"bogus.example", 25, 0, false, true, true},
		{"signed.example", 0, 0, false, true, true},
		{"signed.example", 70000, 0, false, true, true},
		{"", 25, 0, false, false, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.host, ":", tt.port), func(t *testing.T) {
			recs, ad, err := r.LookupTLSA(ctx, tt.host, tt.port)
			if tt.isErr {
				if err == nil || (err != nil && !mx.IsPermanent(err)) != tt.temp {
					t.Fatalf("got %v, %v, %v; want an error (temporary %v)", recs, ad, err, tt.temp)
				}
				return
			}
			if err != nil || len(recs) != tt.n || ad != tt.ad {
				t.Fatalf("got %v, %v, %v; want %d records, ad %v", recs, ad, err, tt.n, tt.ad)
			}
			if tt.n > 0 && recs[0].String() != "3 1 1 deadbeef" {
				t.Fatalf("record %v", recs[0])
			}
		})
	}
	if n := srv.Count("_25._tcp.signed.example", "TLSA"); n != 1 {
		t.Errorf("%d TLSA queries for signed.example:25, want 1 (cached)", n)
	}
}

func TestTruncationFallsBackToTCP(t *testing.T) {
	// A forced TC bit, and an answer too big for 1232 octets.
	big := make([]mx.MX, 120)
	for i := range big {
		big[i] = mx.MX{Host: fmt.Sprintf("mx%03d.a-rather-long-name-for-a-mail-host.example", i), Pref: uint16(i)}
	}
	srv, r := newServer(t, mxtest.Zone{
		"tc.example":  {MX: []mx.MX{{Host: "mx.example.com", Pref: 1}}, Faults: mxtest.Faults{Truncate: true}},
		"big.example": {MX: big},
	})
	got, err := r.LookupMX(context.Background(), "tc.example")
	if err != nil || len(got) != 1 {
		t.Fatalf("tc.example: %v, %v", got, err)
	}
	got, err = r.LookupMX(context.Background(), "big.example")
	if err != nil || len(got) != 120 || got[119].Pref != 119 {
		t.Fatalf("big.example: %d hosts, %v", len(got), err)
	}
	if n := srv.TCPQueries(); n != 2 {
		t.Fatalf("%d TCP queries, want 2", n)
	}
}
