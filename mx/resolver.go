package mx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/mxrelay/mxrelay/mx/internal/dnsclient"
)

// Defaults for the zero Resolver.
const (
	DefaultTimeout        = 2 * time.Second
	DefaultAttempts       = 2
	DefaultCacheSize      = 10000
	DefaultMaxTTL         = 24 * time.Hour
	DefaultMaxNegativeTTL = time.Hour
)

// resolvConf is where the system's nameservers are listed.
const resolvConf = "/etc/resolv.conf"

// DefaultResolver is the resolver used when a caller has none (relay.Client
// with a nil Resolver). It reads /etc/resolv.conf on first use.
var DefaultResolver = &Resolver{}

// Resolver looks up where mail for a domain goes. Its zero value is ready to
// use: it asks the nameservers of /etc/resolv.conf and caches answers.
//
// A Resolver is safe for concurrent use. Its fields must not be changed after
// the first lookup, and it must not be copied after first use.
//
// The AD (authenticated data) bit that LookupTLSA reports is only as
// trustworthy as the path to the servers: use a validating resolver on the
// same host (127.0.0.1) or reached over a trusted network. The resolver does
// no DNSSEC validation of its own.
type Resolver struct {
	// Servers are recursive nameservers, "ip:port" ("[::1]:53") or a bare
	// IP (port 53), tried in order. Empty → the nameservers of
	// /etc/resolv.conf, read once on first use.
	Servers []string

	// Timeout bounds one exchange with one server: the UDP query and, for
	// a truncated answer, the TCP query each get this long. 0 →
	// DefaultTimeout (2 s). Every lookup is also bounded by its context.
	Timeout time.Duration

	// Attempts is how many rounds over Servers one query makes before it
	// fails. 0 → DefaultAttempts (2).
	Attempts int

	// CacheSize bounds the number of cached DNS lookups and of remembered
	// MTA-STS fetch failures. 0 → DefaultCacheSize; negative → neither is
	// cached (concurrent identical lookups still collapse into one query).
	// Valid MTA-STS policies are never subject to it: RFC 8461 §5.1 wants
	// an unexpired policy kept until it expires or is replaced, so they
	// have their own memory budget and are kept whatever CacheSize says.
	CacheSize int

	// MaxTTL caps how long a positive answer is cached, whatever its TTL.
	// 0 → DefaultMaxTTL (24 h).
	MaxTTL time.Duration

	// MaxNegativeTTL caps how long a negative answer (NXDOMAIN, no records)
	// is cached; RFC 2308 §5 negative TTLs come from the zone's SOA, and
	// answers without an SOA are not cached. 0 → DefaultMaxNegativeTTL (1 h).
	MaxNegativeTTL time.Duration

	// IPPreference orders and filters the addresses of LookupIP.
	// The zero value, PreferIPv4, gives IPv4 addresses first.
	IPPreference IPPreference

	// HTTPClient fetches MTA-STS policies. nil → a client built on
	// DialContext. Whatever the client, redirects are never followed
	// (RFC 8461 §3.3) and the certificate must be valid for
	// mta-sts.<domain>: give a client whose transport verifies it.
	HTTPClient *http.Client

	// DialContext dials for the default MTA-STS HTTP client (ignored when
	// HTTPClient is set). nil → a net.Dialer that refuses every address the
	// IANA special-purpose registries mark as not globally reachable
	// (loopback, private, link-local, NAT64 and 6to4 forms embedding them,
	// documentation and reserved ranges...), since the policy host is named
	// by whoever controls the recipient domain. A DialContext or HTTPClient
	// of the caller's replaces that guard.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// Logger receives debug records about failed queries and policy
	// fetches. nil → silent.
	Logger *slog.Logger

	once    sync.Once
	initErr error
	client  exchanger
	cache   cache
	flight  flight
	sts     stsCache
	httpc   *http.Client
	now     func() time.Time // tests set it; nil → time.Now
}

// exchanger is the whole of what mx needs from a DNS transport.
type exchanger interface {
	Exchange(ctx context.Context, q dnsclient.Query) (*dnsclient.Response, error)
}

// IPPreference says which address families LookupIP returns, in which
// order.
type IPPreference uint8

const (
	PreferIPv4 IPPreference = iota // IPv4 addresses, then IPv6 (the zero value)
	PreferIPv6                     // IPv6 addresses, then IPv4
	IPv4Only                       // IPv4 addresses only (no AAAA query)
	IPv6Only                       // IPv6 addresses only (no A query)
)

func (r *Resolver) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

func (r *Resolver) init() error {
	r.once.Do(func() {
		r.cache.max = r.CacheSize
		if r.cache.max == 0 {
			r.cache.max = DefaultCacheSize
		}
		r.sts.max = r.cache.max
		if r.client != nil { // set by tests
			return
		}
		servers, err := parseServers(r.Servers)
		if err != nil {
			r.initErr = err
			return
		}
		timeout := r.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		attempts := r.Attempts
		if attempts <= 0 {
			attempts = DefaultAttempts
		}
		r.client = &dnsclient.Client{Servers: servers, Timeout: timeout, Attempts: attempts}
	})
	return r.initErr
}

func parseServers(list []string) ([]string, error) {
	if len(list) == 0 {
		s, err := dnsclient.SystemServers(resolvConf)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadServer, err)
		}
		return s, nil
	}
	out := make([]string, 0, len(list))
	for _, s := range list {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			if ap.Port() == 0 {
				return nil, fmt.Errorf("%w: %q: port 0", ErrBadServer, s)
			}
			out = append(out, ap.String())
			continue
		}
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			out = append(out, netip.AddrPortFrom(a, 53).String())
			continue
		}
		return nil, fmt.Errorf("%w: %q: want ip:port", ErrBadServer, s)
	}
	return out, nil
}

func (r *Resolver) maxTTL() time.Duration {
	if r.MaxTTL > 0 {
		return r.MaxTTL
	}
	return DefaultMaxTTL
}

func (r *Resolver) maxNegTTL() time.Duration {
	if r.MaxNegativeTTL > 0 {
		return r.MaxNegativeTTL
	}
	return DefaultMaxNegativeTTL
}

func (r *Resolver) debug(msg string, args ...any) {
	if r.Logger != nil {
		r.Logger.Debug(msg, args...)
	}
}

// Maximum CNAME hops followed for one lookup, and queries made for it.
const (
	maxCNAMEHops = 8
	maxQueries   = 4
)

// answer is the outcome of a lookup with its CNAME chain followed.
type answer struct {
	recs   []dnsclient.Record // records of the asked type at the end of the chain
	ttl    uint32             // minimum TTL over recs and the CNAMEs followed
	nx     bool               // the (final) name does not exist
	negTTL uint32             // negative TTL, when hasSOA
	hasSOA bool
	ad     bool // every response was authenticated
}

// resolve asks for qtype at fqdn (absolute, lower-case ASCII) and follows a
// CNAME chain, first inside the answer, then with new queries when a
// resolver left the chain unfinished, up to maxCNAMEHops.
func (r *Resolver) resolve(ctx context.Context, fqdn string, qtype uint16, dnssec bool) (answer, error) {
	a := answer{ttl: math.MaxUint32, ad: true}
	cur, hops := fqdn, 0
	for range maxQueries {
		asked := cur
		resp, err := r.client.Exchange(ctx, dnsclient.Query{Name: cur, Type: qtype, DNSSEC: dnssec})
		if err != nil {
			return a, r.queryError(fqdn, qtype, err)
		}
		a.ad = a.ad && resp.Authenticated
		for {
			found := false
			for _, rec := range resp.Answer {
				if rec.Type == qtype && rec.Name == cur {
					a.recs = append(a.recs, rec)
					a.ttl = min(a.ttl, rec.TTL)
					found = true
				}
			}
			if found {
				return a, nil
			}
			next := ""
			for _, rec := range resp.Answer {
				if rec.Type == dnsclient.TypeCNAME && rec.Name == cur {
					next, a.ttl = rec.Target, min(a.ttl, rec.TTL)
					break
				}
			}
			if next == "" {
				break
			}
			if hops++; hops > maxCNAMEHops {
				return a, &DNSError{Name: fqdn, Type: dnsclient.TypeString(qtype), Server: resp.Server, Err: ErrCNAMELoop}
			}
			cur = next
		}
		if cur == asked || resp.Rcode == dnsclient.RcodeNXDomain {
			// No records and no (further) CNAME: NODATA or NXDOMAIN
			// for the end of the chain (RFC 2308 §2).
			a.nx = resp.Rcode == dnsclient.RcodeNXDomain
			a.negTTL, a.hasSOA = resp.NegTTL, resp.HasSOA
			return a, nil
		}
		// The chain stops at a name the answer says nothing about: ask
		// for it.
	}
	return a, &DNSError{Name: fqdn, Type: dnsclient.TypeString(qtype), Err: ErrCNAMELoop}
}

// queryError turns a transport failure into a *DNSError.
func (r *Resolver) queryError(fqdn string, qtype uint16, err error) error {
	e := &DNSError{Name: fqdn, Type: dnsclient.TypeString(qtype)}
	var de *dnsclient.Error
	switch {
	case errors.As(err, &de):
		e.Server = de.Server
		e.IsTimeout = de.Timeout()
		if de.Err != nil {
			e.Err = de.Err
		} else {
			e.Rcode = dnsclient.RcodeString(de.Rcode)
		}
	default:
		e.Err = err
		e.IsTimeout = errors.Is(err, context.DeadlineExceeded)
	}
	r.debug("mx: query failed", "name", fqdn, "type", e.Type, "server", e.Server, "rcode", e.Rcode, "err", e.Err)
	return e
}

// negEntry is a cached permanent failure: NXDOMAIN or no records.
func (r *Resolver) negEntry(fqdn string, qtype uint16, a answer, ttl uint32) *entry {
	cause := ErrNoRecords
	rcode := ""
	if a.nx {
		cause, rcode = ErrNoDomain, "NXDOMAIN"
	}
	e := &entry{err: &DNSError{Name: fqdn, Type: dnsclient.TypeString(qtype), Rcode: rcode, Err: cause}}
	if a.hasSOA {
		e.ttl = ttlOf(min(a.negTTL, ttl), r.maxNegTTL())
	}
	return e
}
