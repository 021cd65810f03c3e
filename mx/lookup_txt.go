package mx

import (
	"context"
	"errors"

	"github.com/mxrelay/mxrelay/mx/internal/dnsclient"
)

// LookupTXT returns the TXT records at name, one string per record, in the
// order of the answer. The character-strings of a record are joined without
// a separator (RFC 7208 §3.3, RFC 6376 §3.6.2.2), which is what SPF, DMARC
// and DKIM key records need; the octets are returned as they are, without
// presentation escapes.
//
// The name may begin with underscore labels ("_dmarc.example.com",
// "selector._domainkey.example.com"); the domain after them may be given
// in U-labels or A-labels and is converted with the IDNA Lookup profile.
// The trailing dot is optional. CNAMEs are followed.
//
// A name without TXT records is a permanent error, told apart from a failed
// lookup (as LookupMX and LookupIP do it):
//
//   - NXDOMAIN: a *DNSError wrapping ErrNoDomain.
//   - The name exists but has no TXT records (NODATA): a *DNSError wrapping
//     ErrNoRecords. A nil error therefore always comes with at least one
//     record.
//   - An empty or malformed name: a *NameError, wrapping ErrInvalidName.
//   - SERVFAIL, REFUSED, timeouts, a CNAME loop, the context ending, a bad
//     Resolver.Servers: a temporary *DNSError.
//
// Use IsPermanent to classify errors: for SPF (RFC 7208 §4.4) a permanent
// error means "none" and any other one "temperror"; for DKIM (RFC 6376
// §6.1.2) PERMFAIL "no key for signature" against TEMPFAIL. Every error is a
// *NameError or a *DNSError, and *DNSError implements net.Error with
// Temporary reporting !IsPermanent, so a Resolver can serve as
// go-msgauth's dkim.VerifyOptions.LookupTXT as it is:
//
//	opts := &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
//		return r.LookupTXT(ctx, name)
//	}}
//
// Positive answers are cached for their TTL, NXDOMAIN and NODATA for the
// SOA's negative TTL; failures are not cached.
//
// The returned slice is shared with the cache and must not be modified.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	n, err := toASCIIOwner(name)
	if err != nil {
		return nil, err
	}
	if err := r.init(); err != nil {
		return nil, &DNSError{Name: n + ".", Type: "TXT", Err: err}
	}
	e, err := r.lookup(ctx, cacheKey{name: n, kind: kindTXT})
	if err != nil {
		return nil, &DNSError{Name: n + ".", Type: "TXT", Err: err, IsTimeout: errors.Is(err, context.DeadlineExceeded)}
	}
	if e.err != nil {
		return nil, e.err
	}
	return e.txt, nil
}

// fetchTXT looks up the TXT records at fqdn (absolute, lower-case ASCII).
// No records is the cacheable negative error of negEntry: ErrNoDomain or
// ErrNoRecords.
func (r *Resolver) fetchTXT(ctx context.Context, fqdn string) *entry {
	a, err := r.resolve(ctx, fqdn, dnsclient.TypeTXT, false)
	if err != nil {
		return &entry{err: err}
	}
	if len(a.recs) == 0 {
		return r.negEntry(fqdn, dnsclient.TypeTXT, a, a.ttl)
	}
	e := &entry{ttl: ttlOf(a.ttl, r.maxTTL()), ad: a.ad, txt: make([]string, 0, len(a.recs))}
	for _, rec := range a.recs {
		e.txt = append(e.txt, rec.Text)
	}
	return e
}
