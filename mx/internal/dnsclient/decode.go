package dnsclient

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// Record types this package understands. The values are the IANA numbers.
const (
	TypeA     uint16 = 1
	TypeCNAME uint16 = 5
	TypeSOA   uint16 = 6
	TypePTR   uint16 = 12
	TypeMX    uint16 = 15
	TypeTXT   uint16 = 16
	TypeAAAA  uint16 = 28
	TypeTLSA  uint16 = 52
)

// Response codes (RFC 1035 §4.1.1, RFC 6895).
const (
	RcodeSuccess  = 0
	RcodeFormErr  = 1
	RcodeServFail = 2
	RcodeNXDomain = 3
	RcodeNotImp   = 4
	RcodeRefused  = 5
)

// RcodeString names a response code ("SERVFAIL", "RCODE23").
func RcodeString(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}

// TypeString names a record type ("MX", "TYPE65").
func TypeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", t)
}

// Query is one question. Name must be an absolute, lower-case, ASCII name
// ending in a dot.
type Query struct {
	Name string
	Type uint16
	// DNSSEC sets the DO bit (RFC 3225), asking for DNSSEC records. Every
	// query sets the AD bit (RFC 6840 §5.7), so that a validating resolver
	// reports whether the answer was authenticated even without DO.
	DNSSEC bool
}

// Record is one resource record of the answer section, class IN, of a type
// listed above. Names are lower case, absolute (trailing dot).
type Record struct {
	Name string
	Type uint16
	TTL  uint32

	Target string     // CNAME target, MX exchange, PTR name
	Pref   uint16     // MX preference
	Addr   netip.Addr // A, AAAA
	Text   string     // TXT: the character-strings concatenated (RFC 7208 §3.3 style)

	// TLSA (RFC 6698 §2.1)
	Usage, Selector, MatchingType uint8
	Data                          []byte
}

// Response is a decoded answer.
type Response struct {
	Rcode         int
	Authenticated bool // AD bit
	Truncated     bool
	Answer        []Record
	// NegTTL is the negative-caching TTL from the SOA record of the
	// authority section (RFC 2308 §5: the minimum of the SOA's own TTL and
	// its MINIMUM field); HasSOA says whether there was one.
	NegTTL uint32
	HasSOA bool
	Server string // the server that answered
}

// ErrMismatch reports an answer that is not the answer to our question.
var ErrMismatch = errors.New("answer does not match the question")

// Pack builds the wire form of q with the given message ID.
func Pack(q Query, id uint16) ([]byte, error) {
	m := new(dns.Msg)
	m.Id = id
	m.RecursionDesired = true
	m.Question = []dns.Question{{Name: q.Name, Qtype: q.Type, Qclass: dns.ClassINET}}
	m.SetEdns0(udpSize, q.DNSSEC)
	m.AuthenticatedData = true
	return m.Pack()
}

// Decode parses wire as the answer to q sent with id. Hostile input (short,
// malformed, mismatched) is an error, never a panic.
func Decode(q Query, id uint16, wire []byte) (*Response, error) {
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		return nil, fmt.Errorf("malformed answer: %w", err)
	}
	if !m.Response || m.Id != id || m.Opcode != dns.OpcodeQuery {
		return nil, ErrMismatch
	}
	if len(m.Question) != 1 {
		return nil, ErrMismatch
	}
	mq := m.Question[0]
	if mq.Qtype != q.Type || mq.Qclass != dns.ClassINET || !strings.EqualFold(mq.Name, q.Name) {
		return nil, ErrMismatch
	}
	r := &Response{
		Rcode:         m.Rcode,
		Authenticated: m.AuthenticatedData,
		Truncated:     m.Truncated,
	}
	for _, rr := range m.Answer {
		if rec, ok := convert(rr); ok {
			r.Answer = append(r.Answer, rec)
		}
	}
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok && soa.Hdr.Class == dns.ClassINET {
			r.NegTTL = min(soa.Hdr.Ttl, soa.Minttl)
			r.HasSOA = true
			break
		}
	}
	return r, nil
}

func convert(rr dns.RR) (Record, bool) {
	h := rr.Header()
	if h.Class != dns.ClassINET {
		return Record{}, false
	}
	rec := Record{Name: strings.ToLower(h.Name), Type: h.Rrtype, TTL: h.Ttl}
	switch v := rr.(type) {
	case *dns.A:
		a, ok := netip.AddrFromSlice(v.A.To4())
		if !ok {
			return Record{}, false
		}
		rec.Addr = a
	case *dns.AAAA:
		a, ok := netip.AddrFromSlice(v.AAAA)
		if !ok || !a.Is6() {
			return Record{}, false
		}
		rec.Addr = a
	case *dns.CNAME:
		rec.Target = strings.ToLower(v.Target)
	case *dns.PTR:
		rec.Target = strings.ToLower(v.Ptr)
	case *dns.MX:
		rec.Target = strings.ToLower(v.Mx)
		rec.Pref = v.Preference
	case *dns.TXT:
		var b strings.Builder
		for _, t := range v.Txt {
			unescapeTXT(&b, t)
		}
		rec.Text = b.String()
	case *dns.TLSA:
		data, err := hex.DecodeString(v.Certificate)
		if err != nil {
			return Record{}, false
		}
		rec.Usage, rec.Selector, rec.MatchingType, rec.Data = v.Usage, v.Selector, v.MatchingType, data
	default:
		return Record{}, false
	}
	return rec, true
}

// unescapeTXT undoes the presentation escapes miekg/dns applies to TXT
// strings when unpacking (\" \\ and \DDD), writing the raw octets to b.
func unescapeTXT(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if n <= 255 {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i+1])
		i++
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
