package mxtest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
)

// A fallback answers for names the zone lacks, the zone still wins, and
// a name the fallback refuses does not exist.
func TestServerFallback(t *testing.T) {
	srv := mxtest.NewServer(mxtest.Zone{
		"fixed.example":   {MX: []mx.MX{{Host: "mx.zone.example", Pref: 1}}},
		"mx.zone.example": {A: []string{"127.0.0.2"}},
		"d1.example":      {MX: []mx.MX{{Host: "mx.zone.example", Pref: 1}}},
	})
	defer srv.Close()
	srv.SetFallback(func(name string) (mxtest.Domain, bool) {
		switch {
		case strings.HasPrefix(name, "mx."):
			return mxtest.Domain{A: []string{"127.0.0.1"}}, true
		case strings.HasSuffix(name, ".example.") && !strings.HasPrefix(name, "gone"):
			return mxtest.Domain{MX: []mx.MX{{Host: "mx." + strings.TrimSuffix(name, "."), Pref: 10}}}, true
		}
		return mxtest.Domain{}, false
	})
	r := srv.Resolver()
	ctx := context.Background()
	for domain, want := range map[string]string{
		"d2.example":    "mx.d2.example",
		"D3.Example":    "mx.d3.example",
		"d1.example":    "mx.zone.example", // the zone wins
		"fixed.example": "mx.zone.example",
	} {
		got, err := r.LookupMX(ctx, domain)
		if err != nil || len(got) != 1 || got[0].Host != want {
			t.Errorf("LookupMX(%s) = %v, %v; want %s", domain, got, err, want)
		}
	}
	ips, err := r.LookupIP(ctx, "mx.d2.example")
	if err != nil || len(ips) != 1 || ips[0].String() != "127.0.0.1" {
		t.Errorf("LookupIP(mx.d2.example) = %v, %v", ips, err)
	}
	if _, err := r.LookupMX(ctx, "gone.example"); !errors.Is(err, mx.ErrNoDomain) {
		t.Errorf("LookupMX(gone.example) error %v, want ErrNoDomain", err)
	}
	srv.SetFallback(nil)
	if _, err := r.LookupMX(ctx, "d9.example"); !errors.Is(err, mx.ErrNoDomain) {
		t.Errorf("without fallback: error %v, want ErrNoDomain", err)
	}
}
