package mx_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
)

// policyServer serves MTA-STS policies over TLS with the httptest
// certificate, which is valid for example.com and *.example.com.
type policyServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    string
	ctype   string
	status  int
	fetches int
	host    string
}

func newPolicyServer(t *testing.T, body string) *policyServer {
	ps := &policyServer{body: body, ctype: "text/plain; charset=utf-8", status: 200}
	ps.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		ps.fetches++
		ps.host = r.Host
		if r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		if ps.status == http.StatusFound {
			http.Redirect(w, r, "https://mta-sts.example.com/elsewhere", ps.status)
			return
		}
		w.Header().Set("Content-Type", ps.ctype)
		w.WriteHeader(ps.status)
		_, _ = w.Write([]byte(ps.body))
	}))
	ps.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected
	ps.StartTLS()
	t.Cleanup(ps.Close)
	return ps
}

func (ps *policyServer) set(f func(ps *policyServer)) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	f(ps)
}

func (ps *policyServer) count() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.fetches
}

// client returns an HTTP client that trusts the test certificate and dials
// the test server whatever the host name.
func (ps *policyServer) client() *http.Client {
	tr := ps.Client().Transport.(*http.Transport).Clone()
	addr := ps.Listener.Addr().String()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr}
}

const enforcePolicy = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.mail.example.com\r\nmax_age: 86400\r\n"

func newSTSSetup(t *testing.T) (*mxtest.Server, *policyServer, *mx.Resolver, *fakeClock) {
	srv, r, clk := newClockedServer(t, mxtest.Zone{
		"_mta-sts.example.com":       {TXT: []string{"v=STSv1; id=20260101T000000;"}},
		"_mta-sts.example.org":       {TXT: []string{"v=STSv1; id=1;"}},
		"_mta-sts.two.example.com":   {TXT: []string{"v=STSv1; id=1;", "v=STSv1; id=2;"}},
		"_mta-sts.other.example.com": {TXT: []string{"v=spf1 -all", "v=STSv1;id=abc"}},
		"_mta-sts.badid.example.com": {TXT: []string{"v=STSv1; id=not-alnum!;"}},
		"nopolicy.example.com":       {TXT: []string{"x"}},
	})
	ps := newPolicyServer(t, enforcePolicy)
	r.HTTPClient = ps.client()
	return srv, ps, r, clk
}

func TestLookupSTS(t *testing.T) {
	_, ps, r, _ := newSTSSetup(t)
	ctx := context.Background()
	p, err := r.LookupSTS(ctx, "example.com")
	if err != nil || p == nil {
		t.Fatalf("LookupSTS: %v, %v", p, err)
	}
	if p.Mode != mx.STSEnforce || p.MaxAge != 24*time.Hour || p.ID != "20260101T000000" || len(p.MX) != 2 {
		t.Fatalf("policy %+v", p)
	}
	if ps.host != "mta-sts.example.com" {
		t.Errorf("Host %q, want mta-sts.example.com", ps.host)
	}
	for host, want := range map[string]bool{
		"mx1.example.com": true, "MX1.Example.COM.": true, "a.mail.example.com": true,
		"mail.example.com": false, "a.b.mail.example.com": false, "mx2.example.com": false, "": false,
	} {
		if got := p.Match(host); got != want {
			t.Errorf("Match(%q) = %v, want %v", host, got, want)
		}
	}
	// Cached: no second fetch.
	if _, err := r.LookupSTS(ctx, "example.com"); err != nil || ps.count() != 1 {
		t.Fatalf("second lookup: %v, %d fetches", err, ps.count())
	}
	// Other record sets: several STS records, none valid → no policy.
	for _, d := range []string{"two.example.com", "nopolicy.example.com", "nx.example.com"} {
		if p, err := r.LookupSTS(ctx, d); p != nil || err != nil {
			t.Errorf("%s: %v, %v; want no policy", d, p, err)
		}
	}
	if _, err := r.LookupSTS(ctx, "badid.example.com"); !errors.Is(err, mx.ErrBadPolicy) {
		t.Errorf("bad id: %v, want ErrBadPolicy", err)
	}
	// Non-STS TXT records are discarded; "v=STSv1;id=abc" is the one, and
	// a fetch is tried (it fails: the certificate does not cover
	// mta-sts.other.example.com).
	if p, err := r.LookupSTS(ctx, "other.example.com"); p != nil || err == nil || !strings.Contains(err.Error(), "fetching") {
		t.Errorf("other.example.com: %v, %v; want a fetch error", p, err)
	}
}

func TestLookupSTSRefetch(t *testing.T) {
	srv, ps, r, clk := newSTSSetup(t)
	ctx := context.Background()
	if _, err := r.LookupSTS(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	// New id → refetch.
	srv.Set("_mta-sts.example.com", mxtest.Domain{TXT: []string{"v=STSv1; id=2;"}})
	ps.set(func(ps *policyServer) { ps.body = strings.Replace(enforcePolicy, "enforce", "testing", 1) })
	p, err := r.LookupSTS(ctx, "example.com")
	if err != nil || p.Mode != mx.STSTesting || p.ID != "2" || ps.count() != 2 {
		t.Fatalf("after id change: %+v, %v, %d fetches", p, err, ps.count())
	}
	// max_age expiry → refetch.
	clk.advance(24*time.Hour - time.Second)
	if _, err := r.LookupSTS(ctx, "example.com"); err != nil || ps.count() != 2 {
		t.Fatalf("within max_age: %v, %d fetches", err, ps.count())
	}
	clk.advance(time.Second)
	if _, err := r.LookupSTS(ctx, "example.com"); err != nil || ps.count() != 3 {
		t.Fatalf("after max_age: %v, %d fetches", err, ps.count())
	}
	// A failed fetch for a new id keeps the cached policy.
	srv.Set("_mta-sts.example.com", mxtest.Domain{TXT: []string{"v=STSv1; id=3;"}})
	ps.set(func(ps *policyServer) { ps.status = 500 })
	p, err = r.LookupSTS(ctx, "example.com")
	if err != nil || p == nil || p.ID != "2" {
		t.Fatalf("failed refetch: %+v, %v; want the cached policy", p, err)
	}
	// The TXT record disappearing keeps it too, while it is valid.
	srv.Delete("_mta-sts.example.com")
	if p, err := r.LookupSTS(ctx, "example.com"); err != nil || p == nil {
		t.Fatalf("record gone: %v, %v", p, err)
	}
	// DNS failing keeps it.
	srv.SetFaults(mxtest.Faults{ServFail: true})
	if p, err := r.LookupSTS(ctx, "example.com"); err != nil || p == nil {
		t.Fatalf("DNS failing: %v, %v", p, err)
	}
}

func TestLookupSTSFetchErrors(t *testing.T) {
	big := enforcePolicy + "x: " + strings.Repeat("y", 70000) + "\n"
	tests := []struct {
		name string
		set  func(ps *policyServer)
	}{
		{"oversize", func(ps *policyServer) { ps.body = big }},
		{"redirect", func(ps *policyServer) { ps.status = http.StatusFound }},
		{"not found", func(ps *policyServer) { ps.status = http.StatusNotFound }},
		{"content type", func(ps *policyServer) { ps.ctype = "text/html" }},
		{"bad policy", func(ps *policyServer) { ps.body = "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ps, r, _ := newSTSSetup(t)
			ps.set(tt.set)
			p, err := r.LookupSTS(context.Background(), "example.com")
			if p != nil || err == nil || !strings.HasPrefix(err.Error(), "mx: ") {
				t.Fatalf("got %v, %v; want no policy and an mx: error", p, err)
			}
			// The failure is remembered for a while: no refetch at once.
			_, _ = r.LookupSTS(context.Background(), "example.com")
			if n := ps.count(); n != 1 {
				t.Fatalf("%d fetches, want 1", n)
			}
		})
	}
}

// The httptest certificate is not valid for mta-sts.example.org.
func TestLookupSTSBadCertificate(t *testing.T) {
	_, ps, r, _ := newSTSSetup(t)
	p, err := r.LookupSTS(context.Background(), "example.org")
	if p != nil || err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("got %v, %v; want a certificate error", p, err)
	}
	if ps.count() != 0 {
		t.Fatalf("the request reached the server")
	}
	// And a client that does not trust the test CA.
	r2 := &mx.Resolver{Servers: r.Servers, HTTPClient: &http.Client{Transport: &http.Transport{
		DialContext: ps.client().Transport.(*http.Transport).DialContext,
	}}}
	if p, err := r2.LookupSTS(context.Background(), "example.com"); p != nil || err == nil {
		t.Fatalf("untrusted CA: %v, %v", p, err)
	}
}
