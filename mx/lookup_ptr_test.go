package mx_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
)

func TestLookupPTR(t *testing.T) {
	rev := func(a string) string {
		n, err := mxtest.ReverseName(a)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	zone := mxtest.Zone{
		rev("192.0.2.1"):   {TTL: 300, PTR: []string{"MX1.Example.com."}},
		rev("192.0.2.2"):   {TTL: 300, PTR: []string{"a.example.com", "b.example.com"}},
		rev("2001:db8::1"): {TTL: 300, PTR: []string{"v6.example.com"}},
		rev("192.0.2.3"):   {TTL: 300, TXT: []string{"no ptr here"}},
		rev("192.0.2.4"):   {TTL: 300, PTR: []string{"x.example"}, Faults: mxtest.Faults{ServFail: true}},
	}
	if got := rev("2001:db8::1"); got != "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa" {
		t.Fatalf("ReverseName = %s", got)
	}
	_, r := newServer(t, zone)
	r.Timeout = 200 * time.Millisecond
	tests := []struct {
		addr string
		want []string
		err  error
		temp bool
	}{
		{addr: "192.0.2.1", want: []string{"mx1.example.com"}},
		{addr: "::ffff:192.0.2.1", want: []string{"mx1.example.com"}},
		{addr: "192.0.2.2", want: []string{"a.example.com", "b.example.com"}},
		{addr: "2001:db8::1", want: []string{"v6.example.com"}},
		{addr: "192.0.2.3", err: mx.ErrNoRecords},
		{addr: "192.0.2.9", err: mx.ErrNoDomain},
		{addr: "192.0.2.4", temp: true},
	}
	for _, tt := range tests {
		got, err := r.LookupPTR(context.Background(), netip.MustParseAddr(tt.addr))
		switch {
		case tt.temp:
			if err == nil || mx.IsPermanent(err) {
				t.Errorf("%s: err = %v, want a temporary error", tt.addr, err)
			}
		case tt.err != nil:
			if !errors.Is(err, tt.err) || !mx.IsPermanent(err) {
				t.Errorf("%s: err = %v, want permanent %v", tt.addr, err, tt.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.addr, err)
		case !slices.Equal(got, tt.want):
			t.Errorf("%s: got %q, want %q", tt.addr, got, tt.want)
		}
	}
	var ne *mx.NameError
	if _, err := r.LookupPTR(context.Background(), netip.Addr{}); !errors.As(err, &ne) {
		t.Errorf("zero address: err = %v, want a *NameError", err)
	}
}
