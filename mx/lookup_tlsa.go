package mx

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/mxrelay/mxrelay/mx/internal/dnsclient"
)

// TLSA is one TLSA record (RFC 6698 §2.1), the DANE description of the
// certificate a TLS server must present.
type TLSA struct {
	Usage        uint8  // 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE (RFC 7218)
	Selector     uint8  // 0 full certificate, 1 SubjectPublicKeyInfo
	MatchingType uint8  // 0 exact, 1 SHA-256, 2 SHA-512
	Data         []byte // certificate association data
}

// String formats the record as in a zone file: "3 1 1 <hex>".
func (t TLSA) String() string {
	return fmt.Sprintf("%d %d %d %x", t.Usage, t.Selector, t.MatchingType, t.Data)
}

// LookupTLSA returns the TLSA records of _port._tcp.host (RFC 6698 §3,
// RFC 7672 §2.2) and whether the answer was authenticated: the AD bit of
// every response was set. The query sets EDNS0 DO and AD.
//
// The AD bit is only trustworthy from a validating resolver on a trusted
// path (the local host, or a network you control): the resolver itself
// validates nothing. DANE (RFC 7672) applies only when authenticated is
// true.
//
// No records (NODATA or NXDOMAIN) is not an error: records is nil and
// authenticated says whether that denial was authenticated. A failed lookup
// (SERVFAIL, which a validating resolver also returns for bogus data,
// timeouts) is a temporary error, never "no TLSA" (RFC 7672 §2.1.1).
//
// The returned slice is shared with the cache and must not be modified.
func (r *Resolver) LookupTLSA(ctx context.Context, host string, port int) (records []TLSA, authenticated bool, err error) {
	if err := r.init(); err != nil {
		return nil, false, err
	}
	if port <= 0 || port > 65535 {
		return nil, false, fmt.Errorf("mx: LookupTLSA: port %d out of range", port)
	}
	name, err := toASCII(host)
	if err != nil {
		return nil, false, err
	}
	e, err := r.lookup(ctx, cacheKey{name: name, kind: kindTLSA, arg: uint16(port)})
	if err != nil {
		return nil, false, &DNSError{Name: tlsaName(name, uint16(port)), Type: "TLSA", Err: err, IsTimeout: errors.Is(err, context.DeadlineExceeded)}
	}
	if e.err != nil {
		return nil, false, e.err
	}
	return e.tlsa, e.ad, nil
}

// tlsaName builds the query name after the host was converted to A-labels
// (idna would reject the underscore).
func tlsaName(name string, port uint16) string {
	return "_" + strconv.Itoa(int(port)) + "._tcp." + name + "."
}

func (r *Resolver) fetchTLSA(ctx context.Context, name string, port uint16) *entry {
	a, err := r.resolve(ctx, tlsaName(name, port), dnsclient.TypeTLSA, true)
	if err != nil {
		return &entry{err: err}
	}
	e := &entry{ad: a.ad}
	if len(a.recs) == 0 {
		if a.hasSOA {
			e.ttl = ttlOf(min(a.negTTL, a.ttl), r.maxNegTTL())
		}
		return e
	}
	e.ttl = ttlOf(a.ttl, r.maxTTL())
	for _, rec := range a.recs {
		e.tlsa = append(e.tlsa, TLSA{Usage: rec.Usage, Selector: rec.Selector, MatchingType: rec.MatchingType, Data: rec.Data})
	}
	return e
}
