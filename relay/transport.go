package relay

import (
	"context"
	"errors"
	"fmt"
	"github.com/mxrelay/mxrelay/queue"
	"log/slog"
)

// Transport delivers one domain's share of a message and reports what
// became of each recipient: the mechanism under a Client, as
// http.RoundTripper is under http.Client. The Client validates, signs,
// queues, counts and reports; the Transport only delivers.
//
// Deliver returns one RecipientResult per env.To, in order, each
// Delivered, Deferred or Bounced; it must not keep env after it returns.
// It is called concurrently for the domains of a message and for many
// messages at once.
//
// A Transport may also have a Validate() error method: the Client calls
// it before every Send, Enqueue and Run, so that a configuration error
// fails the first call rather than every attempt; and a
// CloseIdleConnections() method, which Client.CloseIdleConnections calls.
//
// Direct (to the recipients' MX hosts) is the default; package
// relay/smarthost submits to a relay host instead.
type Transport interface {
	Deliver(ctx context.Context, env *Envelope) []RecipientResult
}

// Envelope is one domain's share of a message, as the Client hands it to
// a Transport. Every address has been checked for SMTP.
type Envelope struct {
	Domain   string   // the recipients' domain, an A-label in lower case
	From     string   // the reverse-path; "" is the null sender of a bounce
	To       []string // the forward-paths, all in Domain
	Data     []byte   // the message as it goes out: written and signed
	SMTPUTF8 bool     // the header holds UTF-8 (RFC 6532): send with SMTPUTF8
	Source   Source   // the local address and EHLO name chosen from Client.Sources; zero → the transport's
	// MessageID is the queue job id, "" for a Send not (yet) queued.
	MessageID string
	// Attempts is how many attempts the message had before this one (0
	// for Send's), so that a Transport can change its route after some
	// (see Fallback).
	Attempts int
	// EnvelopeID, when set, asks for delivery status notifications that
	// name the message (RFC 3461): where the server offers DSN, the
	// transport sends it as ENVID with RET=HDRS, and ORCPT with every
	// recipient. Client.BounceDomain sets it.
	EnvelopeID string
}

// ErrInvalidConfig: the Client's or the Transport's settings cannot work
// (a malformed EHLO name, a Source without an address, Client shortcuts
// set beside a Transport). Nothing is sent or stored.
var ErrInvalidConfig = errors.New("relay: invalid configuration")

// transport returns the Transport in use: Client.Transport, or the
// default Direct made from the Client's shortcut fields.
func (c *Client) transport() Transport {
	if c.Transport != nil {
		return c.Transport
	}
	c.tOnce.Do(func() {
		c.direct = &Direct{Hostname: c.Hostname, Resolver: c.Resolver, Port: c.Port,
			AllowPrivateAddrs: c.AllowPrivateAddrs}
		if ls, ok := c.Store.(queue.LimitStore); ok {
			c.direct.SharedLimits = ls
		}
	})
	return c.direct
}

// checkTransport refuses the Client's shortcut fields beside a Transport
// (which would silently ignore them) and asks the Transport to validate
// itself.
func (c *Client) checkTransport() error {
	if c.Transport != nil && (c.Hostname != "" || c.Resolver != nil || c.Port != 0 || c.AllowPrivateAddrs) {
		return fmt.Errorf("%w: Client.Hostname, Resolver, Port and AllowPrivateAddrs configure the default transport; with Client.Transport set, set them there", ErrInvalidConfig)
	}
	if v, ok := c.transport().(interface{ Validate() error }); ok {
		return v.Validate()
	}
	return nil
}

// CloseIdleConnections closes the connections the transport keeps open
// for reuse, when it keeps any. Call it before the program exits to say
// QUIT politely; it does not affect deliveries in progress.
func (c *Client) CloseIdleConnections() {
	if t, ok := c.transport().(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// callerKey carries the calling Client's Trace, Logger and events to its
// transport, which uses them where it has none of its own.
type callerKey struct{}

type caller struct {
	trace  *Trace
	logger *slog.Logger
	client *Client // for the events a transport reports (EventBackoff)
}

// withCaller puts c's Trace, Logger and events on ctx. The value is made
// once per Client, so this costs one small allocation per call.
func (c *Client) withCaller(ctx context.Context) context.Context {
	c.callerOnce.Do(func() { c.caller = &caller{trace: c.Trace, logger: c.Logger, client: c} })
	return context.WithValue(ctx, callerKey{}, c.caller)
}

// emitFor reports e as an event of the Client that called, if any.
func emitFor(ctx context.Context, e Event) {
	if cl, ok := ctx.Value(callerKey{}).(*caller); ok && cl.client != nil {
		cl.client.emit(e)
	}
}

// traceOf returns the Trace of the Client that called, or nil.
func traceOf(ctx context.Context) *Trace {
	if cl, ok := ctx.Value(callerKey{}).(*caller); ok {
		return cl.trace
	}
	return nil
}

// loggerOf returns the Logger of the Client that called, or nil.
func loggerOf(ctx context.Context) *slog.Logger {
	if cl, ok := ctx.Value(callerKey{}).(*caller); ok {
		return cl.logger
	}
	return nil
}
