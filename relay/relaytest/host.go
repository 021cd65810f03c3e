package relaytest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// TLSMode says what a Host does about STARTTLS.
type TLSMode int

const (
	// TLSValid: STARTTLS with a certificate for the host's name signed by
	// the harness's test CA, which the Server's Client trusts.
	TLSValid TLSMode = iota
	// TLSNone: no STARTTLS.
	TLSNone
	// TLSSelfSigned: STARTTLS with a self-signed certificate (unverifiable,
	// as many real MX hosts have).
	TLSSelfSigned
	// TLSWrongName: STARTTLS with a test-CA certificate for another name.
	TLSWrongName
	// TLSBroken: STARTTLS is offered, but the handshake always fails.
	TLSBroken
)

// Reply is a scripted SMTP reply. With Drop set, the host closes the
// connection instead of replying.
type Reply struct {
	Code     int    // e.g. 451
	Enhanced string // e.g. "4.3.0"; empty → none
	Text     string // the reply text
	Drop     bool   // close the connection instead of replying
}

// HostConfig scripts one MX host. The zero value is a well-behaved server
// with TLS from the test CA and every extension on.
type HostConfig struct {
	TLS                 TLSMode // the certificate STARTTLS presents, or none
	HideSTARTTLS        bool    // TLS is configured but not offered
	NoPipelining        bool    // do not offer PIPELINING (RFC 2920)
	NoChunking          bool    // do not offer CHUNKING, so no BDAT (RFC 3030)
	No8BitMIME          bool    // do not offer 8BITMIME (RFC 6152)
	NoSMTPUTF8          bool    // do not offer SMTPUTF8 (RFC 6531)
	RequireTLSExtension bool    // offer REQUIRETLS (RFC 8689) once in TLS
	DSN                 bool    // offer DSN (RFC 3461)
	MaxSize             int64   // SIZE limit; 0 → no limit announced
	MaxRecipients       int     // LIMITS RCPTMAX; 0 → none

	// Greeting, when set, is written instead of the 220 greeting, as is
	// (lines end in CRLF), and the connection is then closed: a
	// "421 4.3.2 busy\r\n", or something hostile such as a reply line of a
	// megabyte or ten thousand continuation lines.
	Greeting string
	// NoGreeting: accept the connection and never say anything.
	NoGreeting bool
	// ReplyDelay is waited before every reply line.
	ReplyDelay time.Duration
	// InjectAfterSTARTTLS is written in plaintext right after the 220 to
	// STARTTLS, as a man in the middle would (CVE-2011-0411).
	InjectAfterSTARTTLS string

	// MailReply, if not nil, answers MAIL FROM.
	MailReply func(from string) *Reply
	// RcptReply, if not nil, answers each RCPT TO; a nil *Reply accepts.
	RcptReply func(rcpt string) *Reply
	// DropAfterMessages, when positive, makes the host close a connection
	// without a word at the first command after that many messages, as a
	// server does that timed out an idle connection.
	DropAfterMessages int

	// DataReply, if not nil, answers the end of data; a nil *Reply accepts
	// with "250 2.0.0 accepted by <host>", a 2xx Reply accepts with its
	// text.
	// A message answered with Drop is recorded with Dropped set: the
	// server got it whole but the client never heard so.
	DataReply func(m *Message) *Reply
	// ExtraReply, when set, is written (as is, lines ending in CRLF) right
	// after the reply to every message's data, unasked for, as a server
	// out of step with its client would.
	ExtraReply string
}

// Message is what a Host received: the envelope, the bytes and how.
type Message struct {
	Host       string               // the MX host name that received it
	Addr       string               // the address it listened on
	Helo       string               // the client's EHLO/HELO name
	RemoteAddr string               // the client's address, "127.0.0.1:40000"
	From       string               // MAIL FROM
	To         []string             // accepted RCPT TO, in order
	Data       []byte               // the message as received (after dot-unstuffing)
	TLS        *tls.ConnectionState // the session's TLS state; nil in plaintext
	Chunked    bool                 // sent with BDAT rather than DATA
	Pipelined  bool                 // MAIL arrived with further commands behind it
	Body8Bit   bool                 // BODY=8BITMIME
	SMTPUTF8   bool                 // the SMTPUTF8 parameter on MAIL
	RequireTLS bool                 // the REQUIRETLS parameter on MAIL (RFC 8689)
	Size       int64                // SIZE= parameter, 0 if none
	// EnvelopeID and Return are the DSN parameters ENVID and RET of MAIL
	// (RFC 3461), and OriginalRecipients the ORCPT of each accepted RCPT
	// ("" where none), when the host offers DSN.
	EnvelopeID         string
	Return             string
	OriginalRecipients []string
	Dropped            bool      // the host closed the connection instead of replying 250
	Received           time.Time // when the end of data arrived
}

// Host is one scripted MX host on its own loopback address.
type Host struct {
	Name string // DNS name, e.g. "mx1.example.test"
	IP   string // e.g. "127.0.0.2"

	srv  *Server
	cfg  HostConfig
	tlsc *tls.Config
	ln   net.Listener
	smtp *smtp.Server

	accepted  chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once

	mu     sync.Mutex
	conns  map[*conn]struct{}
	count  int // connections accepted
	active int // connections open now
	peak   int // most connections open at once
}

func (h *Host) tlsConfig() *tls.Config { return h.tlsc }

// Config returns the host's script.
func (h *Host) Config() HostConfig {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cfg
}

// Certificate returns the host's TLS certificate, nil for TLSNone; for
// publishing TLSA records in DANE tests.
func (h *Host) Certificate() *x509.Certificate {
	if h.tlsc == nil || len(h.tlsc.Certificates) == 0 {
		return nil
	}
	return h.tlsc.Certificates[0].Leaf
}

// PeakConnections returns the most connections that were open at once.
func (h *Host) PeakConnections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.peak
}

// Connections returns how many connections the host has accepted.
func (h *Host) Connections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

func (h *Host) serve() {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		h.count++
		h.active++
		h.peak = max(h.peak, h.active)
		h.mu.Unlock()
		switch {
		case h.cfg.NoGreeting:
			go h.silent(c)
		case h.cfg.Greeting != "":
			go func() {
				c.SetDeadline(time.Now().Add(time.Minute))
				io.WriteString(c, h.cfg.Greeting)
				// Half-close, then wait for the client to go, so the
				// greeting is not lost to a reset.
				if tc, ok := c.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				io.Copy(io.Discard, io.LimitReader(c, 1<<20))
				c.Close()
				h.closed1()
			}()
		default:
			wc := newConn(c, h)
			h.mu.Lock()
			h.conns[wc] = struct{}{}
			h.mu.Unlock()
			select {
			case h.accepted <- wc:
			case <-h.closed:
				c.Close()
				return
			}
		}
	}
}

// silent holds a connection open without a word until the client leaves or
// the host closes.
func (h *Host) silent(c net.Conn) {
	io.Copy(io.Discard, c)
	c.Close()
	h.closed1()
}

// closed1 counts a connection that ended.
func (h *Host) closed1() {
	h.mu.Lock()
	h.active--
	h.mu.Unlock()
}

func (h *Host) close() {
	h.closeOnce.Do(func() { close(h.closed) })
	h.ln.Close()
	h.smtp.Close()
	h.mu.Lock()
	conns := make([]*conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// chanListener is what go-smtp serves: the connections the Host accepted
// and wrapped, handed over one by one.
type chanListener struct{ h *Host }

func (l chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.h.accepted:
		return c, nil
	case <-l.h.closed:
		return nil, net.ErrClosed
	}
}

func (l chanListener) Close() error   { return nil }
func (l chanListener) Addr() net.Addr { return l.h.ln.Addr() }

// backend is the go-smtp Backend of one Host.
type backend struct{ h *Host }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	wc, _ := c.Conn().(*conn)
	return &session{h: b.h, c: c, wc: wc}, nil
}

type session struct {
	h  *Host
	c  *smtp.Conn
	wc *conn

	from  string
	opts  smtp.MailOptions
	to    []string
	orcpt []string
	msgs  int // messages received on this connection
}

func (s *session) Reset()        { s.from, s.to, s.orcpt = "", nil, nil }
func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if n := s.h.cfg.DropAfterMessages; n > 0 && s.msgs >= n {
		s.c.Conn().Close()
		return errors.New("relaytest: connection dropped")
	}
	if f := s.h.cfg.MailReply; f != nil {
		if err := s.reply(f(from)); err != nil {
			return err
		}
	}
	s.from = from
	if opts != nil {
		s.opts = *opts
	}
	s.to, s.orcpt = nil, nil
	return nil
}

func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if f := s.h.cfg.RcptReply; f != nil {
		if err := s.reply(f(to)); err != nil {
			return err
		}
	}
	s.to = append(s.to, to)
	orcpt := ""
	if opts != nil {
		orcpt = opts.OriginalRecipient
	}
	s.orcpt = append(s.orcpt, orcpt)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := &Message{
		Host:       s.h.Name,
		Addr:       s.h.IP,
		Helo:       s.c.Hostname(),
		RemoteAddr: s.c.Conn().RemoteAddr().String(),
		From:       s.from,
		To:         append([]string(nil), s.to...),
		Data:       data,
		Body8Bit:   s.opts.Body == smtp.Body8BitMIME,
		SMTPUTF8:   s.opts.UTF8,
		RequireTLS: s.opts.RequireTLS,
		Size:       s.opts.Size,
		Received:   time.Now(),

		EnvelopeID:         s.opts.EnvelopeID,
		Return:             string(s.opts.Return),
		OriginalRecipients: append([]string(nil), s.orcpt...),
	}
	if s.wc != nil {
		m.TLS = s.wc.State()
		m.Chunked, m.Pipelined = s.wc.txInfo()
	}
	var rep *Reply
	if f := s.h.cfg.DataReply; f != nil {
		rep = f(m)
	}
	if rep != nil && rep.Drop {
		m.Dropped = true
		s.h.srv.record(m)
		s.c.Conn().Close()
		return errors.New("relaytest: connection dropped")
	}
	if rep != nil && rep.Code >= 300 {
		return s.reply(rep)
	}
	s.msgs++
	s.h.srv.record(m)
	if x := s.h.cfg.ExtraReply; x != "" && s.wc != nil {
		s.wc.afterNextReply(x)
	}
	// go-smtp's own acceptance says "OK: queued", which reads like the
	// sender's queue in a result; say who took the message instead (or
	// what a 2xx DataReply says).
	ok := &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "accepted by " + s.h.Name}
	if rep != nil && rep.Code >= 200 {
		ok.Code, ok.Message = rep.Code, rep.Text
		if rep.Enhanced != "" {
			ok.EnhancedCode = parseEnhanced(rep.Enhanced)
		}
	}
	return ok
}

// reply turns a scripted Reply into what go-smtp sends: nil for a 2xx.
func (s *session) reply(r *Reply) error {
	if r == nil || (r.Code >= 200 && r.Code < 300 && !r.Drop) {
		return nil
	}
	if r.Drop {
		s.c.Conn().Close()
		return errors.New("relaytest: connection dropped")
	}
	ec := smtp.NoEnhancedCode
	if r.Enhanced != "" {
		ec = parseEnhanced(r.Enhanced)
	}
	return &smtp.SMTPError{Code: r.Code, EnhancedCode: ec, Message: r.Text}
}

func parseEnhanced(s string) smtp.EnhancedCode {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return smtp.NoEnhancedCode
	}
	var ec smtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return smtp.NoEnhancedCode
		}
		ec[i] = n
	}
	return ec
}

// String describes the message's envelope, for test failure output.
func (m *Message) String() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s from=<%s> to=%v %d bytes", m.Host, m.From, m.To, len(m.Data))
	if m.TLS != nil {
		b.WriteString(" tls")
	}
	return b.String()
}
