package mxtest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/mxrelay/mxrelay/mx"
)

// maxChase bounds how many CNAMEs the server follows in one answer.
const maxChase = 16

// Server is an in-process DNS server on 127.0.0.1, answering over UDP and
// TCP on the same port from a Zone, like a recursive resolver that already
// knows every answer: it follows CNAMEs within the zone, puts an SOA with
// the negative TTL in NXDOMAIN and NODATA answers, honours the client's
// EDNS0 buffer size (truncating over UDP when an answer does not fit) and
// counts queries. Records and faults can be changed while it runs; all
// methods are safe for concurrent use.
type Server struct {
	mu       sync.Mutex
	zone     map[string]Domain
	faults   Faults
	negTTL   uint32
	total    int
	tcp      int
	counts   map[string]int
	fallback func(name string) (Domain, bool)
	udpSrv   *dns.Server
	tcpSrv   *dns.Server
	addr     string
	closed   bool
	closeMu  sync.Mutex
}

// NewServer starts a server for zone on 127.0.0.1 (UDP and TCP, one port).
// It panics if it cannot listen, as net/http/httptest.NewServer does. Call
// Close when done.
func NewServer(zone Zone) *Server {
	s := &Server{zone: make(map[string]Domain), counts: make(map[string]int)}
	for name, d := range zone {
		s.Set(name, d)
	}
	var pc net.PacketConn
	var l net.Listener
	for range 50 {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			panic("mxtest: listen udp: " + err.Error())
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		panic("mxtest: no port free for both UDP and TCP")
	}
	s.addr = pc.LocalAddr().String()
	s.udpSrv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serveDNS)}
	s.tcpSrv = &dns.Server{Listener: l, Handler: dns.HandlerFunc(s.serveDNS), IdleTimeout: func() time.Duration { return 5 * time.Second }}
	for _, srv := range []*dns.Server{s.udpSrv, s.tcpSrv} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
	}
	return s
}

// Addr returns the server's address, "127.0.0.1:port", for UDP and TCP.
func (s *Server) Addr() string { return s.addr }

// Close stops the server. It is safe to call more than once.
func (s *Server) Close() {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	// Answers held by Faults.Hold or Delay could keep a plain Shutdown
	// waiting for ever: give up on them after a while.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.udpSrv.ShutdownContext(ctx)
	_ = s.tcpSrv.ShutdownContext(ctx)
}

// Resolver returns a new *mx.Resolver that asks only this server, with a
// short per-try timeout (1 s) and one attempt so that Drop faults fail
// fast.
func (s *Server) Resolver() *mx.Resolver {
	return &mx.Resolver{Servers: []string{s.addr}, Timeout: time.Second, Attempts: 1}
}

// Set adds or replaces the records of name. It panics on an address that
// does not parse.
func (s *Server) Set(name string, d Domain) {
	if err := d.validate(name); err != nil {
		panic(err)
	}
	d.MX = append([]mx.MX(nil), d.MX...)
	d.A = append([]string(nil), d.A...)
	d.AAAA = append([]string(nil), d.AAAA...)
	d.TXT = append([]string(nil), d.TXT...)
	d.TLSA = append([]mx.TLSA(nil), d.TLSA...)
	d.Types = append([]string(nil), d.Types...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zone[canonical(name)] = d
}

// Update changes the records of name in place (starting from the zero
// Domain if the name is absent).
func (s *Server) Update(name string, f func(d *Domain)) {
	s.mu.Lock()
	d := s.zone[canonical(name)]
	s.mu.Unlock()
	f(&d)
	s.Set(name, d)
}

// Delete removes name: it no longer exists (NXDOMAIN).
func (s *Server) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.zone, canonical(name))
}

// SetFallback makes f answer for the names absent from the zone: it is
// given the lower-case absolute name ("d1.example.") and returns its
// records, or false for a name that does not exist. It lets a test serve
// more names than it would want to hold, such as a distinct MX host for
// each of 100,000 domains; f must be safe for concurrent use and quick,
// as it is called with the server's lock held. nil (the start) → names
// absent from the zone do not exist.
func (s *Server) SetFallback(f func(name string) (Domain, bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fallback = f
}

// lookup returns the records of name, from the zone or the fallback;
// s.mu is held.
func (s *Server) lookup(name string) (Domain, bool) {
	d, ok := s.zone[name]
	if !ok && s.fallback != nil {
		d, ok = s.fallback(name)
	}
	return d, ok
}

// SetFaults sets faults for every query (on top of per-name faults).
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// SetNegativeTTL sets the negative TTL (SOA MINIMUM and TTL) of NXDOMAIN and
// NODATA answers, in seconds. It starts at 0: negative answers are not
// cached.
func (s *Server) SetNegativeTTL(ttl uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.negTTL = ttl
}

// Queries returns how many queries the server received (UDP and TCP).
func (s *Server) Queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// TCPQueries returns how many of them came over TCP.
func (s *Server) TCPQueries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tcp
}

// Count returns how many queries asked for type qtype ("MX", "A", "TLSA",
// ...) at name.
func (s *Server) Count(name, qtype string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[canonical(name)+" "+strings.ToUpper(qtype)]
}

// ResetQueries sets every counter back to zero.
func (s *Server) ResetQueries() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total, s.tcp = 0, 0
	clear(s.counts)
}

// serveDNS answers one query.
func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := canonical(q.Name)
	isTCP := w.LocalAddr().Network() == "tcp"

	s.mu.Lock()
	s.total++
	if isTCP {
		s.tcp++
	}
	s.counts[name+" "+dns.TypeToString[q.Qtype]]++
	var faults Faults
	own, _ := s.lookup(name)
	for _, f := range []Faults{s.faults, own.Faults} {
		if f.applies(q.Qtype) {
			faults = faults.or(f)
		}
	}
	negTTL := s.negTTL
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	s.answer(m, name, q.Qtype, negTTL)
	s.mu.Unlock()

	if faults.Hold != nil {
		<-faults.Hold
	}
	if faults.Delay > 0 {
		time.Sleep(faults.Delay)
	}
	switch {
	case faults.Drop:
		return
	case faults.Garbage:
		_, _ = w.Write([]byte("\x00\x01garbage"))
		return
	case faults.ServFail:
		m.Answer, m.Ns, m.Rcode = nil, nil, dns.RcodeServerFailure
	case faults.Refused:
		m.Answer, m.Ns, m.Rcode = nil, nil, dns.RcodeRefused
	case faults.Mismatch:
		m.Question[0].Name = "mismatch.invalid."
	}
	m.AuthenticatedData = faults.AD
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = int(opt.UDPSize())
		m.SetEdns0(opt.UDPSize(), opt.Do())
	}
	if !isTCP {
		if faults.Truncate {
			m.Answer, m.Ns, m.Truncated = nil, nil, true
		} else {
			m.Truncate(size)
		}
	}
	_ = w.WriteMsg(m)
}

// answer fills m for (name, qtype), following CNAMEs. s.mu is held.
func (s *Server) answer(m *dns.Msg, name string, qtype uint16, negTTL uint32) {
	cur := name
	seen := map[string]bool{}
	for range maxChase {
		d, ok := s.lookup(cur)
		if !ok {
			m.Rcode = dns.RcodeNameError
			break
		}
		if rrs := d.records(cur, qtype); len(rrs) > 0 {
			m.Answer = append(m.Answer, rrs...)
			return
		}
		if d.CNAME == "" || qtype == dns.TypeCNAME {
			break
		}
		m.Answer = append(m.Answer, d.records(cur, dns.TypeCNAME)...)
		seen[cur] = true
		cur = canonical(d.CNAME)
		if seen[cur] {
			return // a loop: the client sees the chain come back
		}
	}
	m.Ns = append(m.Ns, &dns.SOA{
		Hdr:     dns.RR_Header{Name: cur, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: negTTL},
		Ns:      "ns.mxtest.invalid.",
		Mbox:    "hostmaster.mxtest.invalid.",
		Serial:  1,
		Refresh: 3600, Retry: 600, Expire: 86400,
		Minttl: negTTL,
	})
}

// String describes the server, for test logs.
func (s *Server) String() string { return fmt.Sprintf("mxtest.Server(%s)", s.addr) }
