//go:build !unix

package smtpclient

import "net"

// peekConn cannot peek without MSG_PEEK: ok false makes CheckIdle wait
// briefly for a byte instead.
func peekConn(conn net.Conn) (n int, ok bool, err error) { return 0, false, nil }
