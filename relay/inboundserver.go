package relay

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// InboundOptions tune ServeInbound and ProcessInbound. The zero value
// serves without TLS, within the DefaultInbound limits.
type InboundOptions struct {
	// TLS, when set, is offered with STARTTLS (RFC 3207). Senders of
	// bounces use it opportunistically; none requires it.
	TLS *tls.Config
	// Hostname is the name in the greeting and the EHLO reply. "" → the
	// Client's Hostname, else the system's.
	Hostname string
	// MaxMessageSize bounds a message that comes back, in bytes: larger
	// ones are refused (552) and not read. 0 → DefaultInboundMaxSize; a
	// bounce with RET=HDRS (which the return paths ask for) is a few KiB.
	MaxMessageSize int64
	// MaxRecipients bounds the recipients of one message (452 beyond). 0
	// → DefaultInboundRecipients.
	MaxRecipients int
	// MaxSessions bounds the sessions served at once; one more is
	// answered 421 and closed. 0 → DefaultInboundSessions.
	MaxSessions int
	// CommandTimeout bounds the wait for each command and each block of
	// data. 0 → DefaultInboundCommandTimeout.
	CommandTimeout time.Duration
	// SessionTimeout bounds a whole session. 0 →
	// DefaultInboundSessionTimeout.
	SessionTimeout time.Duration
	// KeepUnmatched is how many unmatched messages Client.Unmatched
	// keeps. 0 → DefaultKeepUnmatched; negative → none.
	KeepUnmatched int
}

// Defaults for InboundOptions.
const (
	DefaultInboundMaxSize        = 10 << 20
	DefaultInboundRecipients     = 10
	DefaultInboundSessions       = 1000
	DefaultInboundCommandTimeout = time.Minute
	DefaultInboundSessionTimeout = 10 * time.Minute

	// inboundTransactions bounds the MAIL commands of one session and
	// inboundRcpts its RCPT commands, taken or refused, so that a
	// client cannot probe tokens at leisure.
	inboundTransactions = 100
	inboundRcpts        = 200
)

func (o *InboundOptions) maxSize() int64 {
	if o.MaxMessageSize > 0 {
		return o.MaxMessageSize
	}
	return DefaultInboundMaxSize
}

func orDefault[T int | time.Duration](v, d T) T {
	if v > 0 {
		return v
	}
	return d
}

// ServeInbound receives, on ln, the mail that comes back to BounceDomain:
// bounces, delay notices, complaints and auto-replies sent to the return
// paths, mail to the mailto unsubscribe addresses, and mail to postmaster
// and abuse. Each message is processed as ProcessInbound does. Every
// other recipient is refused at RCPT (550 5.1.1), so the server is never
// a relay, and a return path whose token does not verify is refused as
// well. It serves until ctx ends, then closes the listener and every
// session and returns ctx.Err(); it returns at once with a configuration
// error (ErrInvalidConfig) when BounceDomain or LinkKeys are missing.
//
// Sessions, message size, recipients, commands and time are bounded by
// Client.Inbound. A message is acknowledged only once it has been
// processed: when the suppression list cannot be written, the sender is
// told 451 and tries again.
func (c *Client) ServeInbound(ctx context.Context, ln net.Listener) error {
	if ln == nil {
		return fmt.Errorf("%w: nil listener", ErrInvalidConfig)
	}
	if c.BounceDomain == "" {
		return fmt.Errorf("%w: ServeInbound needs Client.BounceDomain", ErrInvalidConfig)
	}
	if err := c.checkBounceDomain(); err != nil {
		return err
	}
	o := &c.Inbound
	s := smtp.NewServer(&inboundBackend{c: c, ctx: ctx})
	s.Domain = o.Hostname
	if s.Domain == "" {
		s.Domain = c.Hostname
	}
	if s.Domain == "" {
		s.Domain, _ = os.Hostname()
	}
	s.TLSConfig = o.TLS
	s.MaxMessageBytes = o.maxSize()
	s.MaxRecipients = orDefault(o.MaxRecipients, DefaultInboundRecipients)
	s.ReadTimeout = orDefault(o.CommandTimeout, DefaultInboundCommandTimeout)
	s.WriteTimeout = s.ReadTimeout
	s.MaxLineLength = 2000
	s.EnableSMTPUTF8 = true
	s.ErrorLog = log.New(io.Discard, "", 0)
	lim := &limitListener{Listener: ln, max: int64(orDefault(o.MaxSessions, DefaultInboundSessions)),
		session: orDefault(o.SessionTimeout, DefaultInboundSessionTimeout),
		bytes:   4*s.MaxMessageBytes + 1<<20}
	done := make(chan error, 1)
	go func() { done <- s.Serve(lim) }()
	select {
	case <-ctx.Done():
		s.Close()
		// Serve may not have registered the listener with s yet.
		lim.Close()
		<-done
		return ctx.Err()
	case err := <-done:
		s.Close()
		return err
	}
}

// inboundBackend makes a session per connection.
type inboundBackend struct {
	c   *Client
	ctx context.Context
}

func (b *inboundBackend) NewSession(conn *smtp.Conn) (smtp.Session, error) {
	return &inboundSession{c: b.c, ctx: b.ctx}, nil
}

// inboundSession is one SMTP session of ServeInbound.
type inboundSession struct {
	c     *Client
	ctx   context.Context
	from  string
	rcpts []inboundAddr
	mails int // MAIL commands so far
	tried int // RCPT commands so far
}

var (
	errInboundTooMany = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many commands in one session"}
	errInboundTemp    = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Cannot process the message now, try again later"}
)

func (s *inboundSession) Mail(from string, _ *smtp.MailOptions) error {
	s.mails++
	if s.mails > inboundTransactions {
		return errInboundTooMany
	}
	s.from, s.rcpts = from, nil
	return nil
}

func (s *inboundSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.tried++
	if s.tried > inboundRcpts {
		return errInboundTooMany
	}
	a, err := s.c.inboundRecipient(to)
	if err != nil || a.addr == "" {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such recipient here; this server takes only mail for its own return paths"}
	}
	s.rcpts = append(s.rcpts, a)
	return nil
}

func (s *inboundSession) Data(r io.Reader) error {
	var b bytes.Buffer
	// RFC 5321 §4.4: the final delivery adds Return-Path, which tells a
	// bounce (from <>) from other mail.
	fmt.Fprintf(&b, "Return-Path: <%s>\r\n", s.from)
	if _, err := b.ReadFrom(r); err != nil {
		switch {
		case errors.Is(err, smtp.ErrDataTooLarge):
			return err
		case errors.Is(err, smtp.ErrTooLongLine):
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Line too long (RFC 5322 §2.1.1)"}
		}
		s.c.logger().Warn("inbound: reading a message failed", "err", err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Reading the message failed"}
	}
	data := b.Bytes()
	rep, err := parseInbound(data)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "The message cannot be read as mail"}
	}
	for _, a := range s.rcpts {
		res, err := s.c.processReport(s.ctx, a, rep, data)
		switch {
		case err != nil:
			s.c.logger().Warn("inbound: processing failed", "err", err, "rcpt", a.addr)
			return errInboundTemp
		}
		s.c.logger().Info("inbound", "id", res.ID, "kind", res.Kind.String(), "match", res.Match,
			"message", res.MessageID, "rcpt", a.addr, "from", s.from)
	}
	return nil
}

func (s *inboundSession) Reset() { s.from, s.rcpts = "", nil }

func (s *inboundSession) Logout() error { return nil }

// limitListener bounds the connections served at once, the time and the
// bytes of each.
type limitListener struct {
	net.Listener
	max     int64
	active  atomic.Int64
	session time.Duration
	bytes   int64
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.active.Add(1) > l.max {
			l.active.Add(-1)
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(conn, "421 4.3.2 Too many sessions, try again later\r\n")
			conn.Close()
			continue
		}
		lc := &limitConn{Conn: conn, l: l, left: l.bytes}
		lc.timer = time.AfterFunc(l.session, func() { conn.Close() })
		return lc, nil
	}
}

// limitConn is a session's connection: it closes at the session's
// deadline or once it has read its budget of bytes.
type limitConn struct {
	net.Conn
	l     *limitListener
	timer *time.Timer
	once  sync.Once
	left  int64 // bytes the session may still read (read by one goroutine)
}

func (c *limitConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errors.New("relay: inbound session read its budget")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *limitConn) Close() error {
	c.once.Do(func() {
		c.timer.Stop()
		c.l.active.Add(-1)
	})
	return c.Conn.Close()
}
