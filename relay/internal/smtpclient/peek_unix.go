//go:build unix

package smtpclient

import (
	"errors"
	"net"
	"syscall"
)

// peekConn returns how many bytes are waiting on conn (at least 1 when
// any are) without consuming them and without blocking: recv with
// MSG_PEEK|MSG_DONTWAIT on the socket. The standard library has no
// non-blocking peek, hence the raw syscall. ok is false for a connection
// that is not a socket.
func peekConn(conn net.Conn) (n int, ok bool, err error) {
	sc, isSys := conn.(syscall.Conn)
	if !isSys {
		return 0, false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var (
		rerr error
		buf  [1]byte
	)
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for readiness
	})
	if err != nil {
		return 0, true, err
	}
	switch {
	case errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK) || errors.Is(rerr, syscall.EINTR):
		return 0, true, nil
	case rerr != nil:
		return 0, true, rerr
	case n == 0:
		return 0, true, errPeerClosed
	}
	return n, true, nil
}
