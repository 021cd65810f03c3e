package mx

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mxrelay/mxrelay/mx/internal/dnsclient"
)

// LookupPTR returns the names the PTR records of addr give (its reverse
// DNS), lower case and without the trailing dot, in the order of the
// answer. Errors are as for LookupTXT: no PTR records is a permanent
// *DNSError wrapping ErrNoDomain or ErrNoRecords; a failed lookup is
// temporary. Answers are cached as LookupTXT's are.
//
// The names are what the address's owner claims; a check of a host's
// identity (forward-confirmed reverse DNS) also looks each name up with
// LookupIP and requires addr among its addresses.
func (r *Resolver) LookupPTR(ctx context.Context, addr netip.Addr) ([]string, error) {
	if !addr.IsValid() {
		return nil, &NameError{Name: addr.String(), Reason: "invalid address"}
	}
	name := ReverseName(addr.Unmap())
	if err := r.init(); err != nil {
		return nil, &DNSError{Name: name + ".", Type: "PTR", Err: err}
	}
	e, err := r.lookup(ctx, cacheKey{name: name, kind: kindPTR})
	if err != nil {
		return nil, &DNSError{Name: name + ".", Type: "PTR", Err: err, IsTimeout: errors.Is(err, context.DeadlineExceeded)}
	}
	if e.err != nil {
		return nil, e.err
	}
	return e.txt, nil
}

// ReverseName is the in-addr.arpa (RFC 1035 §3.5) or ip6.arpa (RFC 3596
// §2.5) name of addr, without the trailing dot: where its PTR records
// are. An IPv4-mapped IPv6 address gives its IPv4 address's name.
func ReverseName(addr netip.Addr) string {
	addr = addr.Unmap() // ::ffff:192.0.2.1 is 192.0.2.1
	var b strings.Builder
	if addr.Is4() {
		a := addr.As4()
		for i := 3; i >= 0; i-- {
			b.WriteString(strconv.Itoa(int(a[i])))
			b.WriteByte('.')
		}
		b.WriteString("in-addr.arpa")
		return b.String()
	}
	const hex = "0123456789abcdef"
	a := addr.As16()
	for i := 15; i >= 0; i-- {
		b.WriteByte(hex[a[i]&0xf])
		b.WriteByte('.')
		b.WriteByte(hex[a[i]>>4])
		b.WriteByte('.')
	}
	b.WriteString("ip6.arpa")
	return b.String()
}

// fetchPTR looks up the PTR records at fqdn (absolute, lower case).
func (r *Resolver) fetchPTR(ctx context.Context, fqdn string) *entry {
	a, err := r.resolve(ctx, fqdn, dnsclient.TypePTR, false)
	if err != nil {
		return &entry{err: err}
	}
	if len(a.recs) == 0 {
		return r.negEntry(fqdn, dnsclient.TypePTR, a, a.ttl)
	}
	e := &entry{ttl: ttlOf(a.ttl, r.maxTTL()), ad: a.ad, txt: make([]string, 0, len(a.recs))}
	for _, rec := range a.recs {
		e.txt = append(e.txt, strings.TrimSuffix(rec.Target, "."))
	}
	return e
}
