package mx

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/mxrelay/mxrelay/mx/internal/dnsclient"
)

// MX is one mail exchanger of a domain.
type MX struct {
	Host string // A-label host name, lower case, without the trailing dot
	Pref uint16 // preference: lower is tried first
}

// maxOrders bounds how many orders of equal-preference hosts a cache entry
// keeps (4! = 24: every order of up to four equal hosts).
const maxOrders = 24

// maxHosts bounds the MX hosts kept from one answer (the most preferred).
const maxHosts = 128

// LookupMX returns the mail exchangers of domain, by preference, in random
// order among equal preferences (RFC 5321 §5.1).
//
// The domain may be given in U-labels or A-labels, with or without the
// trailing dot; it is converted with the IDNA Lookup profile first.
//
//   - No MX records, but A or AAAA records: the domain itself, preference 0
//     (the implicit MX of RFC 5321 §5.1).
//   - "MX 0 ." (RFC 7505): ErrNullMX, with no fallback to addresses.
//   - NXDOMAIN: ErrNoDomain. Neither MX nor addresses: ErrNoRecords.
//   - SERVFAIL, REFUSED, timeouts: a temporary *DNSError, never the implicit
//     MX.
//   - MX targets that are IP literals or not host names are skipped; if
//     none is left, ErrNoUsableMX (temporary).
//
// Errors are *DNSError or *NameError; use IsPermanent to classify them.
//
// The returned slice is shared with the cache and must not be modified
// (slices.Clone it first); this is what lets a cache hit be free of
// allocations.
func (r *Resolver) LookupMX(ctx context.Context, domain string) ([]MX, error) {
	mxs, _, err := r.LookupMXSecure(ctx, domain)
	return mxs, err
}

// LookupMXSecure is LookupMX that also reports whether the answer was
// authenticated (the AD bit of every response involved, including the
// address lookup of an implicit MX). DANE (RFC 7672 §2.2.1) uses the MX
// host names as reference identifiers only when this is true. The same
// caveat as for LookupTLSA applies: the AD bit is only trustworthy from a
// validating resolver on a trusted path.
func (r *Resolver) LookupMXSecure(ctx context.Context, domain string) (mxs []MX, authenticated bool, err error) {
	if err := r.init(); err != nil {
		return nil, false, err
	}
	name, err := toASCII(domain)
	if err != nil {
		return nil, false, err
	}
	e, err := r.lookup(ctx, cacheKey{name: name, kind: kindMX})
	if err != nil {
		return nil, false, &DNSError{Name: name + ".", Type: "MX", Err: err, IsTimeout: errors.Is(err, context.DeadlineExceeded)}
	}
	if e.err != nil {
		return nil, false, e.err
	}
	if len(e.mx) == 1 {
		return e.mx[0], e.ad, nil
	}
	return e.mx[rand.IntN(len(e.mx))], e.ad, nil
}

func (r *Resolver) fetchMX(ctx context.Context, name string) *entry {
	fqdn := name + "."
	a, err := r.resolve(ctx, fqdn, dnsclient.TypeMX, false)
	if err != nil {
		return &entry{err: err}
	}
	if a.nx {
		return r.negEntry(fqdn, dnsclient.TypeMX, a, a.ttl)
	}
	if len(a.recs) == 0 {
		return r.implicitMX(ctx, name, a)
	}

	// RFC 7505 §3: a null MX is a single record "0 ."; receivers that see
	// "." among other records ignore it, and so do we.
	hosts := make([]MX, 0, len(a.recs))
	null := false
	for _, rec := range a.recs {
		if rec.Target == "." {
			null = true
			continue
		}
		if h := hostFromTarget(rec.Target); h != "" {
			hosts = append(hosts, MX{Host: h, Pref: rec.Pref})
		}
	}
	slices.SortFunc(hosts, func(a, b MX) int {
		return cmp.Or(cmp.Compare(a.Pref, b.Pref), strings.Compare(a.Host, b.Host))
	})
	hosts = slices.Compact(hosts)
	if len(hosts) > maxHosts {
		hosts = hosts[:maxHosts]
	}
	ttl := ttlOf(a.ttl, r.maxTTL())
	if null && len(a.recs) == 1 {
		return &entry{err: &DNSError{Name: fqdn, Type: "MX", Err: ErrNullMX}, ttl: ttl}
	}
	if len(hosts) == 0 {
		if null {
			return &entry{err: &DNSError{Name: fqdn, Type: "MX", Err: ErrNullMX}, ttl: ttl}
		}
		return &entry{err: &DNSError{Name: fqdn, Type: "MX", Err: ErrNoUsableMX}}
	}
	return &entry{mx: orderings(hosts), ttl: ttl, ad: a.ad}
}

// implicitMX applies RFC 5321 §5.1 to a domain without MX records: the
// domain is its own mail exchanger if it has an address.
func (r *Resolver) implicitMX(ctx context.Context, name string, mxa answer) *entry {
	ipe, err := r.lookup(ctx, cacheKey{name: name, kind: kindIP, arg: uint16(r.IPPreference)})
	if err != nil {
		return &entry{err: err}
	}
	// The MX answer's negative TTL bounds the result; without an SOA it is
	// not cached (RFC 2308 §5).
	ttl := ipe.ttl
	if !ipe.expires.IsZero() {
		ttl = min(ttl, ipe.expires.Sub(r.clock()))
	}
	if !mxa.hasSOA {
		ttl = 0
	}
	ttl = min(ttl, ttlOf(min(mxa.negTTL, mxa.ttl), r.maxNegTTL()))
	if ipe.err != nil {
		if IsPermanent(ipe.err) {
			return &entry{err: &DNSError{Name: name + ".", Type: "MX", Err: ErrNoRecords}, ttl: ttl}
		}
		return &entry{err: ipe.err}
	}
	return &entry{mx: [][]MX{{{Host: name, Pref: 0}}}, ttl: ttl, ad: mxa.ad && ipe.ad}
}

// orderings returns orders of hosts (sorted by preference) that differ only
// among equal preferences: all of them when there are at most maxOrders,
// otherwise maxOrders random ones. Picking one at random per lookup gives
// the shuffle RFC 5321 §5.1 asks for without allocating on a cache hit.
func orderings(hosts []MX) [][]MX {
	type group struct{ start, end int }
	var groups []group
	total := 1
	for i := 0; i < len(hosts); {
		j := i + 1
		for j < len(hosts) && hosts[j].Pref == hosts[i].Pref {
			j++
		}
		if j-i > 1 {
			groups = append(groups, group{i, j})
			for k := 2; k <= j-i && total <= maxOrders; k++ {
				total *= k
			}
		}
		i = j
	}
	n := len(hosts)
	if len(groups) == 0 {
		return [][]MX{hosts[:n:n]}
	}
	if total > maxOrders {
		out := make([][]MX, maxOrders)
		for i := range out {
			o := slices.Clone(hosts)
			for _, g := range groups {
				s := o[g.start:g.end]
				rand.Shuffle(len(s), func(a, b int) { s[a], s[b] = s[b], s[a] })
			}
			out[i] = o[:n:n]
		}
		return out
	}
	out := [][]MX{slices.Clone(hosts)}
	for _, g := range groups {
		var next [][]MX
		for _, o := range out {
			permute(o[g.start:g.end], 0, func() { next = append(next, slices.Clone(o)) })
		}
		out = next
	}
	for i, o := range out {
		out[i] = o[:n:n]
	}
	return out
}

// permute calls emit once for every order of s[k:], permuting s in place
// and restoring it.
func permute(s []MX, k int, emit func()) {
	if k >= len(s)-1 {
		emit()
		return
	}
	for i := k; i < len(s); i++ {
		s[k], s[i] = s[i], s[k]
		permute(s, k+1, emit)
		s[k], s[i] = s[i], s[k]
	}
}
