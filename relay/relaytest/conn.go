package relaytest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// conn sits between a client's TCP connection and go-smtp's server. go-smtp
// always offers PIPELINING, CHUNKING and 8BITMIME and does STARTTLS itself,
// which leaves a test no way to turn them off or to misbehave during the
// handshake. So the harness runs go-smtp without TLS and does it here: conn
// adds STARTTLS to the EHLO reply, answers the client's STARTTLS itself,
// performs the handshake, and from then on hands go-smtp the decrypted
// stream. It also removes the capabilities a Host has switched off, delays
// replies, and records the command lines the client sent.
//
// Message data is passed through untouched, so a body line that reads
// "STARTTLS" is never mistaken for a command.
type conn struct {
	net.Conn // the raw TCP connection
	host     *Host

	mu       sync.Mutex
	tls      *tls.Conn // set once the handshake is done
	tlsState *tls.ConnectionState
	inData   bool // a 354 reply was sent: client lines are message data

	closeOnce sync.Once

	rd      *bufio.Reader // reads the current transport (raw or TLS)
	pending []byte        // client bytes waiting to be returned by Read
	wbuf    []byte        // partial reply line written by go-smtp
	extra   []byte        // written after the next complete reply line
	cmds    []string      // command lines the client sent (without CRLF)

	// Read side only (go-smtp reads from one goroutine).
	bdatLeft    int64 // bytes of the current BDAT chunk still to pass on
	atLineStart bool  // in data mode, the next byte starts a line
	chunked     bool  // the current transaction uses BDAT
	pipelined   bool  // the current MAIL arrived with more commands behind it
}

func newConn(c net.Conn, h *Host) *conn {
	return &conn{Conn: c, host: h, rd: bufio.NewReader(c)}
}

func (c *conn) transport() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tls != nil {
		return c.tls
	}
	return c.Conn
}

// Read gives go-smtp the client's bytes, after taking STARTTLS out of them.
// It follows the protocol just enough to tell commands from message data:
// after a 354 reply, lines up to the lone "." are data; after "BDAT n",
// the next n bytes are.
func (c *conn) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		if c.bdatLeft > 0 {
			if int64(len(p)) > c.bdatLeft {
				p = p[:c.bdatLeft]
			}
			n, err := c.rd.Read(p)
			c.bdatLeft -= int64(n)
			return n, err
		}
		line, err := c.rd.ReadSlice('\n')
		if len(line) == 0 && err != nil {
			return 0, err
		}
		c.pending = append(c.pending[:0], line...)
		complete := err == nil
		if c.dataMode() {
			c.mu.Lock()
			if c.atLineStart && complete && string(line) == ".\r\n" {
				c.inData = false
			}
			c.atLineStart = complete
			c.mu.Unlock()
			break
		}
		if !complete {
			break // a command line longer than the buffer: go-smtp will refuse it
		}
		cmd := strings.TrimRight(string(line), "\r\n")
		verb, arg, _ := strings.Cut(cmd, " ")
		verb = strings.ToUpper(verb)
		c.record(cmd)
		switch verb {
		case "MAIL":
			c.mu.Lock()
			c.pipelined = c.rd.Buffered() > 0
			c.chunked = false
			c.mu.Unlock()
		case "STARTTLS":
			if c.host.tlsConfig() != nil && c.State() == nil && !c.host.cfg.HideSTARTTLS {
				c.pending = c.pending[:0]
				if err := c.startTLS(); err != nil {
					return 0, err
				}
			}
		case "BDAT":
			c.mu.Lock()
			c.chunked = true
			c.mu.Unlock()
			size, _, _ := strings.Cut(strings.TrimSpace(arg), " ")
			if n, err := strconv.ParseInt(size, 10, 64); err == nil && n > 0 {
				c.bdatLeft = n
			}
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// afterNextReply makes Write send extra after the next reply's last line.
// go-smtp writes from the goroutine that calls the Session, as here.
func (c *conn) afterNextReply(extra string) {
	c.extra = []byte(extra)
}

func (c *conn) dataMode() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inData
}

func (c *conn) setDataMode(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inData = on
	c.atLineStart = true
}

// startTLS answers a STARTTLS command and performs the server handshake.
func (c *conn) startTLS() error {
	reply := "220 2.0.0 Ready to start TLS\r\n"
	if inj := c.host.cfg.InjectAfterSTARTTLS; inj != "" {
		reply += inj // a man in the middle speaking before the handshake
	}
	if _, err := io.WriteString(c.Conn, reply); err != nil {
		return err
	}
	tc := tls.Server(&prefixConn{Conn: c.Conn, r: c.rd}, c.host.tlsConfig())
	if err := tc.Handshake(); err != nil {
		c.Conn.Close()
		return err
	}
	st := tc.ConnectionState()
	c.mu.Lock()
	c.tls = tc
	c.tlsState = &st
	c.rd = bufio.NewReader(tc)
	c.mu.Unlock()
	return nil
}

// Write passes go-smtp's replies to the client, line by line, leaving out
// switched-off capabilities and adding STARTTLS to the EHLO reply.
func (c *conn) Write(p []byte) (int, error) {
	if d := c.host.cfg.ReplyDelay; d > 0 {
		time.Sleep(d)
	}
	c.wbuf = append(c.wbuf, p...)
	var out []byte
	for {
		i := bytes.IndexByte(c.wbuf, '\n')
		if i < 0 {
			break
		}
		line := c.wbuf[:i+1]
		if bytes.HasPrefix(line, []byte("354")) {
			c.setDataMode(true)
		}
		out = c.filter(out, line)
		c.wbuf = c.wbuf[i+1:]
		if len(c.extra) > 0 && len(line) > 3 && line[3] == ' ' {
			out = append(out, c.extra...)
			c.extra = nil
		}
	}
	if len(out) > 0 {
		if _, err := c.transport().Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *conn) filter(out, line []byte) []byte {
	if !bytes.HasPrefix(line, []byte("250-")) {
		return append(out, line...)
	}
	kw := strings.ToUpper(strings.TrimRight(string(line[4:]), "\r\n"))
	if i := strings.IndexByte(kw, ' '); i >= 0 {
		kw = kw[:i]
	}
	cfg := &c.host.cfg
	switch kw {
	case "PIPELINING":
		if cfg.NoPipelining {
			return out
		}
	case "CHUNKING":
		if cfg.NoChunking {
			return out
		}
	case "8BITMIME":
		if cfg.No8BitMIME {
			return out
		}
	case "ENHANCEDSTATUSCODES":
		out = append(out, line...)
		if c.State() == nil && c.host.tlsConfig() != nil && !cfg.HideSTARTTLS {
			out = append(out, "250-STARTTLS\r\n"...)
		}
		if c.State() != nil && cfg.RequireTLSExtension {
			out = append(out, "250-REQUIRETLS\r\n"...)
		}
		return out
	}
	return append(out, line...)
}

// Close closes the connection once and counts it at the host.
func (c *conn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.Conn.Close()
		c.host.mu.Lock()
		c.host.active--
		delete(c.host.conns, c)
		c.host.mu.Unlock()
	})
	return err
}

// State returns the TLS state, or nil while the session is plaintext.
func (c *conn) State() *tls.ConnectionState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tlsState
}

func (c *conn) record(cmd string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cmds) < 10000 {
		c.cmds = append(c.cmds, cmd)
	}
}

// txInfo says whether the current transaction came with BDAT and whether
// its MAIL command was pipelined with the ones after it.
func (c *conn) txInfo() (chunked, pipelined bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.chunked, c.pipelined
}

// Commands returns the command lines the client sent.
func (c *conn) Commands() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.cmds...)
}

// prefixConn reads what bufio already buffered before the rest of the
// connection, so no handshake byte is lost.
type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *prefixConn) Read(b []byte) (int, error) { return p.r.Read(b) }
