package mx_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
)

func testZone() mxtest.Zone {
	return mxtest.Zone{
		"example.com": {TTL: 300, MX: []mx.MX{
			{Host: "mx2.example.com", Pref: 20},
			{Host: "mx1.example.com", Pref: 10},
		}},
		"mx1.example.com":   {TTL: 300, A: []string{"192.0.2.1"}},
		"mx2.example.com":   {TTL: 300, A: []string{"192.0.2.2"}, AAAA: []string{"2001:db8::2"}},
		"implicit.example":  {TTL: 300, A: []string{"192.0.2.3"}},
		"implicit6.example": {TTL: 300, AAAA: []string{"2001:db8::3"}},
		"nothing.example":   {TTL: 300, TXT: []string{"hello"}},
		"null.example":      {TTL: 300, MX: []mx.MX{{Host: ".", Pref: 0}}, A: []string{"192.0.2.4"}},
		"nullmixed.example": {TTL: 300, MX: []mx.MX{{Host: ".", Pref: 0}, {Host: "mx1.example.com", Pref: 10}}},
		"literal.example": {TTL: 300, MX: []mx.MX{
			{Host: "192.0.2.9", Pref: 5}, {Host: "bad!name.example", Pref: 6}, {Host: "mx1.example.com", Pref: 10},
		}},
		"onlyliteral.example":   {TTL: 300, MX: []mx.MX{{Host: "192.0.2.9", Pref: 5}, {Host: "1.2.3", Pref: 6}}},
		"alias.example":         {TTL: 300, CNAME: "example.com"},
		"alias2.example":        {TTL: 300, CNAME: "alias.example"},
		"loop1.example":         {TTL: 300, CNAME: "loop2.example"},
		"loop2.example":         {TTL: 300, CNAME: "loop1.example"},
		"dangling.example":      {TTL: 300, CNAME: "gone.example"},
		"servfail.example":      {TTL: 300, MX: []mx.MX{{Host: "mx1.example.com"}}, Faults: mxtest.Faults{ServFail: true}},
		"refused.example":       {TTL: 300, MX: []mx.MX{{Host: "mx1.example.com"}}, Faults: mxtest.Faults{Refused: true}},
		"drop.example":          {TTL: 300, MX: []mx.MX{{Host: "mx1.example.com"}}, Faults: mxtest.Faults{Drop: true}},
		"garbage.example":       {TTL: 300, MX: []mx.MX{{Host: "mx1.example.com"}}, Faults: mxtest.Faults{Garbage: true}},
		"mismatch.example":      {TTL: 300, MX: []mx.MX{{Host: "mx1.example.com"}}, Faults: mxtest.Faults{Mismatch: true}},
		"aservfail.example":     {TTL: 300, A: []string{"192.0.2.5"}, Faults: mxtest.Faults{}},
		"xn--bcher-kva.example": {TTL: 300, MX: []mx.MX{{Host: "mx.xn--bcher-kva.example", Pref: 1}}},
	}
}

// newServer starts an mxtest server for the test and a resolver for it with
// a short timeout.
func newServer(t *testing.T, z mxtest.Zone) (*mxtest.Server, *mx.Resolver) {
	t.Helper()
	srv := mxtest.NewServer(z)
	t.Cleanup(srv.Close)
	r := srv.Resolver()
	r.Timeout = time.Second
	return srv, r
}

func TestLookupMX(t *testing.T) {
	_, r := newServer(t, testZone())
	tests := []struct {
		domain string
		want   []mx.MX
		err    error // errors.Is target; nil → success
		temp   bool  // the error must be temporary
	}{
		{domain: "example.com", want: []mx.MX{{"mx1.example.com", 10}, {"mx2.example.com", 20}}},
		{domain: "EXAMPLE.com.", want: []mx.MX{{"mx1.example.com", 10}, {"mx2.example.com", 20}}},
		{domain: "implicit.example", want: []mx.MX{{"implicit.example", 0}}},
		{domain: "implicit6.example", want: []mx.MX{{"implicit6.example", 0}}},
		{domain: "alias.example", want: []mx.MX{{"mx1.example.com", 10}, {"mx2.example.com", 20}}},
		{domain: "alias2.example", want: []mx.MX{{"mx1.example.com", 10}, {"mx2.example.com", 20}}},
		{domain: "literal.example", want: []mx.MX{{"mx1.example.com", 10}}},
		{domain: "nullmixed.example", want: []mx.MX{{"mx1.example.com", 10}}},
		{domain: "bücher.example", want: []mx.MX{{"mx.xn--bcher-kva.example", 1}}},
		{domain: "BÜCHER.example", want: []mx.MX{{"mx.xn--bcher-kva.example", 1}}},
		{domain: "xn--bcher-kva.example", want: []mx.MX{{"mx.xn--bcher-kva.example", 1}}},
		{domain: "null.example", err: mx.ErrNullMX},
		{domain: "nx.example", err: mx.ErrNoDomain},
		{domain: "dangling.example", err: mx.ErrNoDomain},
		{domain: "nothing.example", err: mx.ErrNoRecords},
		{domain: "onlyliteral.example", err: mx.ErrNoUsableMX, temp: true},
		{domain: "loop1.example", err: mx.ErrCNAMELoop, temp: true},
		{domain: "servfail.example", temp: true},
		{domain: "refused.example", temp: true},
		{domain: "drop.example", temp: true},
		{domain: "garbage.example", temp: true},
		{domain: "mismatch.example", temp: true},
		{domain: "", err: mx.ErrInvalidName},
		{domain: ".", err: mx.ErrInvalidName},
		{domain: "a..example", err: mx.ErrInvalidName},
		{domain: strings.Repeat("a", 64) + ".example", err: mx.ErrInvalidName},
		{domain: strings.Repeat("abcdefghi.", 26) + "example", err: mx.ErrInvalidName},
		{domain: "xn--zz.example", err: mx.ErrInvalidName},
		{domain: "under_score.example", err: mx.ErrInvalidName},
		{domain: "-lead.example", err: mx.ErrInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.domain, func(t *testing.T) {
			got, err := r.LookupMX(context.Background(), tt.domain)
			if tt.err == nil && !tt.temp {
				if err != nil {
					t.Fatalf("LookupMX(%q): %v", tt.domain, err)
				}
				if !slices.Equal(got, tt.want) {
					t.Fatalf("LookupMX(%q) = %v, want %v", tt.domain, got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("LookupMX(%q) = %v, want an error", tt.domain, got)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("LookupMX(%q) error %v, want %v", tt.domain, err, tt.err)
			}
			if (err != nil && !mx.IsPermanent(err)) != tt.temp {
				t.Fatalf("temporary(%v) = %v, want %v", err, (err != nil && !mx.IsPermanent(err)), tt.temp)
			}
			if !strings.HasPrefix(err.Error(), "mx: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestLookupMXErrorTypes(t *testing.T) {
	_, r := newServer(t, testZone())
	var logs bytes.Buffer
	r.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	defer func() {
		if !strings.Contains(logs.String(), "rcode=SERVFAIL") {
			t.Errorf("log lacks the SERVFAIL: %q", logs.String())
		}
	}()
	_, err := r.LookupMX(context.Background(), "drop.example")
	var de *mx.DNSError
	if !errors.As(err, &de) || !de.Timeout() || mx.IsPermanent(de) {
		t.Fatalf("drop: got %v (%T), want a temporary timeout *DNSError", err, err)
	}
	_, err = r.LookupMX(context.Background(), "servfail.example")
	if !errors.As(err, &de) || de.Rcode != "SERVFAIL" || de.Timeout() {
		t.Fatalf("servfail: got %#v, want Rcode SERVFAIL", err)
	}
	_, err = r.LookupMX(context.Background(), "nx.example")
	if !errors.As(err, &de) || !mx.IsPermanent(de) || de.Name != "nx.example." || de.Type != "MX" {
		t.Fatalf("nx: got %#v", err)
	}
	var ne *mx.NameError
	if _, err = r.LookupMX(context.Background(), "a..b"); !errors.As(err, &ne) {
		t.Fatalf("a..b: got %v, want *NameError", err)
	}
}

// A DNS failure must never turn into the implicit MX.
func TestNoImplicitMXOnFailure(t *testing.T) {
	srv, r := newServer(t, mxtest.Zone{
		"flaky.example": {A: []string{"192.0.2.1"}},
	})
	srv.SetFaults(mxtest.Faults{ServFail: true})
	if got, err := r.LookupMX(context.Background(), "flaky.example"); err == nil || mx.IsPermanent(err) {
		t.Fatalf("got %v, %v; want a temporary error", got, err)
	}
	srv.SetFaults(mxtest.Faults{})
	got, err := r.LookupMX(context.Background(), "flaky.example")
	if err != nil || !slices.Equal(got, []mx.MX{{"flaky.example", 0}}) {
		t.Fatalf("after recovery: %v, %v", got, err)
	}
	// The A lookup of the implicit MX fails: temporary too.
	srv.Set("flaky2.example", mxtest.Domain{A: []string{"192.0.2.1"}})
	srv.Update("flaky2.example", func(d *mxtest.Domain) { d.Faults.Refused = true })
	if _, err := r.LookupMX(context.Background(), "flaky2.example"); err == nil || mx.IsPermanent(err) {
		t.Fatalf("got %v, want temporary", err)
	}
}

func TestEqualPreferenceShuffle(t *testing.T) {
	for _, ttl := range []uint32{0, 300} { // uncached and cached
		t.Run(fmt.Sprint("ttl", ttl), func(t *testing.T) {
			_, r := newServer(t, mxtest.Zone{
				"eq.example": {TTL: ttl, MX: []mx.MX{
					{Host: "a.example", Pref: 10}, {Host: "b.example", Pref: 10}, {Host: "c.example", Pref: 10},
					{Host: "z.example", Pref: 20},
				}},
			})
			seen := map[string]int{}
			for range 300 {
				got, err := r.LookupMX(context.Background(), "eq.example")
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 4 || got[3] != (mx.MX{Host: "z.example", Pref: 20}) {
					t.Fatalf("bad order %v", got)
				}
				var key []string
				for _, m := range got[:3] {
					key = append(key, m.Host)
				}
				seen[strings.Join(key, ",")]++
			}
			if len(seen) != 6 {
				t.Fatalf("saw %d of 6 orders in 300 lookups: %v", len(seen), seen)
			}
		})
	}
}

func TestOrderings(t *testing.T) {
	hosts := func(prefs ...uint16) []mx.MX {
		var out []mx.MX
		for i, p := range prefs {
			out = append(out, mx.MX{Host: fmt.Sprint("h", i), Pref: p})
		}
		return out
	}
	tests := []struct {
		prefs []uint16
		n     int
	}{
		{[]uint16{10}, 1},
		{[]uint16{10, 20, 30}, 1},
		{[]uint16{10, 10}, 2},
		{[]uint16{10, 10, 20, 20}, 4},
		{[]uint16{10, 10, 10, 10}, 24},
		{[]uint16{10, 10, 10, 20, 20}, 12},
		{[]uint16{10, 10, 10, 10, 10}, 24}, // 120 orders: 24 random ones kept
	}
	for _, tt := range tests {
		in := hosts(tt.prefs...)
		got := mx.Orderings(in)
		if len(got) != tt.n {
			t.Errorf("%v: %d orders, want %d", tt.prefs, len(got), tt.n)
		}
		for _, o := range got {
			if len(o) != len(in) || cap(o) != len(o) {
				t.Fatalf("%v: order %v has len %d cap %d", tt.prefs, o, len(o), cap(o))
			}
			if !slices.IsSortedFunc(o, func(a, b mx.MX) int { return int(a.Pref) - int(b.Pref) }) {
				t.Fatalf("%v: order %v not by preference", tt.prefs, o)
			}
		}
	}
}

func TestBadServer(t *testing.T) {
	for _, s := range []string{"example.com:53", "1.2.3.4:x", "", "[::1]:0"} {
		r := &mx.Resolver{Servers: []string{s}}
		_, err := r.LookupMX(context.Background(), "example.com")
		if !errors.Is(err, mx.ErrBadServer) {
			t.Errorf("Servers %q: got %v, want ErrBadServer", s, err)
		}
	}
}

func TestToASCII(t *testing.T) {
	tests := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"example.com.", "example.com"},
		{"Example.COM", "example.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"ＥＸＡＭＰＬＥ.com", "example.com"},
		{"a-b.example", "a-b.example"},
		{"123.example", "123.example"},
	}
	for _, tt := range tests {
		got, err := mx.ToASCII(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ToASCII(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// A server that does not answer is skipped for the next one.
func TestServerFailover(t *testing.T) {
	dead, _ := newServer(t, mxtest.Zone{})
	dead.SetFaults(mxtest.Faults{Drop: true})
	good, _ := newServer(t, mxtest.Zone{"example.com": {MX: []mx.MX{{Host: "mx.example.com", Pref: 1}}}})
	r := &mx.Resolver{Servers: []string{dead.Addr(), good.Addr()}, Timeout: 200 * time.Millisecond, Attempts: 1}
	got, err := r.LookupMX(context.Background(), "example.com.")
	if err != nil || len(got) != 1 {
		t.Fatalf("got %v, %v", got, err)
	}
	if dead.Queries() != 1 || good.Queries() != 1 {
		t.Fatalf("queries: dead %d, good %d", dead.Queries(), good.Queries())
	}
}

// A hostile answer with many MX records keeps the most preferred ones.
func TestManyMX(t *testing.T) {
	var many []mx.MX
	for i := range 300 {
		many = append(many, mx.MX{Host: fmt.Sprintf("mx%d.example", i), Pref: uint16(300 - i)})
	}
	many = append(many, many[0], many[1]) // duplicates
	_, r := newServer(t, mxtest.Zone{"many.example": {TTL: 300, MX: many}})
	got, err := r.LookupMX(context.Background(), "many.example")
	if err != nil || len(got) != 128 || got[0].Pref != 1 || got[127].Pref != 128 {
		t.Fatalf("got %d hosts (%v...), %v", len(got), got[:min(len(got), 2)], err)
	}
}
