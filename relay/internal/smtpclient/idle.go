package smtpclient

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// CheckIdle reports whether a session that sat idle between transactions
// can be used for another: nil when no input from the server is waiting
// to be read. Any byte there was sent unasked for; reading it as the reply
// to the next command would shift every reply after it by one (a refused
// recipient reported delivered). Such a session is closed and CheckIdle
// returns an error wrapping ErrProtocol; so does a session the server has
// closed. net/http checks its idle connections the same way.
//
// CheckIdle does not block and sends nothing: it looks at what is
// buffered and peeks at the socket without waiting.
func (c *Client) CheckIdle() error {
	if c.err != nil {
		return c.err
	}
	if n := c.rr.r.Buffered(); n > 0 {
		return c.unsolicited(n)
	}
	n, ok, err := peekConn(c.rawConn())
	if !ok {
		n, err = c.peekWait()
	}
	if err != nil {
		err = fmt.Errorf("smtpclient: idle session: %w", err)
		c.shut(err)
		return err
	}
	if n > 0 {
		return c.unsolicited(n)
	}
	return nil
}

// unsolicited ends the session after n bytes came that nothing asked for.
func (c *Client) unsolicited(n int) error {
	err := protoErr("%d bytes from the server that no command asked for", n)
	c.shut(err)
	return err
}

// rawConn is the connection under TLS, if any.
func (c *Client) rawConn() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tc, ok := c.conn.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return c.conn
}

// errPeerClosed: the server closed an idle session.
var errPeerClosed = fmt.Errorf("%w: the server closed the connection", ErrClosed)

// peekWait bounds the fallback peek on connections that are not sockets.
const peekWait = 200 * time.Microsecond

// peekWait is the fallback for connections that are not sockets: it waits
// up to peekWait for a byte through the reply reader, where a byte that
// comes stays buffered.
func (c *Client) peekWait() (int, error) {
	c.mu.Lock()
	c.conn.SetReadDeadline(time.Now().Add(peekWait))
	c.mu.Unlock()
	_, err := c.rr.r.Peek(1)
	var ne net.Error
	switch {
	case err == nil:
		return c.rr.r.Buffered(), nil
	case errors.As(err, &ne) && ne.Timeout():
		return 0, nil
	case errors.Is(err, io.EOF):
		return 0, errPeerClosed
	}
	return 0, err
}
