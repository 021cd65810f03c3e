package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/mxrelay/mxrelay/relay/internal/smtpclient"
)

// tryHost delivers to one MX host. It reports true when a session reached
// the mail transaction, whose per-recipient results are then final for this
// attempt; false sends the caller on to the next host.
func (a *attempt) tryHost(ctx context.Context, host string) bool {
	c := a.t
	allowed, pol := a.route(ctx, host, nil)
	if len(allowed) == 0 {
		return false
	}

	d := c.pool.destFor(host, c.limitsFor(host), c.destinationIdleTime(), c.SharedLimits)
	defer c.pool.release(d)
	if until, cooling := d.coolingUntil(time.Now()); cooling {
		why := "the host pushed back"
		if r, _ := d.ruleInForce(time.Now()); r != nil && r.Suspend {
			why = "suspended by back-off rule " + r.Name
		}
		a.lastErr = &Error{Host: host, Enhanced: "4.4.5",
			Message: why + "; not connecting again before " + until.UTC().Format(time.RFC3339)}
		return false
	}
	if err := a.sharedTurn(ctx, d); err != nil {
		a.lastErr = err
		return false
	}
	if err := d.waitTurn(ctx); err != nil {
		var slow *errRuleRate
		if errors.As(err, &slow) {
			err = &Error{Host: host, Enhanced: "4.4.5", Message: slow.Error(), Err: err}
		}
		a.lastErr = err
		return false
	}
	key := poolKey{host: host, source: a.source.Addr, policy: pol.name()}
	// A reused session the server has meanwhile closed fails before any
	// reply: then the message goes on a new connection, once.
	for try := range 2 {
		s, err := c.pool.take(ctx, d, key, try > 0)
		if err != nil {
			a.lastErr = err
			return false
		}
		if s == nil {
			if err := a.sharedSlot(ctx, d); err != nil {
				c.pool.unreserve(d) // no shared slot was taken: none to give back
				a.lastErr = err
				return false
			}
			if s, err = a.dial(ctx, d, allowed, pol); err != nil {
				c.pool.drop(d)
				a.lastErr = err
				return false
			}
			s.key = key
		}
		done := a.transact(ctx, s, d)
		c.pool.put(d, s, c.idleTimeout())
		if done {
			return true
		}
	}
	return false
}

// route finds what a session with host would need before any connection:
// the addresses to dial, in order, and the TLS policy. It counts the
// addresses against the attempt's cap and records why a host or address
// is left out in a.lastErr, and, when hp is not nil (a dry run), in hp.
func (a *attempt) route(ctx context.Context, host string, hp *HostPlan) ([]netip.Addr, tlsPolicy) {
	c := a.t
	r := c.resolver()
	log := a.log
	if !quiet(log) {
		log = log.With("mx", host)
	}
	skip := func(err *Error) ([]netip.Addr, tlsPolicy) {
		a.lastErr = err
		if hp != nil {
			hp.Skipped = err.Message
		}
		return nil, tlsPolicy{}
	}

	addrs, addrSecure, err := r.LookupIPSecure(ctx, host)
	if err != nil {
		a.addrsLeft--
		log.Info("address lookup failed", "err", err)
		return skip(&Error{Host: host, Enhanced: "4.4.3", Message: "address lookup: " + err.Error(), Err: err})
	}
	pol := a.policy
	// DANE only down a DNSSEC-authenticated chain: the MX records and this
	// host's addresses (RFC 7672 §2.2). Otherwise TLSA is not looked up at
	// all, so an unsigned zone whose servers fail TLSA queries is
	// delivered with opportunistic TLS, as Postfix does.
	if !c.DisableDANE && a.mxSecure && addrSecure {
		// SMTP's TLSA records live at _25._tcp.<host> (RFC 7672 §2.2.3),
		// whatever port a test dials.
		recs, authenticated, err := r.LookupTLSA(ctx, host, 25)
		if err != nil {
			// RFC 7672 §2.1.1: a failed TLSA lookup is not "no TLSA"; the
			// host cannot be used securely now.
			log.Info("TLSA lookup failed", "err", err)
			return skip(&Error{Host: host, Enhanced: "4.7.5", Message: "TLSA lookup failed: " + err.Error(), Err: err})
		}
		if authenticated {
			pol.dane = usableTLSA(recs)
		}
	}
	if hp != nil {
		hp.TLS = a.planTLS(pol, a.mxSecure && addrSecure)
	}

	var allowed []netip.Addr
	for _, ip := range addrs {
		if !sameFamily(a.source.Addr, ip) {
			if hp != nil {
				hp.Addrs = append(hp.Addrs, AddrPlan{Addr: ip, Refused: "not the source address's family"})
			}
			continue
		}
		if a.addrsLeft <= 0 {
			if hp != nil {
				hp.Addrs = append(hp.Addrs, AddrPlan{Addr: ip, Refused: "over MaxMXAddresses"})
			}
			continue
		}
		a.addrsLeft--
		a.tried++
		if !c.AllowPrivateAddrs {
			if err := checkDestination(ip); err != nil {
				a.forbidden++
				log.Warn("refusing MX address", "addr", ip, "err", err)
				a.lastErr = &Error{Host: host, Message: err.Error(), Err: err}
				a.trace.connected(host, ip, err)
				if hp != nil {
					hp.Addrs = append(hp.Addrs, AddrPlan{Addr: ip, Refused: err.Error()})
				}
				continue
			}
		}
		allowed = append(allowed, ip)
		if hp != nil {
			hp.Addrs = append(hp.Addrs, AddrPlan{Addr: ip})
		}
	}
	return allowed, pol
}

// dial connects to the first of addrs that answers, within the connect
// budget split across them.
func (a *attempt) dial(ctx context.Context, d *destination, addrs []netip.Addr, pol tlsPolicy) (*session, error) {
	budget := a.t.ConnectTimeout
	if budget <= 0 {
		budget = DefaultConnectTimeout
	}
	deadline := time.Now().Add(budget)
	var last error
	for i, ip := range addrs {
		// Split what is left of the budget across the addresses left.
		per := time.Until(deadline) / time.Duration(len(addrs)-i)
		if per <= 0 || a.sessionsLeft <= 0 {
			break
		}
		s, err := a.connect(ctx, d, ip, per, pol, nil)
		if err == nil {
			return s, nil
		}
		last = err
	}
	if last == nil {
		last = &Error{Host: d.host, Message: "connect budget used up"}
	}
	return nil, last
}

// session is one SMTP session ready for a transaction.
type session struct {
	cl   *smtpclient.Client
	host string
	addr netip.Addr
	tls  TLSInfo

	local netip.Addr // the local end of the connection

	key   poolKey
	uses  int         // messages sent over it
	timer *time.Timer // closes it when idle too long (while in the pool)
	// idleSince is when it went back to the pool.
	idleSince time.Time
	// retire: close it after this message, not back to the pool (a
	// back-off rule suspended its host).
	retire bool
}

// healthy checks an idle session with NOOP before it is reused.
func (s *session) healthy(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return s.cl.Noop(ctx) == nil
}

// quit ends the session politely, within a short time.
func (s *session) quit() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.cl.Quit(ctx)
}

// connect dials ip, reads the greeting, says EHLO and applies the TLS
// policy pol. fallback, when not nil, is the handshake error of an earlier
// connection to ip under opportunistic TLS: this one skips STARTTLS and
// says so in its TLSInfo (the transcript has said it already).
func (a *attempt) connect(ctx context.Context, d *destination, ip netip.Addr, budget time.Duration, pol tlsPolicy, fallback error) (*session, error) {
	c := a.t
	host := d.host
	log := a.log
	if !quiet(log) {
		log = log.With("mx", host, "addr", ip)
	}
	opts := c.sessionOptions(host)
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(c.port()))
	// The greeting must come within the budget too: a server that accepts
	// and never speaks must not hold up the next address for 5 minutes.
	gctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	dialer := net.Dialer{Timeout: budget}
	if a.source.Addr.IsValid() {
		dialer.LocalAddr = &net.TCPAddr{IP: a.source.Addr.AsSlice()}
	}
	conn, err := dialer.DialContext(gctx, "tcp", addr)
	var cl *smtpclient.Client
	if err == nil {
		cl, err = smtpclient.NewClient(gctx, conn, opts)
	}
	a.trace.connected(host, ip, err)
	if err == nil {
		a.sessionsLeft--
	}
	if err != nil {
		log.Info("connect failed", "err", err)
		if pushBack(err) {
			d.pushedBack(time.Now())
			c.shareBackoff(d)
		}
		a.backoff(ctx, d, err)
		return nil, hostError(host, "connect", err)
	}
	name := a.source.Hostname
	if name == "" {
		name = c.helloName()
	}
	if name == "" {
		if la, ok := conn.LocalAddr().(*net.TCPAddr); ok {
			name = addressLiteral(la.AddrPort().Addr())
		}
	}
	if err := cl.Hello(ctx, name); err != nil {
		cl.Close()
		log.Info("EHLO failed", "err", err)
		a.backoff(ctx, d, err)
		return nil, hostError(host, "EHLO", err)
	}
	s := &session{cl: cl, host: host, addr: ip}
	if la, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		s.local = la.AddrPort().Addr().Unmap()
	}
	required := pol.required()
	switch {
	case fallback != nil:
		s.tls.Fallback = "after handshake error: " + fallback.Error()
	case cl.Supports("STARTTLS"):
		info := TLSInfo{Policy: pol.name()}
		cfg := pol.config(c.TLSConfig, host, &info)
		if err := cl.StartTLS(ctx, cfg); err != nil {
			cl.Close()
			a.trace.tlsDone(host, info, err)
			log.Info("STARTTLS failed", "err", err, "policy", info.Policy)
			if required {
				return nil, &Error{Host: host, Command: "STARTTLS", Enhanced: "4.7.5",
					Message: "TLS required by " + pol.name() + " policy: " + err.Error(), Err: errors.Join(ErrTLSRequired, err)}
			}
			if errors.Is(err, smtpclient.ErrTLSInjection) {
				return nil, hostError(host, "STARTTLS", err)
			}
			// Opportunistic TLS: a failed handshake is retried without
			// TLS on the same address, as Postfix does.
			c.debugf(host, "[STARTTLS failed: %v; connecting again without TLS]", err)
			return a.connect(ctx, d, ip, budget, pol, err)
		}
		st, _ := cl.TLSConnectionState()
		info.Version = tls.VersionName(st.Version)
		s.tls = info
		a.trace.tlsDone(host, info, nil)
	case required:
		cl.Close()
		err := &Error{Host: host, Command: "STARTTLS", Enhanced: "4.7.5",
			Message: "server does not offer STARTTLS, TLS required by " + pol.name() + " policy", Err: ErrTLSRequired}
		a.trace.tlsDone(host, TLSInfo{Policy: pol.name()}, err)
		return nil, err
	}
	if s.tls.Version == "" {
		s.tls.Policy = pol.name()
		a.trace.tlsDone(host, s.tls, nil)
	}
	return s, nil
}

// debugf writes a line of the library's own to the transcript, marked as
// such, between the host's commands and replies.
func (c *Direct) debugf(host, format string, args ...any) {
	if c.DebugWriter == nil {
		return
	}
	c.debugMu.Lock()
	defer c.debugMu.Unlock()
	fmt.Fprintf(c.DebugWriter, "%s "+format+"\n", append([]any{host}, args...)...)
}

// sessionOptions builds the smtpclient options from the Client's fields.
func (c *Direct) sessionOptions(host string) *smtpclient.Options {
	t := c.Timeouts
	o := &smtpclient.Options{
		GreetingTimeout:  t.Greeting,
		CommandTimeout:   t.Command,
		MailTimeout:      t.Mail,
		RcptTimeout:      t.Rcpt,
		DataInitTimeout:  t.DataInit,
		DataBlockTimeout: t.DataBlock,
		DataTermTimeout:  t.DataTerm,
	}
	if c.DebugWriter != nil {
		o.DebugWriter = &prefixWriter{prefix: host + " ", w: lockedWriter{mu: &c.debugMu, w: c.DebugWriter}}
	}
	return o
}

// pushBack reports a failure that says the destination wants less of us:
// a refused or timed-out connection, or a 4xx greeting.
func pushBack(err error) bool {
	var se *smtpclient.Error
	if errors.As(err, &se) {
		return se.Code >= 400 && se.Code < 500
	}
	var ne net.Error
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &ne) && ne.Timeout())
}

// addressLiteral formats ip for EHLO (RFC 5321 §4.1.3).
func addressLiteral(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is6() {
		return "[IPv6:" + ip.String() + "]"
	}
	return "[" + ip.String() + "]"
}

// hostError wraps a session failure with the host it came from.
func hostError(host, step string, err error) error {
	var se *smtpclient.Error
	if errors.As(err, &se) {
		return &Error{Host: host, Command: se.Command, Code: se.Code, Enhanced: se.Enhanced,
			Message: se.Message, Permanent: se.Permanent(), Err: err}
	}
	return &Error{Host: host, Command: step, Message: err.Error(), Err: err}
}

// prefixWriter puts a prefix before every line of a transcript.
type prefixWriter struct {
	prefix string
	w      interface{ Write([]byte) (int, error) }
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf[:0], p.prefix...)
	p.buf = append(p.buf, b...)
	if _, err := p.w.Write(p.buf); err != nil {
		return 0, err
	}
	return len(b), nil
}
