// Package smarthost is a relay.Transport that submits every message to one
// relay host (a "smarthost": a provider's submission server, or your own
// MTA) instead of the recipients' MX hosts: for networks that block port
// 25, or as the fallback of direct delivery (see relay.Fallback).
//
// The session is always TLS, verified: implicit TLS from the first byte
// (port 465, RFC 8314 §3.3) or STARTTLS, which is then required (port 587,
// RFC 6409). With a Username it authenticates (RFC 4954) with the best
// mechanism the server offers: SCRAM-SHA-256 (RFC 7677), else PLAIN, else
// LOGIN. Credentials never go over plaintext and never reach the
// transcript.
package smarthost

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/internal/smtpclient"
)

// Defaults for the Transport fields whose zero value means "the default".
const (
	DefaultMaxConnections = 4
	DefaultIdleTimeout    = 30 * time.Second
	DefaultDialTimeout    = 30 * time.Second
)

// ErrAuthFailed: the relay host refused the credentials (535), or the
// SASL exchange failed. Deliveries it stops are deferred.
var ErrAuthFailed = smtpclient.ErrAuthFailed

// ErrConfig: the Transport's settings cannot work (no Addr, a malformed
// EHLO name, a password without a user). Nothing is sent.
var ErrConfig = errors.New("smarthost: invalid configuration")

// Transport submits to the relay host at Addr. The zero value is not
// usable: Addr is required. It is safe for concurrent use; do not change
// its fields after first use.
type Transport struct {
	// Addr is the relay host, "host:port".
	Addr string
	// ImplicitTLS starts TLS with the connection (port 465). Otherwise the
	// session must upgrade with STARTTLS before anything else is sent. An
	// Addr with port 465 implies it.
	ImplicitTLS bool
	// TLSConfig is the base TLS configuration; nil → system roots, TLS 1.2
	// minimum. ServerName defaults to Addr's host. The certificate is
	// always verified unless the configuration says otherwise.
	TLSConfig *tls.Config

	// Username and Password authenticate the submission; "" → no AUTH.
	Username, Password string

	// Hostname is the name sent with EHLO; "" → the address literal of
	// the local end. A Source's Hostname takes its place for that source.
	Hostname string

	// MaxConnections caps the sessions open to the relay host at once.
	// 0 → DefaultMaxConnections.
	MaxConnections int
	// IdleTimeout is how long a session waits for the next message. 0 →
	// DefaultIdleTimeout; negative → closed after every message.
	IdleTimeout time.Duration
	// DialTimeout bounds the TCP connect. 0 → DefaultDialTimeout.
	DialTimeout time.Duration

	// Logger receives a record of each submission. nil → silent.
	Logger *slog.Logger
	// DebugWriter, if set, receives the SMTP transcript (never message
	// bodies or credentials).
	DebugWriter io.Writer

	once  sync.Once
	slots chan struct{}
	mu    sync.Mutex
	idle  []*session
	debug sync.Mutex
}

var _ relay.Transport = (*Transport)(nil)

// session is one authenticated session, idle in the pool or in use.
type session struct {
	cl     *smtpclient.Client
	source netip.Addr
	tls    relay.TLSInfo
	local  string
	timer  *time.Timer
}

// Validate checks the settings before the first message.
func (t *Transport) Validate() error {
	host, port, err := net.SplitHostPort(t.Addr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("%w: Addr %q: want host:port", ErrConfig, t.Addr)
	}
	if t.Hostname != "" {
		if err := smtpclient.CheckHelloName(t.Hostname); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if t.Username == "" && t.Password != "" {
		return fmt.Errorf("%w: Password without Username", ErrConfig)
	}
	return nil
}

// Deliver submits env in as many transactions as the relay host's
// recipient limit needs. A failure to connect or authenticate defers
// every recipient (the message stays queued until the setting or the
// host is fixed); the relay host's replies decide the rest.
func (t *Transport) Deliver(ctx context.Context, env *relay.Envelope) []relay.RecipientResult {
	out := make([]relay.RecipientResult, len(env.To))
	host, _, _ := net.SplitHostPort(t.Addr)
	fail := func(from int, err error) {
		for i := from; i < len(env.To); i++ {
			out[i] = relay.Failure(env.To[i], relay.Deferred, &relay.Error{Host: host, Message: err.Error(), Err: err})
		}
	}
	if err := t.Validate(); err != nil {
		fail(0, err)
		return out
	}
	s, err := t.get(ctx, env.Source)
	if err != nil {
		fail(0, err)
		return out
	}
	max := s.cl.RcptMax()
	if max <= 0 || max > 100 {
		max = 100
	}
	var dsn *smtpclient.DSN
	if env.EnvelopeID != "" {
		// As the Direct transport does (RFC 3461): the relay host passes
		// the parameters on, so a later DSN names the message.
		dsn = &smtpclient.DSN{EnvelopeID: env.EnvelopeID, Return: "HDRS", OriginalRecipient: true}
	}
	for start := 0; start < len(env.To); start += max {
		batch := env.To[start:min(start+max, len(env.To))]
		tx, err := s.cl.Send(ctx, &smtpclient.Envelope{From: env.From, To: batch, SMTPUTF8: env.SMTPUTF8, DSN: dsn}, env.Data)
		if tx == nil {
			fail(start, err)
			break
		}
		for j, r := range tx.Rcpts {
			i := start + j
			if r.Err == nil {
				out[i] = relay.RecipientResult{Recipient: env.To[i], Status: relay.Delivered,
					Code: tx.Final.Code, Enhanced: tx.Final.Enhanced, Message: tx.Final.Text()}
			} else {
				st := relay.Deferred
				if smtpclient.IsPermanent(r.Err) {
					st = relay.Bounced
				}
				out[i] = relay.Failure(env.To[i], st, r.Err)
			}
			out[i].MX, out[i].TLS, out[i].Source = host, s.tls, s.local
		}
		if s.cl.Err() != nil {
			fail(start+len(batch), s.cl.Err())
			break
		}
	}
	t.put(s)
	t.logger().Info("submitted", "smarthost", t.Addr, "domain", env.Domain, "recipients", len(env.To))
	return out
}

// CloseIdleConnections closes the sessions kept for the next message.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, s := range idle {
		if s.timer.Stop() {
			t.close(s)
		}
	}
}

func (t *Transport) init() {
	t.once.Do(func() {
		t.slots = make(chan struct{}, cmpOr(t.MaxConnections, DefaultMaxConnections))
	})
}

// get returns an idle session from source, or a new one, waiting for a
// slot under MaxConnections.
func (t *Transport) get(ctx context.Context, src relay.Source) (*session, error) {
	t.init()
	t.mu.Lock()
	for i := len(t.idle) - 1; i >= 0; i-- {
		s := t.idle[i]
		if s.source != src.Addr || !s.timer.Stop() {
			continue
		}
		t.idle = slices.Delete(t.idle, i, i+1)
		t.mu.Unlock()
		if s.cl.CheckIdle() == nil {
			return s, nil
		}
		t.close(s)
		t.mu.Lock()
		i = len(t.idle)
	}
	t.mu.Unlock()
	select {
	case t.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s, err := t.dial(ctx, src)
	if err != nil {
		<-t.slots
		return nil, err
	}
	return s, nil
}

// put keeps s for the next message, or closes it.
func (t *Transport) put(s *session) {
	idle := cmpOr(t.IdleTimeout, DefaultIdleTimeout)
	if s.cl.Err() != nil || idle < 0 {
		t.close(s)
		return
	}
	t.mu.Lock()
	s.timer = time.AfterFunc(idle, func() {
		t.mu.Lock()
		for i, x := range t.idle {
			if x == s {
				t.idle = slices.Delete(t.idle, i, i+1)
				break
			}
		}
		t.mu.Unlock()
		t.close(s)
	})
	t.idle = append(t.idle, s)
	t.mu.Unlock()
}

// close ends s politely and frees its slot.
func (t *Transport) close(s *session) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.cl.Quit(ctx) //nolint:errcheck // closing anyway
	<-t.slots
}

// dial opens, secures and authenticates a session.
func (t *Transport) dial(ctx context.Context, src relay.Source) (*session, error) {
	host, port, _ := net.SplitHostPort(t.Addr)
	d := net.Dialer{Timeout: cmpOr(t.DialTimeout, DefaultDialTimeout)}
	if src.Addr.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.Addr.AsSlice()}
	}
	conn, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, fmt.Errorf("smarthost: dial %s: %w", t.Addr, err)
	}
	cfg := t.tlsConfig(host)
	implicit := t.ImplicitTLS || port == "465"
	if implicit {
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("smarthost: TLS with %s: %w", t.Addr, err)
		}
		conn = tc
	}
	opts := &smtpclient.Options{}
	if t.DebugWriter != nil {
		opts.DebugWriter = &lockedWriter{mu: &t.debug, w: t.DebugWriter, prefix: host + " "}
	}
	cl, err := smtpclient.NewClient(ctx, conn, opts)
	if err != nil {
		return nil, fmt.Errorf("smarthost: %s: %w", t.Addr, err)
	}
	s := &session{cl: cl, source: src.Addr}
	if la, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		s.local = la.AddrPort().Addr().Unmap().String()
	} else if tc, ok := conn.(*tls.Conn); ok {
		if la, ok := tc.NetConn().LocalAddr().(*net.TCPAddr); ok {
			s.local = la.AddrPort().Addr().Unmap().String()
		}
	}
	if err := t.ready(ctx, s, src, cfg, implicit); err != nil {
		cl.Close()
		return nil, err
	}
	return s, nil
}

// ready says EHLO, upgrades to TLS when not implicit, and authenticates.
func (t *Transport) ready(ctx context.Context, s *session, src relay.Source, cfg *tls.Config, implicit bool) error {
	name := src.Hostname
	if name == "" {
		name = t.Hostname
	}
	if name == "" {
		name = "[" + s.local + "]"
		if a, err := netip.ParseAddr(s.local); err == nil && a.Is6() {
			name = "[IPv6:" + s.local + "]"
		}
	}
	cl := s.cl
	if err := cl.Hello(ctx, name); err != nil {
		return fmt.Errorf("smarthost: EHLO: %w", err)
	}
	if !implicit {
		if !cl.Supports("STARTTLS") {
			return fmt.Errorf("smarthost: %s does not offer STARTTLS: %w", t.Addr, relay.ErrTLSRequired)
		}
		if err := cl.StartTLS(ctx, cfg); err != nil {
			return fmt.Errorf("smarthost: STARTTLS: %w: %w", relay.ErrTLSRequired, err)
		}
	}
	st, _ := cl.TLSConnectionState()
	s.tls = relay.TLSInfo{Version: tls.VersionName(st.Version), Verified: !cfg.InsecureSkipVerify, Policy: "smarthost"}
	if t.Username == "" {
		return nil
	}
	a, err := t.mechanism(cl.AuthMechanisms())
	if err != nil {
		return err
	}
	if err := cl.Auth(ctx, a); err != nil {
		return fmt.Errorf("smarthost: %w", err)
	}
	return nil
}

// mechanism picks the strongest SASL mechanism both sides know.
func (t *Transport) mechanism(offered []string) (sasl.Client, error) {
	switch {
	case slices.Contains(offered, "SCRAM-SHA-256"):
		return newSCRAM(t.Username, t.Password)
	case slices.Contains(offered, "PLAIN"):
		return sasl.NewPlainClient("", t.Username, t.Password), nil
	case slices.Contains(offered, "LOGIN"):
		return sasl.NewLoginClient(t.Username, t.Password), nil
	}
	return nil, fmt.Errorf("smarthost: %s offers no mechanism this client knows (offered %v): %w", t.Addr, offered, ErrAuthFailed)
}

func (t *Transport) tlsConfig(host string) *tls.Config {
	var cfg *tls.Config
	if t.TLSConfig != nil {
		cfg = t.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

func (t *Transport) logger() *slog.Logger {
	if t.Logger != nil {
		return t.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// lockedWriter prefixes and serialises the transcripts of concurrent
// sessions.
type lockedWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := io.WriteString(l.w, l.prefix); err != nil {
		return 0, err
	}
	return l.w.Write(p)
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
