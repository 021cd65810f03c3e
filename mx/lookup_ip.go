package mx

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/mxrelay/mxrelay/mx/internal/dnsclient"
)

// LookupIP returns the addresses of host, A and AAAA queried in parallel.
// The order is set by r.IPPreference: by default every IPv4 address, then
// every IPv6 address, each family in the order the server gave. IPv4Only
// and IPv6Only make a single query.
//
// An IP literal is returned as it is. NXDOMAIN for every family asked gives
// ErrNoDomain, no address at all ErrNoRecords (both permanent). When one
// family fails temporarily and the other has addresses, those addresses are
// returned (and not cached); when neither has, the temporary error is.
//
// The returned slice is shared with the cache and must not be modified.
func (r *Resolver) LookupIP(ctx context.Context, host string) ([]netip.Addr, error) {
	ips, _, err := r.LookupIPSecure(ctx, host)
	return ips, err
}

// LookupIPSecure is LookupIP that also reports whether the answers were
// authenticated (the AD bit of every response). DANE (RFC 7672 §2.2.2)
// looks up TLSA records of a host only when its addresses are secure. An IP
// literal counts as authenticated. The AD bit is only trustworthy from a
// validating resolver on a trusted path.
func (r *Resolver) LookupIPSecure(ctx context.Context, host string) (ips []netip.Addr, authenticated bool, err error) {
	if err := r.init(); err != nil {
		return nil, false, err
	}
	if mayBeIP(host) {
		if a, err := netip.ParseAddr(host); err == nil {
			return []netip.Addr{a}, true, nil
		}
	}
	name, err := toASCII(host)
	if err != nil {
		return nil, false, err
	}
	e, err := r.lookup(ctx, cacheKey{name: name, kind: kindIP, arg: uint16(r.IPPreference)})
	if err != nil {
		return nil, false, &DNSError{Name: name + ".", Type: "A", Err: err, IsTimeout: errors.Is(err, context.DeadlineExceeded)}
	}
	if e.err != nil {
		return nil, false, e.err
	}
	return e.ips, e.ad, nil
}

// mayBeIP is a cheap test that rules out most host names before
// netip.ParseAddr, whose error would allocate on every cache hit.
func mayBeIP(s string) bool {
	return s != "" && ('0' <= s[len(s)-1] && s[len(s)-1] <= '9' || strings.IndexByte(s, ':') >= 0)
}

// family is the outcome of the lookup of one address family.
type family struct {
	addrs []netip.Addr
	ttl   time.Duration // positive TTL or negative TTL; 0 → not cacheable
	nx    bool
	err   error // temporary failure, or the permanent negative error
	neg   bool  // err is a cacheable negative answer
	ad    bool  // authenticated
}

func (r *Resolver) fetchIP(ctx context.Context, name string, pref IPPreference) *entry {
	fqdn := name + "."
	var v4, v6 family
	switch pref {
	case IPv4Only:
		v4 = r.family(ctx, fqdn, dnsclient.TypeA)
	case IPv6Only:
		v6 = r.family(ctx, fqdn, dnsclient.TypeAAAA)
	default:
		var wg sync.WaitGroup
		wg.Go(func() { v6 = r.family(ctx, fqdn, dnsclient.TypeAAAA) })
		v4 = r.family(ctx, fqdn, dnsclient.TypeA)
		wg.Wait()
	}
	var fams []*family
	switch pref {
	case IPv4Only:
		fams = []*family{&v4}
	case IPv6Only:
		fams = []*family{&v6}
	case PreferIPv6:
		fams = []*family{&v6, &v4}
	default:
		fams = []*family{&v4, &v6}
	}

	e := &entry{ttl: r.maxTTL(), ad: true}
	var tempErr, negErr error
	allNX := true
	for _, f := range fams {
		e.ips = append(e.ips, f.addrs...)
		e.ttl = min(e.ttl, f.ttl)
		e.ad = e.ad && f.ad
		switch {
		case f.err != nil && !f.neg:
			tempErr = f.err
			allNX = false
		case f.err != nil:
			negErr = f.err
			allNX = allNX && f.nx
		default:
			allNX = false
		}
	}
	if len(e.ips) > 0 {
		if tempErr != nil {
			e.ttl = 0
		}
		return e
	}
	switch {
	case tempErr != nil:
		return &entry{err: tempErr}
	case allNX:
		e.err = negErr
	default:
		e.err = &DNSError{Name: fqdn, Type: "A", Err: ErrNoRecords}
	}
	return e
}

// family looks up the addresses of one type (A or AAAA).
func (r *Resolver) family(ctx context.Context, fqdn string, qtype uint16) family {
	a, err := r.resolve(ctx, fqdn, qtype, false)
	if err != nil {
		return family{err: err}
	}
	if len(a.recs) == 0 {
		ne := r.negEntry(fqdn, qtype, a, a.ttl)
		return family{err: ne.err, neg: true, nx: a.nx, ttl: ne.ttl, ad: a.ad}
	}
	f := family{ttl: ttlOf(a.ttl, r.maxTTL()), ad: a.ad}
	for _, rec := range a.recs {
		f.addrs = append(f.addrs, rec.Addr)
	}
	return f
}
