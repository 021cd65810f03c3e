package mx_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/mx"
	"golang.org/x/net/idna"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name, in string
		want     *mx.Policy // nil → error
	}{
		{"enforce", "version: STSv1\nmode: enforce\nmx: mx.example.com\nmx: *.example.net\nmax_age: 604800\n",
			&mx.Policy{Mode: mx.STSEnforce, MX: []string{"mx.example.com", "*.example.net"}, MaxAge: 7 * 24 * time.Hour}},
		{"crlf no final newline", "version: STSv1\r\nmode: testing\r\nmx: MX.Example.COM\r\nmax_age: 0",
			&mx.Policy{Mode: mx.STSTesting, MX: []string{"mx.example.com"}}},
		{"none without mx", "version: STSv1\nmode: none\nmax_age: 86400\n",
			&mx.Policy{Mode: mx.STSNone, MaxAge: 24 * time.Hour}},
		{"any order, extension, spaces", "mode:enforce  \nmax_age:\t60\nfoo_bar: any value here\nversion: STSv1\nmx: a.example\n\n\n",
			&mx.Policy{Mode: mx.STSEnforce, MX: []string{"a.example"}, MaxAge: time.Minute}},
		{"first mode wins", "version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmax_age: 1\n",
			&mx.Policy{Mode: mx.STSTesting, MX: []string{"a.example"}, MaxAge: time.Second}},
		{"max max_age", "version: STSv1\nmode: none\nmax_age: 31557600\n",
			&mx.Policy{Mode: mx.STSNone, MaxAge: 31557600 * time.Second}},
		{"empty", "", nil},
		{"wrong version", "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", nil},
		{"no version", "mode: enforce\nmx: a.example\nmax_age: 1\n", nil},
		{"no mode", "version: STSv1\nmx: a.example\nmax_age: 1\n", nil},
		{"bad mode", "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n", nil},
		{"no max_age", "version: STSv1\nmode: enforce\nmx: a.example\n", nil},
		{"max_age too big", "version: STSv1\nmode: none\nmax_age: 31557601\n", nil},
		{"max_age negative", "version: STSv1\nmode: none\nmax_age: -1\n", nil},
		{"max_age 11 digits", "version: STSv1\nmode: none\nmax_age: 00000000001\n", nil},
		{"enforce without mx", "version: STSv1\nmode: enforce\nmax_age: 1\n", nil},
		{"bad mx", "version: STSv1\nmode: enforce\nmx: a..example\nmax_age: 1\n", nil},
		{"wildcard inside", "version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 1\n", nil},
		{"U-label mx", "version: STSv1\nmode: enforce\nmx: bücher.example\nmax_age: 1\n", nil},
		{"blank line inside", "version: STSv1\n\nmode: none\nmax_age: 1\n", nil},
		{"no colon", "version STSv1\nmode: none\nmax_age: 1\n", nil},
		{"bad key", "version: STSv1\nmode: none\nmax_age: 1\n_x: y\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mx.ParsePolicy([]byte(tt.in))
			if tt.want == nil {
				if err == nil || !errors.Is(err, mx.ErrBadPolicy) {
					t.Fatalf("got %+v, %v; want ErrBadPolicy", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Mode != tt.want.Mode || got.MaxAge != tt.want.MaxAge || !slices.Equal(got.MX, tt.want.MX) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseSTSRecord(t *testing.T) {
	tests := []struct{ in, id string }{
		{"v=STSv1; id=20160831085700Z;", "20160831085700Z"},
		{"v=STSv1;id=abc", "abc"},
		{"v=STSv1; id=abc; ext=foo", "abc"},
		{"v=STSv1 ; id = abc ;", "abc"},
		{"v=STSv1; id=a; id=b", "a"},
		{"v=STSv1;", ""},
		{"v=STSv2; id=abc", ""},
		{"id=abc; v=STSv1", ""},
		{"v=STSv1; id=" + strings.Repeat("a", 33), ""},
		{"v=STSv1; id=a-b", ""},
		{"v=STSv1; ; id=a", ""},
	}
	for _, tt := range tests {
		id, err := mx.ParseSTSRecord(tt.in)
		if id != tt.id || (err == nil) != (tt.id != "") {
			t.Errorf("parseSTSRecord(%q) = %q, %v; want %q", tt.in, id, err, tt.id)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzParsePolicy.
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := mx.ParsePolicy(b)
		if err != nil {
			if p != nil || !errors.Is(err, mx.ErrBadPolicy) {
				t.Fatalf("error %v with policy %v", err, p)
			}
			return
		}
		if p.Mode != mx.STSEnforce && p.Mode != mx.STSTesting && p.Mode != mx.STSNone {
			t.Fatalf("mode %q", p.Mode)
		}
		if p.MaxAge < 0 || p.MaxAge > 31557600*time.Second {
			t.Fatalf("max_age %v", p.MaxAge)
		}
		for _, pat := range p.MX {
			if !p.Match(strings.Replace(pat, "*", "x", 1)) {
				t.Fatalf("policy does not match its own pattern %q", pat)
			}
		}
	})
}

func FuzzParseSTSRecord(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzParseSTSRecord.
	f.Fuzz(func(t *testing.T, s string) {
		id, err := mx.ParseSTSRecord(s)
		if (err == nil) == (id == "") {
			t.Fatalf("id %q with error %v", id, err)
		}
		if len(id) > 32 {
			t.Fatalf("id %q too long", id)
		}
	})
}

// toASCII's fast path must agree with the idna Lookup profile.
func FuzzToASCII(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzToASCII.
	f.Fuzz(func(t *testing.T, s string) {
		got, err := mx.ToASCII(s)
		want, werr := idna.Lookup.ToASCII(strings.TrimSuffix(s, "."))
		if err != nil {
			if !errors.Is(err, mx.ErrInvalidName) {
				t.Fatalf("ToASCII(%q): error %v is not ErrInvalidName", s, err)
			}
			return
		}
		if werr != nil || got != want {
			t.Fatalf("ToASCII(%q) = %q; idna gives %q, %v", s, got, want, werr)
		}
		if len(got) > 253 || strings.HasSuffix(got, ".") {
			t.Fatalf("ToASCII(%q) = %q", s, got)
		}
	})
}
