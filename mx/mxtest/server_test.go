package mxtest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
)

func query(t *testing.T, network, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, true)
	in, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", network, name, err)
	}
	return in
}

func TestServer(t *testing.T) {
	srv := mxtest.NewServer(mxtest.Zone{
		"Example.COM.":  {TTL: 60, MX: []mx.MX{{Host: "mx.example.com", Pref: 5}}},
		"alias.example": {TTL: 30, CNAME: "example.com"},
	})
	defer srv.Close()
	if _, _, err := net.SplitHostPort(srv.Addr()); err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"udp", "tcp"} {
		in := query(t, network, srv.Addr(), "example.com", dns.TypeMX)
		if len(in.Answer) != 1 || in.Answer[0].Header().Ttl != 60 || in.Rcode != dns.RcodeSuccess {
			t.Fatalf("%s: %v", network, in)
		}
	}
	in := query(t, "udp", srv.Addr(), "alias.example", dns.TypeMX)
	if len(in.Answer) != 2 || in.Answer[0].Header().Rrtype != dns.TypeCNAME {
		t.Fatalf("alias: %v", in)
	}
	srv.SetNegativeTTL(42)
	in = query(t, "udp", srv.Addr(), "nx.example", dns.TypeA)
	if in.Rcode != dns.RcodeNameError || len(in.Ns) != 1 || in.Ns[0].(*dns.SOA).Minttl != 42 {
		t.Fatalf("nx: %v", in)
	}
	in = query(t, "udp", srv.Addr(), "example.com", dns.TypeA)
	if in.Rcode != dns.RcodeSuccess || len(in.Answer) != 0 || len(in.Ns) != 1 {
		t.Fatalf("nodata: %v", in)
	}
	if srv.Queries() != 5 || srv.TCPQueries() != 1 || srv.Count("EXAMPLE.com", "mx") != 2 {
		t.Fatalf("counters: %d total, %d tcp, %d example.com MX", srv.Queries(), srv.TCPQueries(), srv.Count("example.com", "MX"))
	}
	srv.ResetQueries()
	if srv.Queries() != 0 || srv.Count("example.com", "MX") != 0 {
		t.Fatal("ResetQueries")
	}
}

func TestServerChanges(t *testing.T) {
	srv := mxtest.NewServer(nil)
	defer srv.Close()
	r := srv.Resolver()
	ctx := context.Background()
	if _, err := r.LookupIP(ctx, "h.example"); !errors.Is(err, mx.ErrNoDomain) {
		t.Fatal(err)
	}
	srv.Set("h.example", mxtest.Domain{A: []string{"192.0.2.1"}})
	if got, err := r.LookupIP(ctx, "h.example"); err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	srv.Update("h.example", func(d *mxtest.Domain) { d.AAAA = []string{"2001:db8::1"} })
	if got, err := r.LookupIP(ctx, "h.example"); err != nil || len(got) != 2 {
		t.Fatal(got, err)
	}
	srv.Delete("h.example")
	if _, err := r.LookupIP(ctx, "h.example"); !errors.Is(err, mx.ErrNoDomain) {
		t.Fatal(err)
	}
	srv.Close()
	srv.Close() // twice is fine
}

func TestServerFaults(t *testing.T) {
	srv := mxtest.NewServer(mxtest.Zone{"a.example": {A: []string{"192.0.2.1"}}})
	defer srv.Close()
	tests := []struct {
		f     mxtest.Faults
		check func(in *dns.Msg) bool
	}{
		{mxtest.Faults{ServFail: true}, func(in *dns.Msg) bool { return in.Rcode == dns.RcodeServerFailure }},
		{mxtest.Faults{Refused: true}, func(in *dns.Msg) bool { return in.Rcode == dns.RcodeRefused }},
		{mxtest.Faults{AD: true}, func(in *dns.Msg) bool { return in.AuthenticatedData && len(in.Answer) == 1 }},
		{mxtest.Faults{Truncate: true}, func(in *dns.Msg) bool { return in.Truncated && len(in.Answer) == 0 }},
		{mxtest.Faults{Mismatch: true}, func(in *dns.Msg) bool { return in.Question[0].Name == "mismatch.invalid." }},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%+v", tt.f), func(t *testing.T) {
			srv.SetFaults(tt.f)
			c := &dns.Client{Timeout: 2 * time.Second}
			m := new(dns.Msg)
			m.SetQuestion("a.example.", dns.TypeA)
			in, _, err := c.Exchange(m, srv.Addr())
			if tt.f.Mismatch {
				// miekg/dns accepts it; mx must not.
				if err != nil || !tt.check(in) {
					t.Fatalf("%v, %v", in, err)
				}
				return
			}
			if err != nil || !tt.check(in) {
				t.Fatalf("%v, %v", in, err)
			}
		})
	}
	srv.SetFaults(mxtest.Faults{Drop: true})
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("a.example.", dns.TypeA)
	if in, _, err := c.Exchange(m, srv.Addr()); err == nil {
		t.Fatalf("Drop: got an answer %v", in)
	}
}

func TestSetPanicsOnBadAddress(t *testing.T) {
	srv := mxtest.NewServer(nil)
	defer srv.Close()
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	srv.Set("x.example", mxtest.Domain{A: []string{"2001:db8::1"}})
}

func ExampleNewServer() {
	srv := mxtest.NewServer(mxtest.Zone{
		"example.com":    {TTL: 300, MX: []mx.MX{{Host: "mx.example.com", Pref: 10}}},
		"mx.example.com": {TTL: 300, A: []string{"127.0.0.1"}},
	})
	defer srv.Close()
	r := srv.Resolver()

	mxs, _ := r.LookupMX(context.Background(), "example.com")
	addrs, _ := r.LookupIP(context.Background(), mxs[0].Host)
	fmt.Println(mxs[0].Host, addrs, srv.Queries())
	// Output: mx.example.com [127.0.0.1] 3
}
