package preflight

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/idna"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mx"
)

// ErrInvalidConfig: Check was given a nil Config, or one it cannot check
// (no Domain, no Resolver, a Source without an address, a key without a
// selector...). The error names the field.
var ErrInvalidConfig = errors.New("preflight: invalid config")

// TLSPolicy is the TLS policy mail is sent under, as far as the bulk-sender
// rules care: whether messages may travel in plaintext.
type TLSPolicy int

const (
	// TLSOpportunistic: STARTTLS whenever the receiver offers it,
	// plaintext otherwise (relay.Client's default). The zero value.
	TLSOpportunistic TLSPolicy = iota
	// TLSRequired: never send in plaintext.
	TLSRequired
	// TLSNone: never use TLS.
	TLSNone
)

// String returns "opportunistic", "required" or "none".
func (p TLSPolicy) String() string {
	switch p {
	case TLSOpportunistic:
		return "opportunistic"
	case TLSRequired:
		return "required"
	case TLSNone:
		return "none"
	}
	return fmt.Sprintf("TLSPolicy(%d)", int(p))
}

// Config describes how a domain sends mail, for Check to hold against the
// DNS.
type Config struct {
	// Domain is the From domain being checked, in U-labels or A-labels.
	// Required.
	Domain string
	// Resolver asks the DNS. Required: preflight reads the zone the way
	// receivers will, through the resolver the caller trusts (tests give
	// one from mx/mxtest).
	Resolver *mx.Resolver
	// Sources are the addresses mail leaves from, each with the EHLO name
	// used from it. Empty → SPF authorisation and reverse DNS are not
	// checked (a "config.no-sources" finding says so).
	Sources []Source
	// Hostname is the EHLO name of a Source that has none.
	Hostname string
	// Keys are the DKIM keys mail is signed with, from
	// (*dkim.Signer).Keys(). Empty → mail is unsigned, an error. A key
	// with an empty Domain signs for Domain.
	Keys []dkim.SigningKey
	// BounceDomain is the envelope (return-path) domain; VERP return
	// paths live under it. "" → Domain.
	BounceDomain string
	// ListMail says the domain sends list or bulk mail: the DMARC
	// requirements tighten and the bulk-sender rules apply.
	ListMail bool
	// ListUnsubscribe says one-click unsubscribe (RFC 8058) is configured
	// for list mail.
	ListUnsubscribe bool
	// TLS is the TLS policy in force. The zero value is
	// TLSOpportunistic.
	TLS TLSPolicy
	// Now stamps Report.Checked. nil → time.Now.
	Now func() time.Time
}

// Source is an address mail leaves from and the name it gives in EHLO.
type Source struct {
	Addr     netip.Addr // the sending address, as receivers see it
	Hostname string     // EHLO name from it; "" → Config.Hostname
}

// resolver is what the checks ask of an *mx.Resolver.
type resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, domain string) ([]mx.MX, error)
	LookupIP(ctx context.Context, host string) ([]netip.Addr, error)
	LookupPTR(ctx context.Context, addr netip.Addr) ([]string, error)
}

// source is a Source with its EHLO name settled.
type source struct {
	addr netip.Addr
	ehlo string // as configured, "" when neither Source nor Config has one
}

// key is a SigningKey with its domain settled.
type key struct {
	domain, selector string
	pub              any // *rsa.PublicKey or ed25519.PublicKey
}

// checker runs the checks of one Check call and collects their findings
// and the outcomes later checks build on.
type checker struct {
	r        resolver
	cfg      *Config
	domain   string // From domain, A-labels, lower case
	envelope string // envelope domain, A-labels, lower case
	sources  []source
	keys     []key
	findings []Finding

	spf   map[string]*spfState // by domain
	dkim  []dkimState          // by key
	dmarc dmarcState
}

// Check reads the DNS setup of c.Domain and returns what it found: SPF,
// DKIM, DMARC, reverse DNS and EHLO names, MX for replies and bounces,
// and, for list mail, the bulk-sender rules. The package documentation
// lists every check.
//
// A nil or unusable Config gives an error wrapping ErrInvalidConfig. DNS
// failures are findings, never errors: a SERVFAIL or timeout is a Warning
// that the check could not be made. If ctx ends before the checks do,
// Check returns an error wrapping ctx.Err().
func Check(ctx context.Context, c *Config) (*Report, error) {
	ck, err := newChecker(c)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	ck.checkConfig()
	ck.checkSPF(ctx)
	ck.checkDKIM(ctx)
	ck.checkDMARC(ctx)
	ck.checkReverseDNS(ctx)
	ck.checkReturnPath(ctx)
	ck.checkBulk()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("preflight: %w", err)
	}
	return &Report{Domain: ck.domain, Checked: now().UTC(), Findings: ck.findings}, nil
}

// newChecker validates c.
func newChecker(c *Config) (*checker, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil Config", ErrInvalidConfig)
	}
	if c.Resolver == nil {
		return nil, fmt.Errorf("%w: no Resolver", ErrInvalidConfig)
	}
	if c.Domain == "" {
		return nil, fmt.Errorf("%w: no Domain", ErrInvalidConfig)
	}
	ck := &checker{r: c.Resolver, cfg: c, spf: map[string]*spfState{}}
	var err error
	if ck.domain, err = domainName(c.Domain); err != nil {
		return nil, fmt.Errorf("%w: Domain: %w", ErrInvalidConfig, err)
	}
	ck.envelope = ck.domain
	if c.BounceDomain != "" {
		if ck.envelope, err = domainName(c.BounceDomain); err != nil {
			return nil, fmt.Errorf("%w: BounceDomain: %w", ErrInvalidConfig, err)
		}
	}
	if hasControl(c.Hostname) {
		return nil, fmt.Errorf("%w: Hostname %q has control characters", ErrInvalidConfig, c.Hostname)
	}
	switch c.TLS {
	case TLSOpportunistic, TLSRequired, TLSNone:
	default:
		return nil, fmt.Errorf("%w: TLS: %v", ErrInvalidConfig, c.TLS)
	}
	for i, s := range c.Sources {
		if !s.Addr.IsValid() {
			return nil, fmt.Errorf("%w: Sources[%d] has no address", ErrInvalidConfig, i)
		}
		if hasControl(s.Hostname) {
			return nil, fmt.Errorf("%w: Sources[%d].Hostname %q has control characters", ErrInvalidConfig, i, s.Hostname)
		}
		ehlo := s.Hostname
		if ehlo == "" {
			ehlo = c.Hostname
		}
		ck.sources = append(ck.sources, source{addr: s.Addr.Unmap().WithZone(""), ehlo: ehlo})
	}
	for i, k := range c.Keys {
		kk := key{domain: ck.domain, selector: strings.ToLower(strings.TrimSuffix(k.Selector, "."))}
		if k.Domain != "" {
			if kk.domain, err = domainName(k.Domain); err != nil {
				return nil, fmt.Errorf("%w: Keys[%d].Domain: %w", ErrInvalidConfig, i, err)
			}
		}
		if kk.selector == "" || hasControl(kk.selector) || strings.ContainsAny(kk.selector, " ;") {
			return nil, fmt.Errorf("%w: Keys[%d] has no valid Selector (%q)", ErrInvalidConfig, i, k.Selector)
		}
		switch p := k.Public.(type) {
		case *rsa.PublicKey:
			if p == nil || p.N == nil {
				return nil, fmt.Errorf("%w: Keys[%d] has an empty RSA key", ErrInvalidConfig, i)
			}
			kk.pub = p
		case ed25519.PublicKey:
			if len(p) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("%w: Keys[%d] has an Ed25519 key of %d bytes", ErrInvalidConfig, i, len(p))
			}
			kk.pub = p
		default:
			return nil, fmt.Errorf("%w: Keys[%d] has a %T key; want *rsa.PublicKey or ed25519.PublicKey", ErrInvalidConfig, i, k.Public)
		}
		ck.keys = append(ck.keys, kk)
	}
	return ck, nil
}

// domainName converts a domain given by a user to lower-case A-labels
// without the trailing dot, and requires two labels at least.
func domainName(s string) (string, error) {
	a, err := idna.Lookup.ToASCII(strings.TrimSuffix(s, "."))
	if err != nil {
		return "", fmt.Errorf("%q: %w", s, err)
	}
	if !strings.Contains(a, ".") {
		return "", fmt.Errorf("%q is not a domain name with two labels or more", s)
	}
	return a, nil
}

// hasControl reports whether s holds an ASCII control character (CR and
// LF among them), which would break the lines of a report.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// add appends a finding.
func (ck *checker) add(f Finding) { ck.findings = append(ck.findings, f) }

// checkConfig reports what the Config leaves unchecked.
func (ck *checker) checkConfig() {
	if len(ck.sources) == 0 {
		ck.add(Finding{
			Check: "config.no-sources", Severity: Info, Subject: ck.domain,
			Found:  "no sending addresses given",
			Fix:    "list the addresses mail leaves from in Config.Sources, so that SPF authorisation and reverse DNS can be checked",
			Source: "preflight",
		})
	}
}

// dnsFailure describes a lookup that failed temporarily, for Found:
// "lookup TXT example.com. on 192.0.2.53:53: SERVFAIL".
func dnsFailure(err error) string {
	return strings.TrimPrefix(err.Error(), "mx: ")
}
