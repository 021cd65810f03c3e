package relay

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay/internal/smtpclient"
)

// Defaults for the Direct fields whose zero value means "the default".
const (
	DefaultConnectTimeout = 30 * time.Second
	DefaultMaxMXAddresses = 5
	DefaultMaxMXSessions  = 2
)

// Direct is the Transport that delivers straight to the recipients' mail
// servers: MX resolution, the destination address policy, the TLS policy
// (opportunistic, MTA-STS, DANE, RequireTLS), a pool of sessions per MX
// host, and traffic shaping. The zero value is ready to use. A Direct is
// safe for concurrent use and may serve several Clients (they then share
// its connections and limits); do not change its fields after first use.
type Direct struct {
	// Hostname is the name sent with EHLO. Empty → os.Hostname(); when that
	// is empty, "localhost" or not a valid EHLO name, the address literal
	// of the local end of each connection ("[192.0.2.1]"), which is never
	// wrong. A Source's Hostname takes its place for that source.
	Hostname string
	// Resolver finds MX hosts, addresses, TLSA records and MTA-STS
	// policies. nil → mx.DefaultResolver.
	Resolver *mx.Resolver
	// Port is the SMTP port dialled on every MX host. 0 → 25; tests use
	// another.
	Port int
	// AllowPrivateAddrs lets the transport dial MX addresses that are
	// loopback, private, link-local, unspecified, multicast or otherwise
	// not a public mail server. Keep it false in production: recipient
	// domains are chosen by whoever types an address, and could point the
	// client at internal services.
	AllowPrivateAddrs bool

	// TLSConfig is the base TLS configuration for STARTTLS (root CAs,
	// minimum version, client certificates). ServerName and the
	// verification callbacks are set per connection. nil → system roots,
	// TLS 1.2 minimum.
	TLSConfig *tls.Config
	// RequireTLS demands a TLS session with a verified certificate from
	// every host; a host that cannot give one is skipped and the
	// recipients are deferred, never sent in plaintext.
	RequireTLS bool
	// DisableMTASTS turns off MTA-STS (RFC 8461) policy lookups.
	DisableMTASTS bool
	// DisableDANE turns off DANE (RFC 7672). Without it, TLSA records are
	// looked up only for MX hosts reached through DNSSEC-authenticated MX
	// and address answers (which needs a validating resolver).
	DisableDANE bool

	// ConnectTimeout is the budget for reaching one MX host, split across
	// its addresses. 0 → DefaultConnectTimeout. Every step is also bounded
	// by the context of the call.
	ConnectTimeout time.Duration
	// Timeouts bound each step of the SMTP conversation. Zero fields → the
	// RFC 5321 §4.5.3.2 values (5 minutes for the greeting, MAIL and RCPT,
	// 2 for DATA, 3 per data block, 10 after the final dot), which suit
	// slow receivers; a deadline on the context tightens them.
	Timeouts Timeouts

	// Limits shape the traffic to every MX host: connections, messages per
	// connection, messages per minute. Zero fields → the defaults
	// (DefaultMaxConnections, DefaultMaxMessagesPerConnection, no rate
	// limit). Hosts that push back (421, refused connections, 4xx
	// greetings) are given fewer connections and a pause, and win them
	// back as messages go through.
	Limits DestinationLimits
	// DestinationLimits override Limits for MX hosts matching a pattern:
	// an exact host name, or "*.example.com" for every host below
	// example.com. The longest matching pattern wins.
	DestinationLimits map[string]DestinationLimits
	// IdleTimeout is how long a connection is kept open after a message
	// for the next one to the same MX host. 0 → DefaultIdleTimeout;
	// negative → every connection is closed after its message.
	IdleTimeout time.Duration
	// DestinationIdleTime is how long the state of an MX host (its
	// shaping and automatic back-off) is kept after its last message,
	// so that a host that pushed back is not hit at full speed by the
	// next one; then it is freed, so that memory follows the hosts in
	// use rather than every host ever mailed. A host under a back-off or
	// back-off rule, or with a connection open, is kept until that ends,
	// whatever this says. 0 → DefaultDestinationIdleTime (10 minutes).
	DestinationIdleTime time.Duration
	// SharedLimits, when set, makes the limits of each MX host hold
	// across every process that shares the store: the connection cap
	// (a slot per connection), MessagesPerMinute and the back-off after
	// push-backs and back-off rules, as if one process sent for all.
	// Set it to the queue.LimitStore the instances share, a
	// *pgstore.Store; nil → the limits are this process's alone. A
	// Client without a Transport uses its Store when that is a
	// LimitStore.
	//
	// The cost is one round trip to the store per new connection (not
	// per message: a connection carries MaxMessagesPerConnection), and
	// one per batch of turns of a rate (a quarter of a second's worth,
	// at most the burst). The connection cap is exact; the slots of a
	// process that died end after the store's slot lifetime
	// (pgstore.DefaultSlotTTL, 30 s). Turns not used within a second are
	// dropped, so the rate across processes stays within the limit plus
	// one burst. A push-back or a back-off rule seen by one process is
	// written at once and read by the others at their next new
	// connection to the host; their sessions already open carry on until
	// they close. An attempt waits at most 2 minutes for a slot held by
	// other processes, then its recipients are deferred; so are they
	// while the store cannot be reached.
	SharedLimits queue.LimitStore

	// MaxMXAddresses caps the MX addresses one delivery attempt for a
	// domain considers, across all its MX hosts in preference order:
	// addresses dialled, refused by the destination policy, and MX hosts
	// whose address lookup failed each count one. A domain is chosen by
	// whoever types an address and can list hundreds of hosts with dozens
	// of addresses each; the cap bounds the dials and DNS lookups one
	// message can cause. 0 → DefaultMaxMXAddresses (5, as Postfix's
	// smtp_mx_address_limit); negative → no cap.
	MaxMXAddresses int
	// MaxMXSessions caps the sessions one delivery attempt for a domain
	// opens that the server greets with 220, whatever fails after (EHLO,
	// STARTTLS, TLS policy): when they are used up the remaining hosts are
	// left for the next attempt. Postfix's smtp_mx_session_limit (2) counts
	// only sessions that also complete EHLO and STARTTLS; counting every
	// greeted session is stricter. 0 → DefaultMaxMXSessions (2); negative
	// → no cap. A session reused from the pool does not count.
	MaxMXSessions int

	// BackoffRules map the replies receivers use to throttle or block a
	// sender to an action on the MX host (see BackoffRule): slow it down,
	// suspend it, or bounce. nil → DefaultBackoffRules(); an empty non-nil
	// slice → none. The automatic back-off on 421s, refused connections
	// and 4xx greetings applies either way.
	BackoffRules []BackoffRule

	// Logger receives structured records of each attempt. nil → the
	// calling Client's Logger.
	Logger *slog.Logger
	// DebugWriter, if set, receives the SMTP transcript of every session
	// (commands and replies, never message bodies), one line at a time.
	DebugWriter io.Writer

	debugMu sync.Mutex
	pool    pool

	rulesOnce sync.Once
	rules     []BackoffRule // BackoffRules compiled
	rulesErr  error
}

var _ Transport = (*Direct)(nil)

// Validate checks the settings that would otherwise fail at every
// connection (the EHLO name, the back-off rules), so that the first call
// fails instead.
func (t *Direct) Validate() error {
	if t.Hostname != "" {
		if err := smtpclient.CheckHelloName(t.Hostname); err != nil {
			return fmt.Errorf("%w: %w: Hostname: %w", ErrInvalidConfig, ErrInvalidEnvelope, err)
		}
	}
	t.backoffRules()
	return t.rulesErr
}

// CloseIdleConnections closes the sessions kept open for reuse.
func (t *Direct) CloseIdleConnections() { t.pool.closeIdle() }

func (t *Direct) idleTimeout() time.Duration {
	if t.IdleTimeout == 0 {
		return DefaultIdleTimeout
	}
	return t.IdleTimeout
}

func (t *Direct) resolver() *mx.Resolver {
	if t.Resolver != nil {
		return t.Resolver
	}
	return mx.DefaultResolver
}

func (t *Direct) port() int {
	if t.Port > 0 {
		return t.Port
	}
	return 25
}

// logger is Logger, else the calling Client's, else a silent one.
func (t *Direct) logger(ctx context.Context) *slog.Logger {
	if t.Logger != nil {
		return t.Logger
	}
	if l := loggerOf(ctx); l != nil {
		return l
	}
	return discardLogger
}

// helloName is the configured EHLO name, or "" to use the address literal
// of the connection's local end.
func (t *Direct) helloName() string {
	if t.Hostname != "" {
		return t.Hostname
	}
	h, err := os.Hostname()
	if err != nil || strings.EqualFold(h, "localhost") || strings.HasPrefix(strings.ToLower(h), "localhost.") ||
		smtpclient.CheckHelloName(h) != nil {
		return ""
	}
	return h
}

// lockedWriter serializes the transcripts of concurrent sessions.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
