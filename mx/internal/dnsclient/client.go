package dnsclient

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// udpSize is the EDNS0 buffer size we advertise (the DNS flag day 2020
// figure, which avoids IP fragmentation).
const udpSize = 1232

// maxUDPReads bounds how many stray datagrams one try reads before giving up.
const maxUDPReads = 32

// Client sends questions to recursive servers. Its zero value is not usable:
// Servers must be set.
type Client struct {
	Servers  []string      // "ip:port"
	Timeout  time.Duration // per try; 0 → 2 s
	Attempts int           // rounds over Servers; 0 → 2
}

// Error is a failed exchange: either no usable answer (Err set) or an answer
// with a failure code (Rcode set, Err nil).
type Error struct {
	Server string
	Rcode  int
	Err    error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("server %s: %v", e.Server, e.Err)
	}
	return fmt.Sprintf("server %s: %s", e.Server, RcodeString(e.Rcode))
}

// Unwrap returns the transport error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the exchange failed for lack of an answer in time.
func (e *Error) Timeout() bool {
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// Exchange asks q of each server in turn until one gives an answer whose
// code is NOERROR or NXDOMAIN. It returns the last failure otherwise, or the
// context's error once ctx is done.
func (c *Client) Exchange(ctx context.Context, q Query) (*Response, error) {
	if len(c.Servers) == 0 {
		return nil, errors.New("no servers")
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = 2
	}
	var last error
	for range attempts {
		for _, srv := range c.Servers {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			r, err := c.try(ctx, srv, q, timeout)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				last = &Error{Server: srv, Err: err}
				continue
			}
			if r.Rcode != RcodeSuccess && r.Rcode != RcodeNXDomain {
				last = &Error{Server: srv, Rcode: r.Rcode}
				continue
			}
			r.Server = srv
			return r, nil
		}
	}
	return nil, last
}

// try makes one exchange with one server: UDP, then TCP if truncated.
func (c *Client) try(ctx context.Context, srv string, q Query, timeout time.Duration) (*Response, error) {
	id := uint16(rand.Uint32())
	wire, err := Pack(q, id)
	if err != nil {
		return nil, err
	}
	r, err := exchange(ctx, "udp", srv, q, id, wire, timeout)
	if err != nil || !r.Truncated {
		return r, err
	}
	// RFC 7766 §5: a truncated UDP answer is retried over TCP.
	return exchange(ctx, "tcp", srv, q, id, wire, timeout)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 65535); return &b }}

// aLongTimeAgo is a deadline in the past, used to unblock I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

func exchange(ctx context.Context, network, srv string, q Query, id uint16, wire []byte, timeout time.Duration) (*Response, error) {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	d := net.Dialer{Deadline: deadline}
	conn, err := d.DialContext(ctx, network, srv)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	// The context may be cancelled before the deadline: unblock I/O then.
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
		defer stop()
	}

	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp

	if network == "tcp" {
		// RFC 1035 §4.2.2: two-octet length prefix.
		msg := make([]byte, 2+len(wire))
		binary.BigEndian.PutUint16(msg, uint16(len(wire)))
		copy(msg[2:], wire)
		if _, err := conn.Write(msg); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(conn, buf[:2]); err != nil {
			return nil, err
		}
		n := int(binary.BigEndian.Uint16(buf[:2]))
		if _, err := io.ReadFull(conn, buf[:n]); err != nil {
			return nil, err
		}
		return Decode(q, id, buf[:n])
	}

	if _, err := conn.Write(wire); err != nil {
		return nil, err
	}
	for range maxUDPReads {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		r, err := Decode(q, id, buf[:n])
		if errors.Is(err, ErrMismatch) {
			// A late answer to an earlier query, or a spoofing attempt:
			// keep waiting for ours (the deadline bounds the wait).
			continue
		}
		return r, err
	}
	return nil, ErrMismatch
}

// SystemServers returns the nameservers of a resolv.conf file as "ip:port".
func SystemServers(path string) ([]string, error) {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(cfg.Servers))
	for _, s := range cfg.Servers {
		out = append(out, net.JoinHostPort(s, cfg.Port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no nameserver lines", path)
	}
	return out, nil
}
