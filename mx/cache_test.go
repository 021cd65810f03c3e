package mx_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
)

// fakeClock is a settable clock for cache tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClockedServer(t *testing.T, z mxtest.Zone) (*mxtest.Server, *mx.Resolver, *fakeClock) {
	srv, r := newServer(t, z)
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	mx.SetNow(r, clk.now)
	return srv, r, clk
}

func TestCacheTTL(t *testing.T) {
	srv, r, clk := newClockedServer(t, mxtest.Zone{
		"example.com": {TTL: 60, MX: []mx.MX{{Host: "mx1.example.com", Pref: 10}}},
	})
	ctx := context.Background()
	lookup := func() []mx.MX {
		t.Helper()
		got, err := r.LookupMX(ctx, "example.com")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	lookup()
	lookup()
	if n := srv.Count("example.com", "MX"); n != 1 {
		t.Fatalf("%d MX queries for two lookups within the TTL, want 1", n)
	}
	srv.Set("example.com", mxtest.Domain{TTL: 60, MX: []mx.MX{{Host: "mx9.example.com", Pref: 10}}})
	clk.advance(59 * time.Second)
	if got := lookup(); got[0].Host != "mx1.example.com" {
		t.Fatalf("within TTL got %v, want the cached answer", got)
	}
	clk.advance(time.Second)
	if got := lookup(); got[0].Host != "mx9.example.com" {
		t.Fatalf("after TTL got %v, want the new answer", got)
	}
	if n := srv.Count("example.com", "MX"); n != 2 {
		t.Fatalf("%d MX queries, want 2", n)
	}
}

func TestCacheMaxTTL(t *testing.T) {
	srv, r, clk := newClockedServer(t, mxtest.Zone{
		"example.com": {TTL: 86400 * 7, MX: []mx.MX{{Host: "mx1.example.com", Pref: 10}}},
	})
	r.MaxTTL = time.Hour
	ctx := context.Background()
	_, _ = r.LookupMX(ctx, "example.com")
	clk.advance(time.Hour)
	_, _ = r.LookupMX(ctx, "example.com")
	if n := srv.Count("example.com", "MX"); n != 2 {
		t.Fatalf("%d MX queries, want 2 (MaxTTL caps the TTL)", n)
	}
}

func TestNegativeCache(t *testing.T) {
	srv, r, clk := newClockedServer(t, mxtest.Zone{
		"nothing.example": {TTL: 300, TXT: []string{"x"}},
	})
	ctx := context.Background()

	// Without a negative TTL (SOA TTL 0) nothing is cached.
	for range 2 {
		if _, err := r.LookupMX(ctx, "nx.example"); !errors.Is(err, mx.ErrNoDomain) {
			t.Fatal(err)
		}
	}
	if n := srv.Count("nx.example", "MX"); n != 2 {
		t.Fatalf("%d queries, want 2", n)
	}

	srv.SetNegativeTTL(120)
	srv.ResetQueries()
	for _, name := range []string{"nx.example", "nothing.example"} {
		for range 3 {
			_, err := r.LookupMX(ctx, name)
			if !mx.IsPermanent(err) {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	if n := srv.Count("nx.example", "MX"); n != 1 {
		t.Fatalf("NXDOMAIN: %d queries, want 1", n)
	}
	if n := srv.Count("nothing.example", "MX") + srv.Count("nothing.example", "A"); n != 2 {
		t.Fatalf("no records: %d MX+A queries, want 2", n)
	}
	srv.Set("nx.example", mxtest.Domain{TTL: 300, MX: []mx.MX{{Host: "mx.example.com", Pref: 1}}})
	clk.advance(119 * time.Second)
	if _, err := r.LookupMX(ctx, "nx.example"); !errors.Is(err, mx.ErrNoDomain) {
		t.Fatalf("within negative TTL: %v", err)
	}
	clk.advance(time.Second)
	if _, err := r.LookupMX(ctx, "nx.example"); err != nil {
		t.Fatalf("after negative TTL: %v", err)
	}
}

// Temporary failures are not cached.
func TestTemporaryNotCached(t *testing.T) {
	srv, r := newServer(t, mxtest.Zone{
		"example.com": {TTL: 300, MX: []mx.MX{{Host: "mx1.example.com", Pref: 10}}},
	})
	srv.SetFaults(mxtest.Faults{ServFail: true})
	if _, err := r.LookupMX(context.Background(), "example.com"); err == nil || mx.IsPermanent(err) {
		t.Fatal(err)
	}
	srv.SetFaults(mxtest.Faults{})
	if _, err := r.LookupMX(context.Background(), "example.com"); err != nil {
		t.Fatal(err)
	}
}

func TestCacheBounded(t *testing.T) {
	z := mxtest.Zone{}
	for i := range 50 {
		z[fmt.Sprintf("d%d.example", i)] = mxtest.Domain{TTL: 300, MX: []mx.MX{{Host: "mx.example.com", Pref: 1}}}
	}
	_, r := newServer(t, z)
	r.CacheSize = 20
	for i := range 50 {
		if _, err := r.LookupMX(context.Background(), fmt.Sprintf("d%d.example", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := mx.CacheLen(r); n > 20 || n == 0 {
		t.Fatalf("cache holds %d entries, want 1..20", n)
	}
}

func TestCacheDisabled(t *testing.T) {
	srv, r := newServer(t, mxtest.Zone{
		"example.com": {TTL: 300, MX: []mx.MX{{Host: "mx1.example.com", Pref: 10}}},
	})
	r.CacheSize = -1
	for range 3 {
		if _, err := r.LookupMX(context.Background(), "example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Count("example.com", "MX"); n != 3 {
		t.Fatalf("%d queries, want 3", n)
	}
}

// N concurrent identical lookups make one query. TTL 0 keeps the cache out
// of it; the server holds its answer until every lookup is waiting.
func TestSingleflight(t *testing.T) {
	hold := make(chan struct{})
	srv, r := newServer(t, mxtest.Zone{
		"example.com": {MX: []mx.MX{{Host: "mx1.example.com", Pref: 10}}, Faults: mxtest.Faults{Hold: hold}},
	})
	r.Timeout = 10 * time.Second
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := r.LookupMX(context.Background(), "example.com")
			errs <- err
		})
	}
	for i := 0; mx.Waiting(r) < n; i++ {
		if i > 1000 {
			close(hold)
			t.Fatalf("only %d of %d lookups waiting", mx.Waiting(r), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(hold)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if q := srv.Count("example.com", "MX"); q != 1 {
		t.Fatalf("%d concurrent lookups made %d queries, want 1", n, q)
	}
}

// A leader whose context ends stops waiting; a caller that was waiting for
// it takes over with its own live context and gets the answer.
func TestSingleflightCancel(t *testing.T) {
	hold := make(chan struct{})
	srv, r := newServer(t, mxtest.Zone{
		"example.com": {MX: []mx.MX{{Host: "mx1.example.com", Pref: 10}}, Faults: mxtest.Faults{Hold: hold}},
	})
	r.Timeout = 10 * time.Second
	waitFor := func(n int) {
		for i := 0; mx.Waiting(r) < n; i++ {
			if i > 1000 {
				close(hold)
				t.Fatalf("only %d of %d lookups waiting", mx.Waiting(r), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.LookupMX(ctx, "example.com")
		done <- err
	}()
	waitFor(1) // the leader
	other := make(chan error, 1)
	go func() {
		_, err := r.LookupMX(context.Background(), "example.com")
		other <- err
	}()
	waitFor(2)
	cancel()
	if err := <-done; err == nil || !errors.Is(err, context.Canceled) || (err == nil || mx.IsPermanent(err)) {
		close(hold)
		t.Fatalf("cancelled lookup: %v, want a temporary error wrapping context.Canceled", err)
	}
	close(hold)
	if err := <-other; err != nil {
		t.Fatalf("other lookup: %v", err)
	}
	if n := srv.Count("example.com", "MX"); n != 2 {
		t.Fatalf("%d queries, want 2 (the waiter asks again)", n)
	}
}

func TestContextDeadline(t *testing.T) {
	_, r := newServer(t, mxtest.Zone{
		"drop.example": {Faults: mxtest.Faults{Drop: true}},
	})
	r.Timeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := r.LookupMX(ctx, "drop.example")
	var de *mx.DNSError
	if !errors.As(err, &de) || !de.Timeout() || (err == nil || mx.IsPermanent(err)) {
		t.Fatalf("got %v, want a temporary timeout", err)
	}
}

func TestCachedLookupDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	_, r := newServer(t, mxtest.Zone{
		"example.com":           {TTL: 300, MX: []mx.MX{{Host: "a.example.com", Pref: 10}, {Host: "b.example.com", Pref: 10}}},
		"host.example":          {TTL: 300, A: []string{"192.0.2.1"}, AAAA: []string{"2001:db8::1"}},
		"_25._tcp.host.example": {TTL: 300, TLSA: []mx.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: []byte{1, 2}}}},
	})
	ctx := context.Background()
	if _, err := r.LookupMX(ctx, "example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LookupIP(ctx, "host.example"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.LookupTLSA(ctx, "host.example", 25); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(){
		"LookupMX":   func() { _, _ = r.LookupMX(ctx, "example.com") },
		"LookupIP":   func() { _, _ = r.LookupIP(ctx, "host.example") },
		"LookupTLSA": func() { _, _, _ = r.LookupTLSA(ctx, "host.example", 25) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("cached %s: %v allocations, want 0", name, n)
		}
	}
}
