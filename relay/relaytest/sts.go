package relaytest

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"

	"github.com/mxrelay/mxrelay/mx/mxtest"
)

// SetSTSPolicy publishes an MTA-STS policy (RFC 8461) for domain: the
// policy text is served at https://mta-sts.<domain>/.well-known/mta-sts.txt
// with a certificate from the test CA, and the _mta-sts TXT record gets a
// new id so that cached policies are fetched again. Resolvers from
// Resolver and Client fetch policies from the harness whatever address the
// name would have.
//
// A typical policy: "version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 86400\n".
func (s *Server) SetSTSPolicy(domain, policy string) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	s.mu.Lock()
	if s.sts == nil {
		s.startSTS()
	}
	s.policies[domain] = policy
	s.stsID++
	id := s.stsID
	s.mu.Unlock()
	s.DNS.Set("_mta-sts."+domain, mxtest.Domain{TXT: []string{"v=STSv1; id=relaytest" + strconv.Itoa(id)}})
}

// startSTS starts the HTTPS server for policies; s.mu is held.
func (s *Server) startSTS() {
	s.policies = make(map[string]string)
	certs := make(map[string]*tls.Certificate)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := strings.ToLower(r.Host)
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		s.mu.Lock()
		p, ok := s.policies[strings.TrimPrefix(host, "mta-sts.")]
		s.mu.Unlock()
		if !ok || r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(p))
	}))
	srv.TLS = &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			name := strings.ToLower(hello.ServerName)
			if c, ok := certs[name]; ok {
				return c, nil
			}
			c, err := s.ca.issue(name, false)
			if err != nil {
				return nil, err
			}
			certs[name] = &c
			return &c, nil
		},
	}
	srv.StartTLS()
	s.sts = srv
}

// stsClient is the HTTP client the harness's resolvers fetch policies
// with: every connection goes to the harness's policy server.
func (s *Server) stsClient() *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			s.mu.Lock()
			srv := s.sts
			s.mu.Unlock()
			if srv == nil {
				return nil, errors.New("relaytest: no MTA-STS policy published")
			}
			var d net.Dialer
			return d.DialContext(ctx, network, srv.Listener.Addr().String())
		},
		TLSClientConfig: &tls.Config{RootCAs: s.ca.pool, MinVersion: tls.VersionTLS12},
	}
	return &http.Client{Transport: tr}
}
