package mx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mxrelay/mxrelay/internal/netguard"
)

// Limits of policy fetching.
const (
	maxPolicySize   = 64 << 10         // RFC 8461 §3.3: senders may cap the body at 64 KB
	policyTimeout   = 30 * time.Second // for one fetch, within the caller's context
	policyRetryWait = 5 * time.Minute  // after a failed fetch, before fetching the same id again
)

// LookupSTS returns the MTA-STS policy of domain (RFC 8461), or nil when the
// domain has none.
//
// It looks up the TXT record of _mta-sts.<domain> (cached by its TTL). When
// the record's id differs from that of the cached policy, or no policy is
// cached, it fetches https://mta-sts.<domain>/.well-known/mta-sts.txt: no
// redirects, a valid certificate, at most 64 KB, text/plain, a 200 status.
// Unless HTTPClient or DialContext is set, the fetch refuses to connect to
// an address that is not globally reachable (loopback, private, link-local,
// NAT64 or 6to4 forms of those, and the other special-purpose ranges), so
// that a domain cannot aim the fetch at internal services.
//
// When a TXT lookup or a fetch fails but a policy is cached and unexpired,
// that policy is returned with a nil error (RFC 8461 §5.1). Otherwise the
// error is returned with a nil policy; a sender then proceeds as if the
// domain had no policy (RFC 8461 §5), and may log the error.
//
// Following RFC 8461 §5.1, a fetched policy (whatever its mode) is kept
// until its max_age runs out or a new policy for the domain replaces it: it
// is never evicted to make room, neither for other policies nor for
// failures, so lookups of many other domains cannot push out a policy in
// enforce mode and open the way to a downgrade. Policies have a memory
// budget of their own, large (64 MiB, well over a hundred thousand
// typical policies); when it is spent and dropping expired policies does
// not make room, a new policy is used but not cached. Failed fetches are
// remembered apart, for 5 minutes per TXT record id, in a bounded set that
// evicts freely: Resolver.CacheSize entries (DefaultCacheSize when 0). A
// negative CacheSize turns off that memory of failures, as it turns off
// the cache of DNS answers (the TXT record is then looked up every time),
// but never the memory of policies.
//
// The returned policy is shared with the cache and must not be modified.
func (r *Resolver) LookupSTS(ctx context.Context, domain string) (*Policy, error) {
	if err := r.init(); err != nil {
		return nil, err
	}
	name, err := toASCII(domain)
	if err != nil {
		return nil, err
	}
	now := r.clock()
	valid := r.sts.policy(name, now)

	e, err := r.lookup(ctx, cacheKey{name: name, kind: kindSTSTXT})
	if err == nil {
		err = e.err
	}
	if err != nil {
		// A permanent error is no TXT record at all (NXDOMAIN or
		// NODATA, from fetchTXT): no policy, unless one is cached.
		if valid != nil || IsPermanent(err) {
			return valid, nil
		}
		return nil, err
	}
	var recs []string
	for _, t := range e.txt {
		if isSTSRecord(t) {
			recs = append(recs, t)
		}
	}
	if len(recs) != 1 {
		// No record, or several: no policy (RFC 8461 §3.1), unless one
		// is cached.
		return valid, nil
	}
	id, err := parseSTSRecord(recs[0])
	if err != nil {
		if valid != nil {
			return valid, nil
		}
		return nil, err
	}
	if valid != nil && valid.ID == id {
		return valid, nil
	}
	if f := r.sts.failure(name, id, now); f != nil {
		if valid != nil {
			return valid, nil
		}
		return nil, f.err
	}

	pe, err := r.flight.do(ctx, cacheKey{name: name + "/" + id, kind: kindSTSPolicy}, func(ctx context.Context) *entry {
		p, err := r.fetchPolicy(ctx, name)
		if err != nil {
			r.debug("mx: MTA-STS policy fetch failed", "domain", name, "err", err)
			if ctx.Err() == nil { // not our own caller giving up
				r.sts.putFailure(name, id, r.clock(), err)
			}
			return &entry{err: err}
		}
		p.ID = strings.Clone(id) // not a substring holding on to the whole TXT record
		if p.MaxAge > 0 && !r.sts.putPolicy(name, p, r.clock()) {
			r.debug("mx: MTA-STS policy cache full, policy not cached", "domain", name)
		}
		return &entry{policy: p}
	})
	if err != nil { // our context ended
		if valid != nil {
			return valid, nil
		}
		return nil, err
	}
	if pe.err != nil {
		if valid != nil {
			return valid, nil
		}
		return nil, pe.err
	}
	return pe.policy, nil
}

// fetchPolicy gets and parses https://mta-sts.<name>/.well-known/mta-sts.txt.
func (r *Resolver) fetchPolicy(ctx context.Context, name string) (*Policy, error) {
	host := "mta-sts." + name
	if len(host) > maxNameLen {
		return nil, fmt.Errorf("mx: MTA-STS: policy host name too long")
	}
	ctx, cancel := context.WithTimeout(ctx, policyTimeout)
	defer cancel()
	url := "https://" + host + "/.well-known/mta-sts.txt"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("mx: MTA-STS: %w", err)
	}
	resp, err := r.stsClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("mx: MTA-STS: fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("mx: MTA-STS: fetching %s: status %s", url, resp.Status)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/plain" {
		return nil, fmt.Errorf("mx: MTA-STS: fetching %s: content type %q, want text/plain", url, resp.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("mx: MTA-STS: reading %s: %w", url, err)
	}
	if len(body) > maxPolicySize {
		return nil, fmt.Errorf("mx: MTA-STS: %s: policy larger than 64 KB", url)
	}
	p, err := ParsePolicy(body)
	if err != nil {
		return nil, fmt.Errorf("%w (from %s)", err, url)
	}
	return p, nil
}

// errRedirect refuses redirects (RFC 8461 §3.3).
var errRedirect = errors.New("mx: MTA-STS: redirects are not followed")

// stsClient returns the HTTP client for policy fetches: HTTPClient (with
// redirects refused) or a default one.
func (r *Resolver) stsClient() *http.Client {
	r.sts.once.Do(func() {
		if r.HTTPClient != nil {
			c := *r.HTTPClient
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return errRedirect }
			r.httpc = &c
			return
		}
		dial := r.DialContext
		if dial == nil {
			// The policy host is named by whoever controls the
			// recipient domain: netguard.Control refuses addresses that
			// are not globally reachable, after name resolution, so
			// that DNS rebinding cannot get round it.
			d := &net.Dialer{Timeout: 10 * time.Second, Control: netguard.Control, Resolver: r.sts.netResolver}
			dial = d.DialContext
		}
		r.httpc = &http.Client{
			Transport: &http.Transport{
				DialContext:           dial,
				TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
				TLSHandshakeTimeout:   10 * time.Second,
				ResponseHeaderTimeout: 20 * time.Second,
				MaxIdleConns:          16,
				IdleConnTimeout:       time.Minute,
				ForceAttemptHTTP2:     true,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return errRedirect },
		}
	})
	return r.httpc
}

// defaultPolicyMemory is the memory budget of cached policies, as counted
// by policyCost. It is meant never to be reached by honest traffic: a
// typical policy costs a few hundred bytes.
const defaultPolicyMemory = 64 << 20

// stsCache remembers fetched MTA-STS policies and failed fetches, in two
// budgets kept apart so that neither can push out the other (RFC 8461
// §5.1):
//
//   - policies holds every valid policy fetched, until its max_age runs out
//     or a new policy for the domain replaces it; an unexpired policy is
//     never evicted. Their memory is bounded by maxBytes: when a new policy
//     does not fit even after the expired ones are dropped, it is not
//     stored (LookupSTS still returns it), and a policy it would have
//     replaced is dropped, since it is no longer the domain's. An attacker
//     with many domains can so at worst keep new policies out, never push
//     one out that is already held.
//   - failures holds the last failed fetch of each domain, so that a
//     failing policy host is not asked again under the same id for
//     policyRetryWait. It is bounded by max entries and, when full, drops
//     expired and then arbitrary ones; max <= 0 → nothing is kept.
type stsCache struct {
	once        sync.Once     // builds Resolver.httpc
	netResolver *net.Resolver // resolves policy hosts for the default dialer; tests set it, nil → the system's

	mu       sync.RWMutex
	policies map[string]*stsPolicy
	bytes    int // policyCost summed over policies
	maxBytes int // 0 → defaultPolicyMemory; tests set it
	// sweepAfter is when the first of the policies expires, or earlier:
	// before then, looking for expired ones to drop is pointless.
	sweepAfter time.Time
	failures   map[string]*stsFailure
	max        int // bound of failures, set from Resolver.CacheSize by Resolver.init
}

// stsPolicy is a cached policy. Entries are replaced, never changed in
// place.
type stsPolicy struct {
	policy  *Policy
	expires time.Time
	cost    int
}

// stsFailure is a failed fetch of the policy for the TXT record id id,
// not to be tried again before until.
type stsFailure struct {
	id    string
	until time.Time
	err   error
}

// policyCost estimates, generously, the memory a cached policy holds: its
// strings, with a string header and allocation rounding for each pattern,
// and an allowance for the map entry and structs. It can count only what
// the policy holds: ParsePolicy copies the strings it keeps, so that a
// policy does not keep its whole (up to 64 KB) body alive.
func policyCost(name string, p *Policy) int {
	n := 256 + len(name) + len(p.ID)
	for _, m := range p.MX {
		n += 32 + len(m)
	}
	return n
}

// policy returns the cached policy of name if it is unexpired at now.
func (c *stsCache) policy(name string, now time.Time) *Policy {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e := c.policies[name]; e != nil && now.Before(e.expires) {
		return e.policy
	}
	return nil
}

// failure returns the failed fetch of name for id if it is still to be
// respected at now.
func (c *stsCache) failure(name, id string, now time.Time) *stsFailure {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if f := c.failures[name]; f != nil && f.id == id && now.Before(f.until) {
		return f
	}
	return nil
}

// putPolicy caches p, fetched at now, for its max_age, replacing any policy
// of name and forgetting a failure. It reports whether p fit in the budget.
func (c *stsCache) putPolicy(name string, p *Policy, now time.Time) bool {
	e := &stsPolicy{policy: p, expires: now.Add(p.MaxAge), cost: policyCost(name, p)}
	limit := c.maxBytes
	if limit <= 0 {
		limit = defaultPolicyMemory
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.failures, name)
	if old := c.policies[name]; old != nil {
		delete(c.policies, name)
		c.bytes -= old.cost
	}
	if c.bytes+e.cost > limit && !now.Before(c.sweepAfter) {
		c.dropExpired(now)
	}
	if c.bytes+e.cost > limit {
		return false
	}
	if c.policies == nil {
		c.policies = make(map[string]*stsPolicy)
	}
	if len(c.policies) == 0 || e.expires.Before(c.sweepAfter) {
		c.sweepAfter = e.expires
	}
	c.policies[name] = e
	c.bytes += e.cost
	return true
}

// dropExpired drops the policies expired at now and sets sweepAfter to the
// earliest expiry left. The caller holds c.mu.
func (c *stsCache) dropExpired(now time.Time) {
	c.sweepAfter = time.Time{}
	for k, e := range c.policies {
		if !now.Before(e.expires) {
			delete(c.policies, k)
			c.bytes -= e.cost
			continue
		}
		if c.sweepAfter.IsZero() || e.expires.Before(c.sweepAfter) {
			c.sweepAfter = e.expires
		}
	}
}

// putFailure remembers that fetching the policy of name under id failed at
// now with err. It never touches the policies.
func (c *stsCache) putFailure(name, id string, now time.Time, err error) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failures == nil {
		c.failures = make(map[string]*stsFailure)
	}
	if _, ok := c.failures[name]; !ok && len(c.failures) >= c.max {
		trim(c.failures, c.max, func(f *stsFailure) bool { return !now.Before(f.until) })
	}
	c.failures[name] = &stsFailure{id: id, until: now.Add(policyRetryWait), err: err}
}
