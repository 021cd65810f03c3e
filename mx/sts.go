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
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/mxrelay/mxrelay/mx/internal/dnsclient"
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
// A policy is cached for its max_age.
//
// When a TXT lookup or a fetch fails but a policy is cached and unexpired,
// that policy is returned with a nil error (RFC 8461 §5.1). Otherwise the
// error is returned with a nil policy; a sender then proceeds as if the
// domain had no policy (RFC 8461 §5), and may log the error.
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
	cached := r.sts.get(name)
	var valid *Policy
	if cached != nil && now.Before(cached.expires) {
		valid = cached.policy
	}

	e, err := r.lookup(ctx, cacheKey{name: name, kind: kindSTSTXT})
	if err == nil {
		err = e.err
	}
	if err != nil {
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
	if cached != nil && cached.failID == id && now.Before(cached.failUntil) {
		if valid != nil {
			return valid, nil
		}
		return nil, cached.failErr
	}

	pe, err := r.flight.do(ctx, cacheKey{name: name + "/" + id, kind: kindSTSPolicy}, func(ctx context.Context) *entry {
		p, err := r.fetchPolicy(ctx, name)
		if err != nil {
			r.debug("mx: MTA-STS policy fetch failed", "domain", name, "err", err)
			r.sts.fail(name, id, r.clock().Add(policyRetryWait), err)
			return &entry{err: err}
		}
		p.ID = id
		if p.MaxAge > 0 {
			r.sts.put(name, p, r.clock().Add(p.MaxAge))
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

func (r *Resolver) fetchSTSTXT(ctx context.Context, name string) *entry {
	fqdn := "_mta-sts." + name + "."
	a, err := r.resolve(ctx, fqdn, dnsclient.TypeTXT, false)
	if err != nil {
		return &entry{err: err}
	}
	e := &entry{}
	if len(a.recs) == 0 {
		if a.hasSOA {
			e.ttl = ttlOf(min(a.negTTL, a.ttl), r.maxNegTTL())
		}
		return e
	}
	e.ttl = ttlOf(a.ttl, r.maxTTL())
	for _, rec := range a.recs {
		e.txt = append(e.txt, rec.Text)
	}
	return e
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
			d := &net.Dialer{Timeout: 10 * time.Second, Control: refusePrivate}
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

// refusePrivate is a net.Dialer Control function that refuses addresses a
// policy host has no business resolving to. It runs after name resolution,
// so DNS rebinding cannot get around it.
func refusePrivate(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("mx: MTA-STS: dial %s: %w", address, err)
	}
	if !isPublic(ap.Addr()) {
		return fmt.Errorf("mx: MTA-STS: refusing to dial non-public address %s", ap.Addr())
	}
	return nil
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// isPublic reports whether a is a global unicast address outside the
// private, shared and special ranges.
func isPublic(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate() && !cgnat.Contains(a) &&
		!(a.Is4() && a.As4()[0] == 0)
}

// stsCache keeps fetched policies by domain, and the last failed fetch.
type stsCache struct {
	once sync.Once // builds Resolver.httpc
	mu   sync.RWMutex
	m    map[string]*stsEntry
	max  int
}

type stsEntry struct {
	policy  *Policy
	expires time.Time

	failID    string
	failUntil time.Time
	failErr   error
}

func (c *stsCache) get(name string) *stsEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[name]
}

func (c *stsCache) update(name string, f func(e *stsEntry)) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*stsEntry)
	}
	old := c.m[name]
	if old == nil && len(c.m) >= c.max {
		for k := range c.m { // drop an arbitrary entry
			delete(c.m, k)
			break
		}
	}
	e := &stsEntry{}
	if old != nil {
		*e = *old
	}
	f(e)
	c.m[name] = e // entries are replaced, never changed in place
}

func (c *stsCache) put(name string, p *Policy, expires time.Time) {
	c.update(name, func(e *stsEntry) { *e = stsEntry{policy: p, expires: expires} })
}

func (c *stsCache) fail(name, id string, until time.Time, err error) {
	c.update(name, func(e *stsEntry) { e.failID, e.failUntil, e.failErr = id, until, err })
}
