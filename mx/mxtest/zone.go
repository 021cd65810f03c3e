package mxtest

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mxrelay/mxrelay/mx"
)

// Zone maps names to their records. Keys are domain names in any case, with
// or without the trailing dot, in A-labels ("xn--bcher-kva.example"); TLSA
// records sit at names such as "_25._tcp.mx.example.com", MTA-STS records
// at "_mta-sts.example.com". A name absent from the zone does not exist
// (NXDOMAIN).
type Zone map[string]Domain

// Domain holds the records of one name and the faults to inject for
// queries about it.
type Domain struct {
	// TTL of every record of the name, in seconds. The zero value means
	// TTL 0: answers are not cached, so changes show at once.
	TTL uint32

	MX    []mx.MX   // Host "." with Pref 0 is a null MX (RFC 7505)
	A     []string  // IPv4 addresses, "192.0.2.1"
	AAAA  []string  // IPv6 addresses, "2001:db8::1"
	CNAME string    // alias target; followed by the server like a recursive resolver
	TXT   []string  // each string one TXT record (split into 255-octet pieces)
	TLSA  []mx.TLSA // TLSA records, for names like "_25._tcp.mx.example.com"
	// PTR names, for reverse names such as "1.2.0.192.in-addr.arpa"
	// (ReverseName makes one from an address).
	PTR []string

	Faults
}

// Faults are failures to inject. Set on a Domain they apply to queries for
// that name; set with Server.SetFaults they apply to every query.
type Faults struct {
	ServFail bool // answer SERVFAIL
	Refused  bool // answer REFUSED
	Drop     bool // never answer: the client times out
	Truncate bool // over UDP answer with the TC bit and no records; TCP answers are whole
	AD       bool // set the AD bit, as a validating resolver does for signed data
	Mismatch bool // answer about another question
	Garbage  bool // answer with bytes that are not a DNS message
	// Delay holds every answer back this long (the longer of the two
	// settings wins), so that tests can overlap concurrent lookups.
	Delay time.Duration
	// Hold, when not nil, holds every answer back until it is closed, so
	// that tests can line up concurrent lookups without timing.
	Hold <-chan struct{}
	// Types, when not empty, limits these faults to queries of the listed
	// types ("AAAA", "TLSA", ...).
	Types []string
}

// applies reports whether f is in force for a query of type qtype.
func (f Faults) applies(qtype uint16) bool {
	if len(f.Types) == 0 {
		return true
	}
	name := dns.TypeToString[qtype]
	for _, t := range f.Types {
		if strings.EqualFold(t, name) {
			return true
		}
	}
	return false
}

func (f Faults) or(g Faults) Faults {
	return Faults{
		ServFail: f.ServFail || g.ServFail,
		Refused:  f.Refused || g.Refused,
		Drop:     f.Drop || g.Drop,
		Truncate: f.Truncate || g.Truncate,
		AD:       f.AD || g.AD,
		Mismatch: f.Mismatch || g.Mismatch,
		Garbage:  f.Garbage || g.Garbage,
		Delay:    max(f.Delay, g.Delay),
		Hold:     cmp.Or(f.Hold, g.Hold),
	}
}

// canonical returns the lower-case absolute form of a name.
func canonical(name string) string {
	return dns.Fqdn(strings.ToLower(name))
}

// validate checks the values of d that are parsed when served.
func (d Domain) validate(name string) error {
	for _, a := range d.A {
		if ip := net.ParseIP(a); ip == nil || ip.To4() == nil {
			return fmt.Errorf("mxtest: %s: bad A address %q", name, a)
		}
	}
	for _, a := range d.AAAA {
		if ip := net.ParseIP(a); ip == nil || ip.To4() != nil {
			return fmt.Errorf("mxtest: %s: bad AAAA address %q", name, a)
		}
	}
	return nil
}

// records returns the records of type qtype at name (absolute).
func (d Domain) records(name string, qtype uint16) []dns.RR {
	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: d.TTL}
	}
	var out []dns.RR
	switch qtype {
	case dns.TypeMX:
		for _, m := range d.MX {
			out = append(out, &dns.MX{Hdr: hdr(dns.TypeMX), Preference: m.Pref, Mx: dns.Fqdn(m.Host)})
		}
	case dns.TypeA:
		for _, a := range d.A {
			out = append(out, &dns.A{Hdr: hdr(dns.TypeA), A: net.ParseIP(a).To4()})
		}
	case dns.TypeAAAA:
		for _, a := range d.AAAA {
			out = append(out, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: net.ParseIP(a)})
		}
	case dns.TypeTXT:
		for _, t := range d.TXT {
			out = append(out, &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: splitTXT(t)})
		}
	case dns.TypeTLSA:
		for _, t := range d.TLSA {
			out = append(out, &dns.TLSA{Hdr: hdr(dns.TypeTLSA), Usage: t.Usage, Selector: t.Selector,
				MatchingType: t.MatchingType, Certificate: hex.EncodeToString(t.Data)})
		}
	case dns.TypePTR:
		for _, p := range d.PTR {
			out = append(out, &dns.PTR{Hdr: hdr(dns.TypePTR), Ptr: canonical(p)})
		}
	case dns.TypeCNAME:
		if d.CNAME != "" {
			out = append(out, &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: canonical(d.CNAME)})
		}
	}
	return out
}

// splitTXT cuts s into character-strings of at most 255 octets.
func splitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}

// ReverseName returns the name under in-addr.arpa or ip6.arpa at which the
// PTR records of addr sit ("1.2.0.192.in-addr.arpa"), for a Zone key.
func ReverseName(addr string) (string, error) {
	n, err := dns.ReverseAddr(addr)
	if err != nil {
		return "", fmt.Errorf("mxtest: %w", err)
	}
	return strings.TrimSuffix(n, "."), nil
}
