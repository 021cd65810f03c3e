package smtpclient

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer is a scripted SMTP server on loopback: a command → replies
// table, or a free-form handler for hostile behaviour.
type fakeServer struct {
	t       testing.TB
	ln      net.Listener
	handler func(s *fakeSession)
	wg      sync.WaitGroup

	mu       sync.Mutex
	commands []string // every command line received, in order
	messages []string // every message received (DATA un-stuffed, or BDAT)
}

// fakeSession is one connection to the fake server.
type fakeSession struct {
	srv  *fakeServer
	conn net.Conn
	r    *bufio.Reader
}

// newFakeServer starts a server running handler on each connection.
func newFakeServer(t testing.TB, handler func(s *fakeSession)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, handler: handler}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(20 * time.Second))
				handler(&fakeSession{srv: s, conn: conn, r: bufio.NewReader(conn)})
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) gotCommands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

func (s *fakeServer) gotMessages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.messages...)
}

// write sends raw bytes.
func (fs *fakeSession) write(s string) {
	fs.conn.Write([]byte(s))
}

// readLine reads one command line without CRLF and records it.
func (fs *fakeSession) readLine() (string, bool) {
	l, err := fs.r.ReadString('\n')
	if err != nil {
		return "", false
	}
	l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
	fs.srv.mu.Lock()
	fs.srv.commands = append(fs.srv.commands, l)
	fs.srv.mu.Unlock()
	return l, true
}

// readData reads dot-stuffed data up to CRLF.CRLF and returns it un-stuffed.
func (fs *fakeSession) readData() (string, bool) {
	var b strings.Builder
	for {
		l, err := fs.r.ReadString('\n')
		if err != nil {
			return "", false
		}
		if l == ".\r\n" {
			return b.String(), true
		}
		b.WriteString(strings.TrimPrefix(l, "."))
	}
}

func (fs *fakeSession) record(msg string) {
	fs.srv.mu.Lock()
	fs.srv.messages = append(fs.srv.messages, msg)
	fs.srv.mu.Unlock()
}

// script is a reply table: verb ("EHLO", "MAIL", "RCPT", "DATA", "." for
// the end of data, "BDAT", "RSET", "STARTTLS", ...) → replies, used in
// turn, the last one repeated. Replies are raw, CRLF included.
type script map[string][]string

var defaultScript = script{
	"greeting": {"220 fake.test ESMTP\r\n"},
	"EHLO":     {"250-fake.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 1000000\r\n"},
	"HELO":     {"250 fake.test\r\n"},
	"MAIL":     {"250 2.1.0 ok\r\n"},
	"RCPT":     {"250 2.1.5 ok\r\n"},
	"DATA":     {"354 go ahead\r\n"},
	".":        {"250 2.0.0 queued\r\n"},
	"BDAT":     {"250 2.0.0 queued\r\n"},
	"RSET":     {"250 2.0.0 reset\r\n"},
	"NOOP":     {"250 2.0.0 ok\r\n"},
	"QUIT":     {"221 2.0.0 bye\r\n"},
}

// with returns a copy of sc with the given entries replaced.
func (sc script) with(kv ...string) script {
	n := script{}
	for k, v := range sc {
		n[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		n[kv[i]] = append(n[kv[i]][:0:0], kv[i+1])
	}
	return n
}

// run plays the script on one session.
func (sc script) run(fs *fakeSession) {
	used := map[string]int{}
	reply := func(verb string) string {
		rs := sc[verb]
		if len(rs) == 0 {
			return "500 5.5.1 unknown command\r\n"
		}
		i := min(used[verb], len(rs)-1)
		used[verb]++
		return rs[i]
	}
	fs.write(reply("greeting"))
	for {
		l, ok := fs.readLine()
		if !ok {
			return
		}
		verb, arg, _ := strings.Cut(l, " ")
		verb = strings.ToUpper(verb)
		r := reply(verb)
		switch verb {
		case "DATA":
			fs.write(r)
			if !strings.HasPrefix(r, "354") {
				continue
			}
			msg, ok := fs.readData()
			if !ok {
				return
			}
			fs.record(msg)
			fs.write(reply("."))
			continue
		case "BDAT":
			f := strings.Fields(arg)
			n, _ := strconv.Atoi(f[0])
			buf := make([]byte, n)
			if _, err := io.ReadFull(fs.r, buf); err != nil {
				return
			}
			fs.record(string(buf))
		}
		fs.write(r)
		if verb == "QUIT" {
			return
		}
	}
}

// countingConn counts the client's Write calls.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes []string
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, string(p))
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// dialFake connects a Client to the fake server through a countingConn.
func dialFake(t testing.TB, ctx context.Context, addr string, opts *Options) (*Client, *countingConn) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingConn{Conn: conn}
	c, err := NewClient(ctx, cc, opts)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, cc
}
