package smtpclient

import (
	"io"
	"net"
	"time"
)

// Default timeouts, from RFC 5321 §4.5.3.2.
const (
	DefaultGreetingTimeout  = 5 * time.Minute  // §4.5.3.2.1 initial 220
	DefaultMailTimeout      = 5 * time.Minute  // §4.5.3.2.2 MAIL
	DefaultRcptTimeout      = 5 * time.Minute  // §4.5.3.2.3 RCPT
	DefaultDataInitTimeout  = 2 * time.Minute  // §4.5.3.2.4 DATA → 354
	DefaultDataBlockTimeout = 3 * time.Minute  // §4.5.3.2.5 each write of data
	DefaultDataTermTimeout  = 10 * time.Minute // §4.5.3.2.6 final dot → 250
	DefaultCommandTimeout   = 5 * time.Minute  // EHLO, STARTTLS, RSET, NOOP, QUIT
)

// Options configure a Client. The zero value (or a nil *Options) gives the
// RFC 5321 defaults. Each timeout bounds one step; the step's deadline is
// the earlier of now+timeout and the context's deadline, so a caller that
// wants a tighter overall budget sets it on the context.
type Options struct {
	// LocalAddr is the local (source) address Dial binds to; nil → any.
	LocalAddr net.Addr
	// DialTimeout bounds the TCP connect in Dial; 0 → only the context.
	DialTimeout time.Duration

	GreetingTimeout  time.Duration // 0 → DefaultGreetingTimeout
	MailTimeout      time.Duration // 0 → DefaultMailTimeout
	RcptTimeout      time.Duration // 0 → DefaultRcptTimeout
	DataInitTimeout  time.Duration // 0 → DefaultDataInitTimeout
	DataBlockTimeout time.Duration // 0 → DefaultDataBlockTimeout (also BDAT)
	DataTermTimeout  time.Duration // 0 → DefaultDataTermTimeout (also BDAT LAST)
	CommandTimeout   time.Duration // 0 → DefaultCommandTimeout

	// MaxReplyLineLength bounds one reply line in octets; 0 →
	// DefaultMaxReplyLineLength.
	MaxReplyLineLength int
	// MaxReplyLines bounds the lines of one reply; 0 → DefaultMaxReplyLines.
	MaxReplyLines int

	// DisablePipelining and DisableChunking make the client ignore the
	// server's PIPELINING or CHUNKING, for interoperability workarounds.
	DisablePipelining bool
	DisableChunking   bool

	// DebugWriter, if set, receives the session transcript: every command
	// ("C: ") and reply line ("S: "), never the message data, which appears
	// as one "C: [N octets of message data]" line. Not written concurrently.
	DebugWriter io.Writer
}

// withDefaults returns a copy of o with zero fields set to their defaults.
func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.GreetingTimeout, DefaultGreetingTimeout)
	def(&c.MailTimeout, DefaultMailTimeout)
	def(&c.RcptTimeout, DefaultRcptTimeout)
	def(&c.DataInitTimeout, DefaultDataInitTimeout)
	def(&c.DataBlockTimeout, DefaultDataBlockTimeout)
	def(&c.DataTermTimeout, DefaultDataTermTimeout)
	def(&c.CommandTimeout, DefaultCommandTimeout)
	if c.MaxReplyLineLength <= 0 {
		c.MaxReplyLineLength = DefaultMaxReplyLineLength
	}
	if c.MaxReplyLines <= 0 {
		c.MaxReplyLines = DefaultMaxReplyLines
	}
	return c
}
