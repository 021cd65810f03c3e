package main

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// delayProxy forwards TCP connections from a loopback port to a target,
// holding every chunk of data back by a one-way delay in each direction,
// so that a round trip costs 2×delay, as over a network with that latency.
// Order is preserved: chunks are written in the order they were read, each
// no earlier than delay after it was read. A new connection reaches the
// target only after 3×delay, so the greeting arrives 2 round trips after
// the client's connect, as with a real TCP handshake.
//
// It is bounded: at most maxInFlight chunks of up to chunkSize octets wait
// in each direction of a connection (the reader blocks beyond that), and
// Close ends every connection and waits for its goroutines.
type delayProxy struct {
	l      net.Listener
	target string
	delay  time.Duration

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

const (
	chunkSize   = 32 << 10
	maxInFlight = 64
)

// newDelayProxy listens on 127.0.0.1 and forwards to target (a loopback
// address) with delay each way.
func newDelayProxy(target string, delay time.Duration) (*delayProxy, error) {
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, errors.New("delay proxy: target must be a loopback address")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &delayProxy{l: l, target: target, delay: delay, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Port is the port the proxy listens on.
func (p *delayProxy) Port() int { return p.l.Addr().(*net.TCPAddr).Port }

func (p *delayProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

// track registers c for Close; false once the proxy is closed.
func (p *delayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *delayProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *delayProxy) handle(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	defer client.Close()
	// SYN, SYN-ACK, ACK: the server sees the connection 1.5 round trips
	// after the client started it.
	time.Sleep(3 * p.delay)
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(server) {
		server.Close()
		return
	}
	defer p.untrack(server)
	defer server.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(server, client) }()
	go func() { defer wg.Done(); p.pipe(client, server) }()
	wg.Wait()
}

type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst, each chunk delayed. When src ends, dst's write
// side is closed after the chunks in flight; when dst fails, both close.
func (p *delayProxy) pipe(dst, src net.Conn) {
	ch := make(chan chunk, maxInFlight)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range ch {
			if d := time.Until(c.due); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(c.data); err != nil {
				src.Close()
				dst.Close()
				for range ch {
				}
				return
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		} else {
			dst.Close()
		}
	}()
	for {
		buf := make([]byte, chunkSize)
		n, err := src.Read(buf)
		if n > 0 {
			ch <- chunk{data: buf[:n], due: time.Now().Add(p.delay)}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			break
		}
	}
	close(ch)
	<-done
}

// Close stops the proxy, closes every connection and waits (up to 5 s) for
// its goroutines.
func (p *delayProxy) Close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.l.Close()
	ok := make(chan struct{})
	go func() { p.wg.Wait(); close(ok) }()
	select {
	case <-ok:
	case <-time.After(5 * time.Second):
	}
}
