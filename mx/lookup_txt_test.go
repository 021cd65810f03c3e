package mx_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/miekg/dns"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
)

// A 2048-bit RSA key record: longer than 255 octets, so mxtest serves it as
// several character-strings.
var longKey = "v=DKIM1; k=rsa; p=" + strings.Repeat("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", 9)

func txtZone() mxtest.Zone {
	return mxtest.Zone{
		"example.com": {TTL: 300, A: []string{"192.0.2.1"}, TXT: []string{
			"v=spf1 ip4:192.0.2.0/24 -all", "google-site-verification=abc", "third",
		}},
		"_dmarc.example.com":                    {TTL: 300, TXT: []string{"v=DMARC1; p=reject"}},
		"sel._domainkey.example.com":            {TTL: 300, TXT: []string{longKey}},
		"alias._domainkey.example.com":          {TTL: 300, CNAME: "sel._domainkey.example.com"},
		"_dmarc.xn--bcher-kva.example":          {TTL: 300, TXT: []string{"v=DMARC1; p=none"}},
		"nodata.example":                        {TTL: 300, A: []string{"192.0.2.2"}},
		"dangling.example":                      {TTL: 300, CNAME: "gone.example"},
		"loop1.example":                         {TTL: 300, CNAME: "loop2.example"},
		"loop2.example":                         {TTL: 300, CNAME: "loop1.example"},
		"servfail.example":                      {TTL: 300, TXT: []string{"x"}, Faults: mxtest.Faults{ServFail: true}},
		"refused.example":                       {TTL: 300, TXT: []string{"x"}, Faults: mxtest.Faults{Refused: true}},
		"drop.example":                          {TTL: 300, TXT: []string{"x"}, Faults: mxtest.Faults{Drop: true}},
		"empty.example":                         {TTL: 300, TXT: []string{""}},
		"_spf.example.net":                      {TTL: 300, TXT: []string{"v=spf1 include:_spf.example.org ~all"}},
		"a_b._x.example.net":                    {TTL: 300, TXT: []string{"odd"}},
		"_25._tcp.mx.example.com":               {TTL: 300, TXT: []string{"not tlsa"}},
		"2024._domainkey.xn--bcher-kva.example": {TTL: 300, TXT: []string{"v=DKIM1; p=x"}},
	}
}

func TestLookupTXT(t *testing.T) {
	_, r := newServer(t, txtZone())
	r.Timeout = 200 * time.Millisecond
	tests := []struct {
		name string
		want []string
		err  error // errors.Is target; nil → success unless temp
		temp bool  // the error must be temporary
	}{
		{name: "example.com", want: []string{"v=spf1 ip4:192.0.2.0/24 -all", "google-site-verification=abc", "third"}},
		{name: "Example.COM.", want: []string{"v=spf1 ip4:192.0.2.0/24 -all", "google-site-verification=abc", "third"}},
		{name: "_dmarc.example.com", want: []string{"v=DMARC1; p=reject"}},
		{name: "_DMARC.Example.com.", want: []string{"v=DMARC1; p=reject"}},
		{name: "sel._domainkey.example.com", want: []string{longKey}},
		{name: "alias._domainkey.example.com", want: []string{longKey}},
		{name: "_dmarc.bücher.example", want: []string{"v=DMARC1; p=none"}},
		{name: "2024._domainkey.BÜCHER.example", want: []string{"v=DKIM1; p=x"}},
		{name: "_spf.example.net", want: []string{"v=spf1 include:_spf.example.org ~all"}},
		{name: "a_b._x.example.net", want: []string{"odd"}},
		{name: "_25._tcp.mx.example.com", want: []string{"not tlsa"}},
		{name: "empty.example", want: []string{""}},
		{name: "nx.example", err: mx.ErrNoDomain},
		{name: "_dmarc.nx.example", err: mx.ErrNoDomain},
		{name: "dangling.example", err: mx.ErrNoDomain},
		{name: "nodata.example", err: mx.ErrNoRecords},
		{name: "servfail.example", temp: true},
		{name: "refused.example", temp: true},
		{name: "drop.example", temp: true},
		{name: "loop1.example", err: mx.ErrCNAMELoop, temp: true},
		{name: "", err: mx.ErrInvalidName},
		{name: ".", err: mx.ErrInvalidName},
		{name: "a..example", err: mx.ErrInvalidName},
		{name: "_dmarc..example", err: mx.ErrInvalidName},
		{name: "_dmarc.example.com..", err: mx.ErrInvalidName},
		{name: "._dmarc.example.com", err: mx.ErrInvalidName},
		{name: "_dm arc.example.com", err: mx.ErrInvalidName},
		{name: "_dmärc.example.com", err: mx.ErrInvalidName},
		{name: "_dmarc.bad!.example", err: mx.ErrInvalidName},
		{name: "_dmarc.-lead.example", err: mx.ErrInvalidName},
		{name: "_" + strings.Repeat("a", 63) + ".example", err: mx.ErrInvalidName},
		{name: "_dmarc." + strings.Repeat("abcdefghi.", 25) + "example", err: mx.ErrInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.LookupTXT(context.Background(), tt.name)
			if tt.err == nil && !tt.temp {
				if err != nil || !slices.Equal(got, tt.want) {
					t.Fatalf("LookupTXT(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
				}
				return
			}
			if err == nil || got != nil {
				t.Fatalf("LookupTXT(%q) = %q, %v; want an error", tt.name, got, err)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("LookupTXT(%q) error %v, want %v", tt.name, err, tt.err)
			}
			if mx.IsPermanent(err) == tt.temp {
				t.Fatalf("LookupTXT(%q) error %v: permanent %v, want %v", tt.name, err, mx.IsPermanent(err), !tt.temp)
			}
			// What go-msgauth tests: err.(net.Error), without unwrapping.
			// (Temporary through an interface of our own: net.Error's is
			// deprecated, but go-msgauth still calls it.)
			_, isNetErr := err.(net.Error)
			if ne, ok := err.(temporary); isNetErr && ok && ne.Temporary() != tt.temp {
				t.Fatalf("LookupTXT(%q) error %v: Temporary() = %v, want %v", tt.name, err, ne.Temporary(), tt.temp)
			}
			if tt.temp && !isNetErr {
				t.Fatalf("LookupTXT(%q) error %T is not a net.Error", tt.name, err)
			}
			if !tt.temp && !errors.Is(err, mx.ErrInvalidName) {
				var de *mx.DNSError
				if !errors.As(err, &de) || de.Type != "TXT" {
					t.Fatalf("LookupTXT(%q) error %#v, want a TXT *DNSError", tt.name, err)
				}
			}
		})
	}
}

// txtServer serves TXT records as given (character-strings in miekg/dns
// presentation form, so "\\000" is a NUL octet) for every question.
func txtServer(t *testing.T, recs ...[]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		for _, txt := range recs {
			m.Answer = append(m.Answer, &dns.TXT{
				Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
				Txt: txt,
			})
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().String()
}

// Several character-strings in one record are joined without a separator;
// records come in answer order; octets are returned raw.
func TestLookupTXTMultiString(t *testing.T) {
	addr := txtServer(t,
		[]string{"v=spf1 ", "ip4:192.0.2.0/24 ", "-all"},
		[]string{"v=DKIM1; k=rsa; ", "p=MIIBIjAN", "BgkqhkiG9w0B"},
		[]string{"", ""},
		[]string{`quote \" backslash \\ semicolon ;`, `\000\255`},
		[]string{"z-last"},
	)
	r := &mx.Resolver{Servers: []string{addr}, Timeout: time.Second, Attempts: 1}
	got, err := r.LookupTXT(context.Background(), "example.com")
	want := []string{
		"v=spf1 ip4:192.0.2.0/24 -all",
		"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0B",
		"",
		"quote \" backslash \\ semicolon ;\x00\xff",
		"z-last",
	}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

// Answers are cached for their TTL, NXDOMAIN and NODATA for the negative
// TTL; failures are not cached.
func TestLookupTXTCache(t *testing.T) {
	srv, r, clk := newClockedServer(t, mxtest.Zone{
		"_dmarc.example.com": {TTL: 60, TXT: []string{"v=DMARC1; p=reject"}},
		"nodata.example":     {TTL: 60, A: []string{"192.0.2.1"}},
		"servfail.example":   {TTL: 60, TXT: []string{"x"}, Faults: mxtest.Faults{ServFail: true}},
	})
	srv.SetNegativeTTL(30)
	ctx := context.Background()
	lookup := func(name string) ([]string, error) {
		t.Helper()
		return r.LookupTXT(ctx, name)
	}
	for range 3 {
		if got, err := lookup("_dmarc.example.com"); err != nil || len(got) != 1 {
			t.Fatalf("got %q, %v", got, err)
		}
		if _, err := lookup("_DMARC.example.com."); err != nil { // the same cache key
			t.Fatal(err)
		}
		if _, err := lookup("nodata.example"); !errors.Is(err, mx.ErrNoRecords) {
			t.Fatalf("nodata: %v", err)
		}
		if _, err := lookup("nx.example"); !errors.Is(err, mx.ErrNoDomain) {
			t.Fatalf("nx: %v", err)
		}
		if _, err := lookup("servfail.example"); err == nil || mx.IsPermanent(err) {
			t.Fatalf("servfail: %v", err)
		}
	}
	for _, c := range []struct {
		name string
		want int
	}{{"_dmarc.example.com", 1}, {"nodata.example", 1}, {"nx.example", 1}, {"servfail.example", 3}} {
		if n := srv.Count(c.name, "TXT"); n != c.want {
			t.Errorf("%s: %d TXT queries, want %d", c.name, n, c.want)
		}
	}

	// The negative answers expire first, then the record.
	srv.Set("nx.example", mxtest.Domain{TTL: 60, TXT: []string{"now here"}})
	clk.advance(30 * time.Second)
	if got, err := lookup("nx.example"); err != nil || !slices.Equal(got, []string{"now here"}) {
		t.Fatalf("after the negative TTL: %q, %v", got, err)
	}
	srv.Set("_dmarc.example.com", mxtest.Domain{TTL: 60, TXT: []string{"v=DMARC1; p=none"}})
	if got, _ := lookup("_dmarc.example.com"); got[0] != "v=DMARC1; p=reject" {
		t.Fatalf("within the TTL: %q, want the cached answer", got)
	}
	clk.advance(30 * time.Second)
	if got, _ := lookup("_dmarc.example.com"); got[0] != "v=DMARC1; p=none" {
		t.Fatalf("after the TTL: %q, want the new answer", got)
	}
}

// A lookup under a context already cancelled asks nothing and fails
// temporarily; a cached answer is still returned.
func TestLookupTXTCancelled(t *testing.T) {
	srv, r := newServer(t, mxtest.Zone{
		"cached.example": {TTL: 300, TXT: []string{"v=spf1 -all"}},
		"other.example":  {TTL: 300, TXT: []string{"v=spf1 -all"}},
	})
	if _, err := r.LookupTXT(context.Background(), "cached.example"); err != nil {
		t.Fatal(err)
	}
	srv.ResetQueries()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err := r.LookupTXT(ctx, "other.example")
	if got != nil || !errors.Is(err, context.Canceled) || mx.IsPermanent(err) {
		t.Fatalf("got %q, %v; want a temporary context.Canceled", got, err)
	}
	if ne, ok := err.(temporary); !ok || !isNetError(err) || !ne.Temporary() {
		t.Fatalf("error %T %v: not a temporary net.Error", err, err)
	}
	if n := srv.Queries(); n != 0 {
		t.Fatalf("%d queries under a cancelled context", n)
	}
	if got, err := r.LookupTXT(ctx, "cached.example"); err != nil || len(got) != 1 {
		t.Fatalf("cached: %q, %v", got, err)
	}
}

// A deadline that runs out while the server keeps quiet is a timeout.
func TestLookupTXTDeadline(t *testing.T) {
	_, r := newServer(t, mxtest.Zone{"drop.example": {Faults: mxtest.Faults{Drop: true}}})
	r.Timeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := r.LookupTXT(ctx, "drop.example")
	var de *mx.DNSError
	if !errors.As(err, &de) || !de.Timeout() || mx.IsPermanent(err) {
		t.Fatalf("got %v, want a temporary timeout", err)
	}
}

// A bad Resolver.Servers is a temporary *DNSError, like the others a DKIM
// verifier must not take for "no key".
func TestLookupTXTBadServer(t *testing.T) {
	r := &mx.Resolver{Servers: []string{"not-an-address"}}
	_, err := r.LookupTXT(context.Background(), "example.com")
	var de *mx.DNSError
	if !errors.Is(err, mx.ErrBadServer) || !errors.As(err, &de) || !de.Temporary() {
		t.Fatalf("got %v, want a temporary *DNSError wrapping ErrBadServer", err)
	}
}

// LookupSTS shares the TXT fetching; LookupTXT of the same name is a lookup
// of its own.
func TestLookupTXTBesideSTS(t *testing.T) {
	srv, r := newServer(t, mxtest.Zone{
		"_mta-sts.example.com": {TTL: 300, TXT: []string{"v=STSv1; id=1;"}},
	})
	got, err := r.LookupTXT(context.Background(), "_mta-sts.example.com")
	if err != nil || !slices.Equal(got, []string{"v=STSv1; id=1;"}) {
		t.Fatalf("got %q, %v", got, err)
	}
	if n := srv.Count("_mta-sts.example.com", "TXT"); n != 1 {
		t.Fatalf("%d queries", n)
	}
}

func TestLookupTXTCachedDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	_, r := newServer(t, mxtest.Zone{
		"example.com":                {TTL: 300, TXT: []string{"v=spf1 -all"}},
		"_dmarc.example.com":         {TTL: 300, TXT: []string{"v=DMARC1; p=reject"}},
		"sel._domainkey.example.com": {TTL: 300, TXT: []string{longKey}},
	})
	ctx := context.Background()
	for _, name := range []string{"example.com", "_dmarc.example.com", "sel._domainkey.example.com."} {
		if _, err := r.LookupTXT(ctx, name); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { _, _ = r.LookupTXT(ctx, name) }); n != 0 {
			t.Errorf("cached LookupTXT(%q): %v allocations, want 0", name, n)
		}
	}
}

func TestToASCIIOwner(t *testing.T) {
	tests := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"Example.COM.", "example.com"},
		{"_dmarc.example.com", "_dmarc.example.com"},
		{"_DMARC.Example.Com.", "_dmarc.example.com"},
		{"sel._domainkey.bücher.example", "sel._domainkey.xn--bcher-kva.example"},
		{"Sél._domainkey.example.com", "xn--sl-bja._domainkey.example.com"},
		{"_25._tcp.mx.example.com", "_25._tcp.mx.example.com"},
		{"a_b.example", "a_b.example"},
		{"_", "_"},
		{"_x.", "_x"},
	}
	for _, tt := range tests {
		got, err := mx.ToASCIIOwner(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ToASCIIOwner(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// go-msgauth's DKIM verifier with LookupTXT as its lookup: a key record
// split into character-strings verifies; a failing server is TEMPFAIL, a
// missing key PERMFAIL (RFC 6376 §6.1.2).
func TestLookupTXTDKIM(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	record := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	if len(record) <= 255 {
		t.Fatalf("key record of %d octets: want one that needs several strings", len(record))
	}
	srv, r := newServer(t, mxtest.Zone{
		"sel._domainkey.example.com": {TTL: 300, TXT: []string{record}},
	})
	sign := func(selector string) []byte {
		t.Helper()
		msg := "From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
		var out bytes.Buffer
		err := dkim.Sign(&out, strings.NewReader(msg), &dkim.SignOptions{
			Domain: "example.com", Selector: selector, Signer: key,
			HeaderKeys: []string{"From", "To", "Subject"},
		})
		if err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	verify := func(msg []byte) error {
		t.Helper()
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{
			LookupTXT: func(name string) ([]string, error) { return r.LookupTXT(context.Background(), name) },
		})
		if err != nil || len(vs) != 1 {
			t.Fatalf("verify: %v, %d verifications", err, len(vs))
		}
		return vs[0].Err
	}

	signed := sign("sel")
	if err := verify(signed); err != nil {
		t.Fatalf("valid signature: %v", err)
	}
	if err := verify(sign("missing")); !dkim.IsPermFail(err) {
		t.Fatalf("missing key: %v, want PERMFAIL", err)
	}
	srv.Update("sel._domainkey.example.com", func(d *mxtest.Domain) { d.TTL, d.ServFail = 0, true })
	r2 := srv.Resolver()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(signed), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) { return r2.LookupTXT(context.Background(), name) },
	})
	if err != nil || len(vs) != 1 || !dkim.IsTempFail(vs[0].Err) {
		t.Fatalf("SERVFAIL: %v, %+v; want TEMPFAIL", err, vs)
	}
}

// toASCIIOwner agrees with toASCII on names without underscores, and its
// results are final: converting them again changes nothing. (Invalid UTF-8
// is left out of the second check: idna, hence toASCII, maps it to U+FFFD,
// whose A-label does not convert back.)
func FuzzToASCIIOwner(f *testing.F) {
	for _, s := range []string{"_dmarc.example.com", "Sel._domainkey.Bücher.example.", "a_b..c", "_", "_x.-y", "ＥＸ._a.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := mx.ToASCIIOwner(s)
		if !strings.Contains(s, "_") {
			want, werr := mx.ToASCII(s)
			if got != want || (err == nil) != (werr == nil) {
				t.Fatalf("ToASCIIOwner(%q) = %q, %v; ToASCII gives %q, %v", s, got, err, want, werr)
			}
		}
		if err != nil {
			if !errors.Is(err, mx.ErrInvalidName) {
				t.Fatalf("ToASCIIOwner(%q): error %v is not ErrInvalidName", s, err)
			}
			return
		}
		if got == "" || len(got) > 253 || strings.HasSuffix(got, ".") {
			t.Fatalf("ToASCIIOwner(%q) = %q", s, got)
		}
		if !utf8.ValidString(s) {
			return
		}
		if again, err := mx.ToASCIIOwner(got); err != nil || again != got {
			t.Fatalf("ToASCIIOwner(%q) = %q, but ToASCIIOwner(%q) = %q, %v", s, got, got, again, err)
		}
	})
}

// temporary is the method go-msgauth asks of a net.Error.
type temporary interface{ Temporary() bool }

func isNetError(err error) bool {
	_, ok := err.(net.Error)
	return ok
}
