package relaytest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/relay"
)

// Server is a complete offline destination for mail: a DNS server
// (mxtest) and any number of scripted MX hosts, each on its own loopback
// address (127.0.0.2, 127.0.0.3, ...) and all on one port, so that a
// relay.Client with that Port reaches every one of them. Every message a
// host accepts is recorded.
type Server struct {
	// DNS serves the zone: MX records from AddDomain, A records from
	// AddHost, and anything a test sets itself (TXT for DKIM keys, TLSA...).
	DNS *mxtest.Server
	// Port is the SMTP port every host listens on.
	Port int

	ca *testCA

	mu     sync.Mutex
	hosts  []*Host
	nextIP int
	msgs   []*Message
	arrive chan struct{} // closed and replaced when a message is recorded
	closed bool

	sts      *httptest.Server // serves MTA-STS policies, started on first use
	policies map[string]string
	stsID    int
}

// NewServer starts the DNS server. Add hosts with AddHost and domains with
// AddDomain; call Close when done.
func NewServer() (*Server, error) {
	ca, err := newTestCA()
	if err != nil {
		return nil, err
	}
	return &Server{
		DNS:    mxtest.NewServer(nil),
		ca:     ca,
		nextIP: 2,
		arrive: make(chan struct{}),
	}, nil
}

// AddHost starts an MX host named name, scripted by cfg, on the next free
// loopback address, and publishes its A record.
func (s *Server) AddHost(name string, cfg HostConfig) (*Host, error) {
	tc, err := s.ca.hostTLS(name, cfg.TLS)
	if err != nil {
		return nil, err
	}
	h := &Host{
		Name:     name,
		srv:      s,
		cfg:      cfg,
		tlsc:     tc,
		conns:    make(map[*conn]struct{}),
		accepted: make(chan net.Conn),
		closed:   make(chan struct{}),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("relaytest: server closed")
	}
	// The first host picks the port; the others take the same port on
	// further loopback addresses, skipping any where it is taken.
	for tries := 0; ; tries++ {
		if tries == 200 || s.nextIP > 254 {
			return nil, fmt.Errorf("relaytest: no loopback address free for %s", name)
		}
		ip := "127.0.0." + strconv.Itoa(s.nextIP)
		s.nextIP++
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(s.Port)))
		if err != nil {
			continue
		}
		if s.Port == 0 {
			s.Port = ln.Addr().(*net.TCPAddr).Port
		}
		h.IP, h.ln = ip, ln
		break
	}
	h.smtp = smtp.NewServer(backend{h})
	h.smtp.Domain = name
	h.smtp.ReadTimeout = time.Minute
	h.smtp.WriteTimeout = time.Minute
	h.smtp.MaxMessageBytes = cfg.MaxSize
	h.smtp.MaxRecipients = cfg.MaxRecipients
	h.smtp.EnableSMTPUTF8 = !cfg.NoSMTPUTF8
	h.smtp.EnableREQUIRETLS = cfg.RequireTLSExtension
	h.smtp.EnableDSN = cfg.DSN
	h.smtp.ErrorLog = discardLogger{}
	go h.smtp.Serve(chanListener{h})
	go h.serve()
	s.hosts = append(s.hosts, h)
	s.DNS.Update(name, func(d *mxtest.Domain) { d.A = append(d.A, h.IP) })
	return h, nil
}

// AddDomain publishes MX records for domain: the hosts in order of
// preference (10, 20, ...).
func (s *Server) AddDomain(domain string, hosts ...string) {
	s.DNS.Update(domain, func(d *mxtest.Domain) {
		d.MX = d.MX[:0]
		for i, h := range hosts {
			d.MX = append(d.MX, mx.MX{Host: h, Pref: uint16(10 * (i + 1))})
		}
	})
}

// Resolver returns a new resolver that asks only the harness's DNS server
// and fetches MTA-STS policies from the harness.
func (s *Server) Resolver() *mx.Resolver {
	r := s.DNS.Resolver()
	r.HTTPClient = s.stsClient()
	return r
}

// RootCAs returns a pool holding the test CA that signs TLSValid hosts'
// certificates.
func (s *Server) RootCAs() *x509.CertPool { return s.ca.pool }

// CACertificate returns the test CA's certificate, which TLSValid hosts
// send after their own (for DANE-TA records in tests).
func (s *Server) CACertificate() *x509.Certificate { return s.ca.cert }

// Client returns a relay.Client set up for the harness (see Configure).
// Change its fields as a test needs.
func (s *Server) Client() *relay.Client {
	c := &relay.Client{}
	s.Configure(c)
	return c
}

// Configure points c at the harness: its Transport becomes s.Direct().
// Other fields are left alone. Use it on relay.DefaultClient to test code
// that calls relay.Send.
func (s *Server) Configure(c *relay.Client) {
	c.Transport = s.Direct()
}

// Direct returns a new direct transport pointed at the harness: its DNS,
// its port, private (loopback) addresses allowed, the test CA trusted, and
// the EHLO name "client.relaytest". Change its fields as a test needs.
func (s *Server) Direct() *relay.Direct {
	return &relay.Direct{
		Hostname:          "client.relaytest",
		Resolver:          s.Resolver(),
		Port:              s.Port,
		AllowPrivateAddrs: true,
		TLSConfig:         &tls.Config{RootCAs: s.ca.pool},
	}
}

// NetResolver returns a *net.Resolver that asks the harness's DNS server,
// for code that looks names up with the standard library (a DKIM
// verifier's LookupTXT, for one).
func (s *Server) NetResolver() *net.Resolver {
	addr := s.DNS.Addr()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

func (s *Server) record(m *Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.arrive)
	s.arrive = make(chan struct{})
}

// Messages returns every message the hosts received, in order of arrival,
// including those with Dropped set.
func (s *Server) Messages() []*Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Message(nil), s.msgs...)
}

// WaitMessages waits until at least n messages have arrived or timeout
// passes, and returns those that arrived.
func (s *Server) WaitMessages(n int, timeout time.Duration) []*Message {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, ch := len(s.msgs), s.arrive
		s.mu.Unlock()
		if got >= n {
			return s.Messages()
		}
		select {
		case <-ch:
		case <-deadline.C:
			return s.Messages()
		}
	}
}

// Reset forgets the recorded messages.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = nil
}

// Close stops every host and the DNS server.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	hosts := s.hosts
	s.mu.Unlock()
	for _, h := range hosts {
		h.close()
	}
	s.DNS.Close()
	s.mu.Lock()
	if s.sts != nil {
		s.sts.Close()
	}
	s.mu.Unlock()
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}
