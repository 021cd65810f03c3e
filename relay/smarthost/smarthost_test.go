package smarthost_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"io"
	"math/big"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/xdg-go/scram"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/smarthost"
)

const (
	user = "app@example.org"
	pass = "correct horse battery staple"
)

// submission is a go-smtp submission server on loopback that wants AUTH
// with one of mechs before MAIL.
type submission struct {
	addr  string
	roots *x509.CertPool
	mechs []string

	mu       sync.Mutex
	used     []string // mechanisms that succeeded
	messages []received
}

type received struct {
	from string
	to   []string
	data []byte
}

// newSubmission starts the server: implicit TLS or STARTTLS (offered only
// if starttls), stopped when the test ends.
func newSubmission(t *testing.T, implicit, starttls bool, mechs ...string) *submission {
	t.Helper()
	cert, roots := selfSigned(t)
	s := &submission{roots: roots, mechs: mechs}
	srv := smtp.NewServer(s)
	srv.Domain = "submit.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicit {
		ln = tls.NewListener(ln, cfg)
		srv.AllowInsecureAuth = true // the listener is TLS
	} else if starttls {
		srv.TLSConfig = cfg
	} else {
		srv.AllowInsecureAuth = true // lets the test see that the client still refuses
	}
	s.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return s
}

func (s *submission) NewSession(*smtp.Conn) (smtp.Session, error) { return &subSession{srv: s}, nil }

type subSession struct {
	srv    *submission
	authed bool
	from   string
	to     []string
}

func (ss *subSession) AuthMechanisms() []string { return ss.srv.mechs }

func (ss *subSession) Auth(mech string) (sasl.Server, error) {
	ok := func() {
		ss.authed = true
		ss.srv.mu.Lock()
		ss.srv.used = append(ss.srv.used, mech)
		ss.srv.mu.Unlock()
	}
	switch mech {
	case "PLAIN":
		return sasl.NewPlainServer(func(identity, u, p string) error {
			if u != user || p != pass {
				return errors.New("bad credentials")
			}
			ok()
			return nil
		}), nil
	case "LOGIN":
		return &loginServer{done: ok}, nil
	case "SCRAM-SHA-256":
		return newSCRAMServer(t0(), ok), nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *subSession) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *subSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "refused@") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *subSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.srv.mu.Lock()
	ss.srv.messages = append(ss.srv.messages, received{ss.from, ss.to, b})
	ss.srv.mu.Unlock()
	return nil
}

func (ss *subSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *subSession) Logout() error { return nil }

// loginServer is the server side of the LOGIN mechanism (not in go-sasl).
type loginServer struct {
	step int
	u    string
	done func()
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step++; l.step {
	case 1:
		if resp != nil {
			l.step++
			l.u = string(resp)
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.u = string(resp)
		return []byte("Password:"), false, nil
	}
	if l.u != user || string(resp) != pass {
		return nil, true, errors.New("bad credentials")
	}
	l.done()
	return nil, true, nil
}

// t0 is the SCRAM credential lookup for the one user.
func t0() scram.CredentialLookup {
	c, _ := scram.SHA256.NewClient(user, pass, "")
	stored, err := c.GetStoredCredentialsWithError(scram.KeyFactors{Salt: "mxrelay-test-salt", Iters: 4096})
	return func(u string) (scram.StoredCredentials, error) {
		if err != nil {
			return scram.StoredCredentials{}, err
		}
		if u != user {
			return scram.StoredCredentials{}, errors.New("unknown user")
		}
		return stored, nil
	}
}

// scramServer adapts xdg-go/scram's server to go-sasl: the server-final
// message goes as a last challenge, answered with an empty response.
type scramServer struct {
	conv *scram.ServerConversation
	sent bool
	done func()
}

func newSCRAMServer(lookup scram.CredentialLookup, done func()) *scramServer {
	s, _ := scram.SHA256.NewServer(lookup)
	return &scramServer{conv: s.NewConversation(), done: done}
}

func (s *scramServer) Next(resp []byte) ([]byte, bool, error) {
	if s.sent {
		if !s.conv.Valid() {
			return nil, true, errors.New("SCRAM failed")
		}
		s.done()
		return nil, true, nil
	}
	ch, err := s.conv.Step(string(resp))
	if err != nil {
		return nil, true, err
	}
	if s.conv.Done() {
		s.sent = true
	}
	return []byte(ch), false, nil
}

// selfSigned makes a certificate for 127.0.0.1 and the pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "submit.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"submit.test"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func message(to ...string) *mime.Message {
	m := &mime.Message{From: mail.Address{Address: "app@example.org"}, Subject: "hello", Text: "hi\n"}
	for _, a := range to {
		m.To = append(m.To, mail.Address{Address: a})
	}
	return m
}

// Submission over STARTTLS and implicit TLS, with each mechanism, through
// a relay.Client: every recipient's result comes from the relay host, and
// the transcript holds no credentials.
func TestSubmission(t *testing.T) {
	for _, tc := range []struct {
		name     string
		implicit bool
		offered  []string
		want     string
	}{
		{"starttls-plain", false, []string{"PLAIN"}, "PLAIN"},
		{"starttls-login", false, []string{"LOGIN"}, "LOGIN"},
		{"implicit-scram", true, []string{"PLAIN", "LOGIN", "SCRAM-SHA-256"}, "SCRAM-SHA-256"},
		{"implicit-plain", true, []string{"PLAIN"}, "PLAIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSubmission(t, tc.implicit, true, tc.offered...)
			var transcript bytes.Buffer
			tr := &smarthost.Transport{Addr: srv.addr, ImplicitTLS: tc.implicit, Username: user, Password: pass,
				Hostname: "app.example.org", TLSConfig: &tls.Config{RootCAs: srv.roots}, DebugWriter: &transcript}
			c := &relay.Client{Transport: tr}
			defer c.CloseIdleConnections()
			res, err := c.Send(ctx(t), message("ann@example.com", "refused@example.com", "bob@example.net"))
			if res == nil {
				t.Fatal(err)
			}
			want := map[string]relay.Status{"ann@example.com": relay.Delivered, "refused@example.com": relay.Bounced, "bob@example.net": relay.Delivered}
			for _, r := range res.Recipients {
				if r.Status != want[r.Recipient] || r.MX != "127.0.0.1" || r.TLS.Version == "" || !r.TLS.Verified {
					t.Errorf("%s: %+v", r.Recipient, r)
				}
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			// Two domains go in parallel: one or two sessions.
			if len(srv.messages) != 2 || len(srv.used) == 0 || len(srv.used) > 2 || srv.used[0] != tc.want {
				t.Errorf("%d messages, mechanisms %v, want %s", len(srv.messages), srv.used, tc.want)
			}
			tx := transcript.String()
			b64 := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
			if strings.Contains(tx, pass) || strings.Contains(tx, b64) || strings.Contains(tx, base64.StdEncoding.EncodeToString([]byte(pass))) {
				t.Errorf("credentials in the transcript:\n%s", tx)
			}
			if !strings.Contains(tx, "[credentials]") {
				t.Errorf("no AUTH in the transcript:\n%s", tx)
			}
		})
	}
}

// Wrong credentials, or a relay host without STARTTLS, defer every
// recipient (nothing is lost while the setting is fixed), and no
// credentials go over plaintext.
func TestSubmissionRefused(t *testing.T) {
	t.Run("wrong-password", func(t *testing.T) {
		srv := newSubmission(t, false, true, "PLAIN")
		tr := &smarthost.Transport{Addr: srv.addr, Username: user, Password: "wrong", TLSConfig: &tls.Config{RootCAs: srv.roots}}
		res, _ := (&relay.Client{Transport: tr}).Send(ctx(t), message("ann@example.com"))
		r := res.Recipients[0]
		if r.Status != relay.Deferred || !errors.Is(r.Err(), smarthost.ErrAuthFailed) {
			t.Errorf("%+v: %v", r, r.Err())
		}
	})
	t.Run("no-starttls", func(t *testing.T) {
		srv := newSubmission(t, false, false, "PLAIN")
		var transcript bytes.Buffer
		tr := &smarthost.Transport{Addr: srv.addr, Username: user, Password: pass, DebugWriter: &transcript}
		res, _ := (&relay.Client{Transport: tr}).Send(ctx(t), message("ann@example.com"))
		r := res.Recipients[0]
		if r.Status != relay.Deferred || !errors.Is(r.Err(), relay.ErrTLSRequired) {
			t.Errorf("%+v: %v", r, r.Err())
		}
		if strings.Contains(transcript.String(), "C: AUTH") {
			t.Errorf("AUTH sent in plaintext:\n%s", transcript.String())
		}
	})
	t.Run("bad-config", func(t *testing.T) {
		c := &relay.Client{Transport: &smarthost.Transport{Addr: "no-port"}}
		if res, err := c.Send(ctx(t), message("ann@example.com")); !errors.Is(err, smarthost.ErrConfig) || res != nil {
			t.Errorf("%v, %+v", err, res)
		}
	})
}

// Sessions are reused across messages.
func TestSubmissionReusesSessions(t *testing.T) {
	srv := newSubmission(t, true, true, "PLAIN")
	tr := &smarthost.Transport{Addr: srv.addr, ImplicitTLS: true, Username: user, Password: pass, TLSConfig: &tls.Config{RootCAs: srv.roots}}
	c := &relay.Client{Transport: tr}
	defer c.CloseIdleConnections()
	for range 3 {
		if _, err := c.Send(ctx(t), message("ann@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.messages) != 3 || len(srv.used) != 1 {
		t.Errorf("%d messages over %d authenticated sessions, want 3 over 1", len(srv.messages), len(srv.used))
	}
}
