package smtpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Client is one SMTP session with one server. Create it with Dial or
// NewClient, then call Hello. It is not safe for concurrent use.
type Client struct {
	opts Options

	mu   sync.Mutex // guards conn and opID against the ctx watcher
	conn net.Conn
	opID uint64

	rr    replyReader
	bw    *bufio.Writer
	cw    connWriter
	ctx   context.Context // of the running operation
	stop  func() bool     // stops the running operation's ctx watcher
	debug io.Writer

	name      string            // the EHLO name given to Hello
	helloDone bool              // Hello succeeded on this (TLS or not) connection
	ext       map[string]string // upper-case keyword → parameters
	isTLS     bool
	needReset bool  // a transaction was left open; send RSET first
	err       error // sticky: the session is over

	line    []byte     // scratch for building a command
	sendIdx []int      // scratch: recipients sent in a transaction
	dw      DataWriter // reused for every message
}

var aLongTimeAgo = time.Unix(1, 0)

// NewClient starts a session on conn and reads the server's greeting
// (RFC 5321 §4.3.1, bounded by GreetingTimeout). A greeting other than 220
// is returned as an *Error with Command "greeting"; on any error conn is
// closed.
func NewClient(ctx context.Context, conn net.Conn, opts *Options) (*Client, error) {
	c := &Client{opts: opts.withDefaults(), conn: conn}
	_, c.isTLS = conn.(*tls.Conn) // implicit TLS (RFC 8314)
	c.debug = c.opts.DebugWriter
	size := 4096
	if c.opts.MaxReplyLineLength+2 > size {
		size = c.opts.MaxReplyLineLength + 2
	}
	c.rr = replyReader{r: bufio.NewReaderSize(conn, size), maxLine: c.opts.MaxReplyLineLength, maxLines: c.opts.MaxReplyLines}
	c.cw = connWriter{c: c}
	c.bw = bufio.NewWriterSize(&c.cw, 16<<10)

	if err := c.begin(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	defer c.end()
	c.setDeadline(c.opts.GreetingTimeout)
	r, err := c.readReply("greeting")
	if err != nil {
		return nil, err
	}
	if r.Code != 220 {
		// RFC 5321 §3.1: after a 554 greeting the client should QUIT;
		// say it without waiting for the answer.
		c.writeLine("QUIT")
		c.bw.Flush()
		c.shut(ErrClosed)
		return nil, replyError("greeting", r)
	}
	return c, nil
}

// connWriter is what the bufio.Writer flushes into: it refreshes the write
// deadline before each block of message data (RFC 5321 §4.5.3.2.5).
type connWriter struct {
	c         *Client
	dataBlock bool
}

func (w *connWriter) Write(p []byte) (int, error) {
	if w.dataBlock {
		w.c.setDeadline(w.c.opts.DataBlockTimeout)
	}
	return w.c.conn.Write(p)
}

// begin starts an operation bounded by ctx: cancelling ctx sets a past
// deadline on the connection, which interrupts a blocked read or write.
// Every successful begin is paired with a deferred end.
func (c *Client) begin(ctx context.Context) error {
	if c.err != nil {
		return c.err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("smtpclient: %w", err)
	}
	c.mu.Lock()
	c.opID++
	id := c.opID
	c.mu.Unlock()
	c.ctx = ctx
	c.stop = nil
	if ctx.Done() != nil {
		c.stop = context.AfterFunc(ctx, func() {
			c.mu.Lock()
			if c.opID == id {
				c.conn.SetDeadline(aLongTimeAgo)
			}
			c.mu.Unlock()
		})
	}
	return nil
}

// end ends the operation begun by begin; a late cancellation of its
// context no longer touches the connection.
func (c *Client) end() {
	if c.stop != nil {
		c.stop()
		c.stop = nil
	}
	c.mu.Lock()
	c.opID++
	c.mu.Unlock()
	c.ctx = nil
}

// setDeadline sets the connection's deadline to the earlier of now+d and
// the operation context's deadline.
func (c *Client) setDeadline(d time.Duration) {
	t := time.Now().Add(d)
	if dl, ok := c.ctx.Deadline(); ok && dl.Before(t) {
		t = dl
	}
	c.mu.Lock()
	if c.ctx.Err() != nil {
		t = aLongTimeAgo
	}
	c.conn.SetDeadline(t)
	c.mu.Unlock()
}

// fail ends the session after a transport or protocol failure during
// command and returns the error to report, classified as context, timeout
// or other.
func (c *Client) fail(command string, err error) error {
	if c.err != nil {
		return c.err
	}
	var ne net.Error
	ctxErr := c.ctx.Err()
	if dl, ok := c.ctx.Deadline(); ok && ctxErr == nil && !time.Now().Before(dl) {
		// The connection deadline was the context's and fired first.
		ctxErr = context.DeadlineExceeded
	}
	switch {
	case ctxErr != nil:
		err = fmt.Errorf("smtpclient: %s: %w", command, ctxErr)
	case errors.As(err, &ne) && ne.Timeout():
		err = fmt.Errorf("%w: %s: %w", ErrTimeout, command, err)
	case errors.Is(err, ErrProtocol):
		err = fmt.Errorf("smtpclient: %s: %w", command, err)
	default:
		err = fmt.Errorf("smtpclient: %s: %w", command, err)
	}
	c.shut(err)
	return err
}

// shut records err as the session's end and closes the connection.
// Err returns the error that ended the session, or nil while it can still
// be used for another transaction.
func (c *Client) Err() error { return c.err }

func (c *Client) shut(err error) {
	if c.err == nil {
		c.err = err
	}
	c.mu.Lock()
	c.conn.Close()
	c.mu.Unlock()
}

// writeLine buffers one command line.
func (c *Client) writeLine(parts ...string) {
	c.line = c.line[:0]
	for _, p := range parts {
		c.line = append(c.line, p...)
	}
	c.writeBuilt()
}

// writeBuilt buffers c.line plus CRLF.
func (c *Client) writeBuilt() {
	if c.debug != nil {
		fmt.Fprintf(c.debug, "C: %s\n", c.line)
	}
	c.line = append(c.line, '\r', '\n')
	c.bw.Write(c.line)
}

// flush sends the buffered commands within the CommandTimeout.
func (c *Client) flush(command string, d time.Duration) error {
	c.setDeadline(d)
	if err := c.bw.Flush(); err != nil {
		return c.fail(command, err)
	}
	return nil
}

// readReply reads one reply; the caller has set the deadline. A transport
// or protocol failure closes the session; so does a 421 reply, which is
// still returned as a reply (RFC 5321 §3.8). A 3xx reply is a protocol
// error: only DATA is answered with one (see readDataReply).
func (c *Client) readReply(command string) (Reply, error) {
	return c.read(command, completion)
}

// readDataReply reads the reply to DATA: 354, or a refusal. A 2xx reply
// cannot answer DATA, so it is a protocol error.
func (c *Client) readDataReply() (Reply, error) {
	return c.read("DATA", intermediate)
}

// The positive replies a command may get (RFC 5321 §4.3.2, RFC 4954).
const (
	completion   = iota // 2xx only: most commands
	intermediate        // 3xx only: DATA
	either              // 2xx or 3xx: AUTH, answered 334 until 235
)

// read reads one reply to command, whose positive replies are of the kind
// want. A positive reply of the other kind means the replies are out of
// step with the commands (a server that sent one reply too many): the
// session ends with ErrProtocol and the reply is not returned, because it
// answers some other command.
func (c *Client) read(command string, want int) (Reply, error) {
	if c.err != nil {
		return Reply{}, c.err
	}
	r, err := c.rr.read()
	if err != nil {
		return Reply{}, c.fail(command, err)
	}
	if class := r.Code / 100; (class == 2 && want == intermediate) || (class == 3 && want == completion) {
		c.debugReply(r)
		return Reply{}, c.fail(command, protoErr("reply %d does not answer %s: the server is out of step", r.Code, command))
	}
	c.debugReply(r)
	if r.Code == 421 {
		c.shut(fmt.Errorf("%w: server closing: %w", ErrClosed, replyError(command, r)))
	}
	return r, nil
}

// debugReply writes r to the transcript.
func (c *Client) debugReply(r Reply) {
	if c.debug == nil {
		return
	}
	for i, l := range r.Lines {
		sep := byte(' ')
		if i < len(r.Lines)-1 {
			sep = '-'
		}
		fmt.Fprintf(c.debug, "S: %d%c%s\n", r.Code, sep, l)
	}
}

// cmd sends one command and reads its reply within d.
func (c *Client) cmd(command string, d time.Duration, parts ...string) (Reply, error) {
	c.writeLine(parts...)
	if err := c.flush(command, d); err != nil {
		return Reply{}, err
	}
	return c.readReply(command)
}

// Hello sends EHLO name, or HELO name if the server refuses EHLO with a 5xx
// (RFC 5321 §4.1.1.1), and records the extensions the server offers. The
// name must be a domain or an address literal; it is sent as given (the
// caller decides it; this package never sends "localhost" by itself).
func (c *Client) Hello(ctx context.Context, name string) error {
	if err := CheckHelloName(name); err != nil {
		return err
	}
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.end()
	c.name = name
	return c.hello()
}

func (c *Client) hello() error {
	c.ext, c.helloDone = nil, false
	r, err := c.cmd("EHLO", c.opts.CommandTimeout, "EHLO ", c.name)
	if err != nil {
		return err
	}
	if r.Positive() {
		c.ext = parseExtensions(r.Lines)
		c.helloDone, c.needReset = true, false // EHLO resets (§4.1.4)
		return nil
	}
	if r.Code < 500 || r.Code > 599 {
		return replyError("EHLO", r)
	}
	r, err = c.cmd("HELO", c.opts.CommandTimeout, "HELO ", c.name)
	if err != nil {
		return err
	}
	if !r.Positive() {
		return replyError("HELO", r)
	}
	c.helloDone, c.needReset = true, false
	return nil
}

// Reset sends RSET (RFC 5321 §4.1.1.5), aborting any transaction.
func (c *Client) Reset(ctx context.Context) error {
	return c.simple(ctx, "RSET")
}

// Noop sends NOOP (RFC 5321 §4.1.1.9): a cheap check that a reused session
// still answers.
func (c *Client) Noop(ctx context.Context) error {
	return c.simple(ctx, "NOOP")
}

func (c *Client) simple(ctx context.Context, verb string) error {
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.end()
	r, err := c.cmd(verb, c.opts.CommandTimeout, verb)
	if err != nil {
		return err
	}
	if !r.Positive() {
		return replyError(verb, r)
	}
	if verb == "RSET" {
		c.needReset = false
	}
	return nil
}

// Quit sends QUIT, reads the reply and closes the connection
// (RFC 5321 §4.1.1.10). The connection is closed even on error.
func (c *Client) Quit(ctx context.Context) error {
	if err := c.begin(ctx); err != nil {
		c.Close()
		return err
	}
	defer c.end()
	r, err := c.cmd("QUIT", c.opts.CommandTimeout, "QUIT")
	c.Close()
	if err != nil {
		return err
	}
	if r.Code != 221 {
		return replyError("QUIT", r)
	}
	return nil
}

// Close closes the connection without QUIT. Later calls return ErrClosed.
func (c *Client) Close() error {
	if c.err != nil {
		return nil
	}
	c.err = ErrClosed
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn.Close()
}
