package smtpclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// received is one message as go-smtp's server saw it.
type received struct {
	From  string
	Mail  smtp.MailOptions
	Rcpts []string
	Notes []smtp.RcptOptions
	Data  string
	TLS   bool
}

// gsBackend records messages; rcptErr, if set, decides each RCPT.
type gsBackend struct {
	mu      sync.Mutex
	msgs    []received
	rcptErr func(to string) error
}

func (b *gsBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &gsSession{be: b, cur: received{TLS: isTLS}}, nil
}

func (b *gsBackend) messages() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.msgs...)
}

type gsSession struct {
	be  *gsBackend
	cur received
}

func (s *gsSession) Reset()        { s.cur = received{TLS: s.cur.TLS} }
func (s *gsSession) Logout() error { return nil }
func (s *gsSession) Mail(from string, opts *smtp.MailOptions) error {
	s.cur.From = from
	if opts != nil {
		s.cur.Mail = *opts
	}
	return nil
}
func (s *gsSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.be.rcptErr != nil {
		if err := s.be.rcptErr(to); err != nil {
			return err
		}
	}
	s.cur.Rcpts = append(s.cur.Rcpts, to)
	if opts != nil {
		s.cur.Notes = append(s.cur.Notes, *opts)
	}
	return nil
}
func (s *gsSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = string(b)
	s.be.mu.Lock()
	s.be.msgs = append(s.be.msgs, s.cur)
	s.be.mu.Unlock()
	return nil
}

// startGoSMTP runs a go-smtp server on loopback; configure edits it before
// it starts.
func startGoSMTP(t testing.TB, be smtp.Backend, configure func(s *smtp.Server)) string {
	t.Helper()
	s := smtp.NewServer(be)
	s.Domain = "gosmtp.test"
	s.ReadTimeout = 10 * time.Second
	s.WriteTimeout = 10 * time.Second
	if configure != nil {
		configure(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ln)
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return ln.Addr().String()
}

// selfSigned makes a TLS certificate for "mx.test" and a pool trusting it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mx.test"},
		DNSNames:     []string{"mx.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

func TestGoSMTPSend(t *testing.T) {
	body := "From: a@x.test\r\nSubject: caf\xc3\xa9\r\n\r\nline\n.\nMAIL FROM:<evil@x>\r\n.\r\nend\rlast"
	for _, tc := range []struct {
		name    string
		opts    *Options
		chunked bool
	}{
		{"bdat", nil, true},
		{"data", &Options{DisableChunking: true}, false},
		{"data-unpipelined", &Options{DisableChunking: true, DisablePipelining: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := &gsBackend{}
			addr := startGoSMTP(t, be, func(s *smtp.Server) {
				s.EnableSMTPUTF8 = true
				s.EnableDSN = true
				s.MaxMessageBytes = 1 << 20
			})
			ctx := testCtx(t)
			c, err := Dial(ctx, "tcp", addr, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Hello(ctx, "client.test"); err != nil {
				t.Fatal(err)
			}
			env := &Envelope{From: "a@x.test", To: []string{"b@y.test", "ü@y.test"},
				DSN: &DSN{Return: "HDRS", EnvelopeID: "q1", Notify: []string{"FAILURE"}, OriginalRecipient: true}}
			res, err := c.Send(ctx, env, []byte(body))
			if err != nil || res.Delivered() != 2 {
				t.Fatalf("Send: %+v %v", res, err)
			}
			if res.Chunked != tc.chunked || !res.EightBit || !res.UTF8 {
				t.Errorf("result flags %+v", res)
			}
			msgs := be.messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want exactly one", len(msgs))
			}
			m := msgs[0]
			if m.Data != normalize(body) {
				t.Errorf("data %q\nwant %q", m.Data, normalize(body))
			}
			if m.From != "a@x.test" || strings.Join(m.Rcpts, ",") != "b@y.test,ü@y.test" {
				t.Errorf("envelope %q %q", m.From, m.Rcpts)
			}
			if m.Mail.Body != smtp.Body8BitMIME || !m.Mail.UTF8 || m.Mail.Size != res.Size ||
				m.Mail.Return != smtp.DSNReturnHeaders || m.Mail.EnvelopeID != "q1" {
				t.Errorf("MAIL options %+v", m.Mail)
			}
			if n := m.Notes[0]; len(n.Notify) != 1 || n.Notify[0] != smtp.DSNNotifyFailure || n.OriginalRecipient != "b@y.test" {
				t.Errorf("RCPT options %+v", n)
			}
			if err := c.Quit(ctx); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestGoSMTPReuseAndLimits(t *testing.T) {
	be := &gsBackend{rcptErr: func(to string) error {
		if strings.HasPrefix(to, "nobody") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}}
	addr := startGoSMTP(t, be, func(s *smtp.Server) {
		s.MaxRecipients = 2
		s.MaxMessageBytes = 200
	})
	ctx := testCtx(t)
	c, err := Dial(ctx, "tcp", addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(ctx, "client.test"); err != nil {
		t.Fatal(err)
	}
	if c.RcptMax() != 2 || c.MaxSize() != 200 {
		t.Fatalf("RcptMax %d MaxSize %d", c.RcptMax(), c.MaxSize())
	}
	// Three recipients, one unknown, RCPTMAX 2: the third is left for another transaction.
	res, err := c.Send(ctx, &Envelope{From: "a@x.test", To: []string{"nobody@y.test", "b@y.test", "c@y.test"}}, []byte("short\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !IsPermanent(res.Rcpts[0].Err) || res.Rcpts[1].Err != nil || !errors.Is(res.Rcpts[2].Err, ErrTooManyRecipients) {
		t.Fatalf("rcpts %+v", res.Rcpts)
	}
	// The same session carries the next transaction, and a failed one
	// (every recipient refused) does not spoil the one after.
	if _, err := c.Send(ctx, &Envelope{From: "a@x.test", To: []string{"nobody@y.test"}}, []byte("x\r\n")); !IsPermanent(err) {
		t.Fatalf("all refused: %v", err)
	}
	if _, err := c.Send(ctx, &Envelope{From: "a@x.test", To: []string{"c@y.test"}}, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, &Envelope{From: "a@x.test", To: []string{"c@y.test"}}, []byte(strings.Repeat("x", 300))); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	if n := len(be.messages()); n != 2 {
		t.Errorf("%d messages, want 2", n)
	}
}

func TestGoSMTPStartTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	be := &gsBackend{}
	addr := startGoSMTP(t, be, func(s *smtp.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		s.EnableREQUIRETLS = true
	})
	ctx := testCtx(t)
	c, err := Dial(ctx, "tcp", addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(ctx, "client.test"); err != nil {
		t.Fatal(err)
	}
	if !c.Supports("STARTTLS") || c.Supports("REQUIRETLS") {
		t.Fatalf("plaintext extensions %v", c.Extensions())
	}
	env := &Envelope{From: "a@x.test", To: []string{"b@y.test"}, RequireTLS: true}
	if _, err := c.Send(ctx, env, []byte("x\r\n")); !errors.Is(err, ErrRequireTLS) {
		t.Fatalf("REQUIRETLS in plaintext: %v", err)
	}
	if err := c.StartTLS(ctx, &tls.Config{ServerName: "mx.test", RootCAs: pool}); err != nil {
		t.Fatal(err)
	}
	st, ok := c.TLSConnectionState()
	if !ok || !st.HandshakeComplete || !c.IsTLS() {
		t.Fatal("no TLS state")
	}
	if c.Supports("STARTTLS") || !c.Supports("REQUIRETLS") {
		t.Errorf("extensions after TLS %v", c.Extensions())
	}
	if _, err := c.Send(ctx, env, []byte("x\r\n")); err != nil {
		t.Fatal(err)
	}
	if m := be.messages(); len(m) != 1 || !m[0].Mail.RequireTLS || !m[0].TLS {
		t.Errorf("messages %+v", m)
	}
}

func TestGoSMTPStartTLSBadCert(t *testing.T) {
	cert, _ := selfSigned(t)
	addr := startGoSMTP(t, &gsBackend{}, func(s *smtp.Server) {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	})
	ctx := testCtx(t)
	c, err := Dial(ctx, "tcp", addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello(ctx, "client.test"); err != nil {
		t.Fatal(err)
	}
	err = c.StartTLS(ctx, &tls.Config{ServerName: "mx.test"}) // not trusted
	var ue x509.UnknownAuthorityError
	if !errors.As(err, &ue) {
		t.Fatalf("StartTLS: %v", err)
	}
	if err := c.Noop(ctx); err == nil {
		t.Error("session still open after a failed handshake")
	}
}

func TestDialLocalAddr(t *testing.T) {
	addr := startGoSMTP(t, &gsBackend{}, nil)
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	c, err := Dial(context.Background(), "tcp", addr, &Options{LocalAddr: local, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Quit(testCtx(t)); err != nil {
		t.Error(err)
	}
	if _, err := Dial(context.Background(), "tcp", "127.0.0.1:1", nil); err == nil {
		t.Error("dial to a closed port succeeded")
	}
}
