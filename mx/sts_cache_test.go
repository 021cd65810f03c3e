package mx_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// errAttackerHost is what fetches from the flooding domains' policy hosts
// fail with.
var errAttackerHost = errors.New("attacker policy host does not answer")

// newFloodSetup serves example.com's enforce policy and n attacker domains
// a<i>.example.net: the even ones publish an _mta-sts record whose policy
// fetch fails at once, the odd ones publish none.
func newFloodSetup(t *testing.T, n int) (*mxtest.Server, *policyServer, *mx.Resolver) {
	z := mxtest.Zone{"_mta-sts.example.com": {TTL: 300, TXT: []string{"v=STSv1; id=1;"}}}
	for i := 0; i < n; i += 2 {
		z[fmt.Sprintf("_mta-sts.a%d.example.net", i)] = mxtest.Domain{TTL: 300, TXT: []string{"v=STSv1; id=1;"}}
	}
	srv, r, _ := newClockedServer(t, z)
	ps := newPolicyServer(t, enforcePolicy)
	victim := ps.client().Transport
	r.HTTPClient = &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Host == "mta-sts.example.com" {
			return victim.RoundTrip(req)
		}
		return nil, errAttackerHost
	})}
	return srv, ps, r
}

func lookupEnforce(t *testing.T, r *mx.Resolver, when string) {
	t.Helper()
	p, err := r.LookupSTS(context.Background(), "example.com")
	if err != nil || p == nil || p.Mode != mx.STSEnforce || p.ID != "1" {
		t.Fatalf("%s: LookupSTS(example.com) = %+v, %v; want the enforce policy", when, p, err)
	}
}

// RFC 8461 §5.1: an unexpired policy is kept until it expires or a new one
// replaces it. Lookups for thousands of other domains, whose fetches fail
// or which have no policy, fill the bounded caches but must not push it
// out: if they did, an attacker who then blocks the policy host could make
// mail for example.com go out in plaintext.
func TestLookupSTSFloodKeepsPolicy(t *testing.T) {
	const n = 2000
	srv, ps, r := newFloodSetup(t, n)
	r.CacheSize = 100 // a small failure budget, overrun ten times
	lookupEnforce(t, r, "first lookup")
	ctx := context.Background()
	for i := range n {
		d := fmt.Sprintf("a%d.example.net", i)
		p, err := r.LookupSTS(ctx, d)
		if p != nil || (i%2 == 0) != errors.Is(err, errAttackerHost) {
			t.Fatalf("LookupSTS(%s) = %v, %v", d, p, err)
		}
	}
	// The attacker now blocks the policy host.
	ps.set(func(ps *policyServer) { ps.status = http.StatusServiceUnavailable })
	lookupEnforce(t, r, "after the flood")
	if n := ps.count(); n != 1 {
		t.Fatalf("%d policy fetches for example.com, want 1", n)
	}
	// And DNS too.
	srv.SetFaults(mxtest.Faults{ServFail: true})
	lookupEnforce(t, r, "after the flood, DNS failing")
}

// A negative CacheSize turns off the caching of lookups and of failures,
// but not the memory of policies (RFC 8461 §5.1).
func TestLookupSTSNoCacheKeepsPolicy(t *testing.T) {
	srv, ps, r := newFloodSetup(t, 2)
	r.CacheSize = -1
	lookupEnforce(t, r, "first lookup")
	lookupEnforce(t, r, "second lookup")
	if n := ps.count(); n != 1 {
		t.Fatalf("%d policy fetches, want 1: the policy was not kept", n)
	}
	if n := srv.Count("_mta-sts.example.com.", "TXT"); n != 2 {
		t.Errorf("%d TXT queries, want 2: the TXT record was cached", n)
	}
	// A new id whose fetch fails, then the policy host down: the policy
	// still holds.
	srv.Set("_mta-sts.example.com", mxtest.Domain{TXT: []string{"v=STSv1; id=2;"}})
	ps.set(func(ps *policyServer) { ps.status = http.StatusServiceUnavailable })
	lookupEnforce(t, r, "failed refetch")
	lookupEnforce(t, r, "failed refetch again")
	if n := ps.count(); n != 3 {
		t.Errorf("%d policy fetches, want 3: the failure was cached", n)
	}
}

// policyHosts answers every policy fetch with enforcePolicy, without TLS,
// counting fetches by host; a host in down answers 503.
type policyHosts struct {
	mu      sync.Mutex
	fetches map[string]int
	down    bool
}

func (h *policyHosts) RoundTrip(req *http.Request) (*http.Response, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fetches[req.URL.Host]++
	resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"text/plain"}},
		Body: io.NopCloser(strings.NewReader(enforcePolicy)), Request: req}
	if h.down {
		resp.StatusCode, resp.Body = http.StatusServiceUnavailable, http.NoBody
	}
	return resp, nil
}

func (h *policyHosts) count(domain string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fetches["mta-sts."+domain]
}

// When the memory budget of policies is spent, a new policy is returned but
// not cached, and the policies already cached stay; expired ones make room.
func TestLookupSTSPolicyBudget(t *testing.T) {
	z := mxtest.Zone{"_mta-sts.example.com": {TTL: 300, TXT: []string{"v=STSv1; id=1;"}}}
	for i := range 3 {
		z[fmt.Sprintf("_mta-sts.d%d.example.net", i)] = mxtest.Domain{TTL: 300, TXT: []string{"v=STSv1; id=1;"}}
	}
	_, r, clk := newClockedServer(t, z)
	hosts := &policyHosts{fetches: map[string]int{}}
	r.HTTPClient = &http.Client{Transport: hosts}
	p, err := mx.ParsePolicy([]byte(enforcePolicy))
	if err != nil {
		t.Fatal(err)
	}
	p.ID = "1"
	mx.SetPolicyMemory(r, mx.PolicyCost("example.com", p)+mx.PolicyCost("d0.example.net", p)+10)
	ctx := context.Background()
	lookup := func(d string, wantFetches int) {
		t.Helper()
		p, err := r.LookupSTS(ctx, d)
		if err != nil || p == nil || p.Mode != mx.STSEnforce {
			t.Fatalf("LookupSTS(%s) = %+v, %v; want the enforce policy", d, p, err)
		}
		if n := hosts.count(d); n != wantFetches {
			t.Fatalf("%s: %d fetches, want %d", d, n, wantFetches)
		}
	}
	lookup("example.com", 1)
	lookup("d0.example.net", 1)
	lookup("d1.example.net", 1) // over budget: returned, not cached
	lookup("d1.example.net", 2)
	lookup("example.com", 1)
	lookup("d0.example.net", 1)
	// The policy hosts go down: the cached policies hold, d1 has none.
	hosts.mu.Lock()
	hosts.down = true
	hosts.mu.Unlock()
	lookup("example.com", 1)
	lookup("d0.example.net", 1)
	if p, err := r.LookupSTS(ctx, "d1.example.net"); p != nil || err == nil {
		t.Fatalf("d1.example.net with its host down: %v, %v; want an error", p, err)
	}
	// Once the cached policies expire, d2's policy takes their place.
	hosts.mu.Lock()
	hosts.down = false
	hosts.mu.Unlock()
	clk.advance(24 * time.Hour)
	lookup("d2.example.net", 1)
	lookup("d2.example.net", 1)
}

// A parsed policy keeps nothing of its body: cached policies would
// otherwise hold up to 64 KB each, whatever the cache counts for them.
func TestParsePolicyDoesNotKeepBody(t *testing.T) {
	body := enforcePolicy + "x-padding: " + strings.Repeat("y", 60000) + "\n"
	const n = 1000
	keep := make([]*mx.Policy, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range keep {
		p, err := mx.ParsePolicy([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		keep[i] = p
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 8<<20 {
		t.Fatalf("%d parsed policies hold %d bytes", n, grown)
	}
	runtime.KeepAlive(keep)
}
