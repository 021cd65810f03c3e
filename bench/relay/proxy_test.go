package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer echoes every connection on 127.0.0.1 until closed.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

func TestDelayProxyKeepsOrderAndBytes(t *testing.T) {
	p, err := newDelayProxy(echoServer(t), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))

	// Many writes of different sizes, some larger than a chunk.
	var want bytes.Buffer
	for i := range 200 {
		b := bytes.Repeat([]byte{byte('a' + i%26)}, 1+(i*997)%(3*chunkSize))
		want.Write(b)
	}
	go func() {
		data := want.Bytes()
		for len(data) > 0 {
			n := min(len(data), 1+len(data)%50000)
			if _, err := c.Write(data[:n]); err != nil {
				return
			}
			data = data[n:]
		}
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("got %d bytes, want %d; equal prefix %d", len(got), want.Len(), commonPrefix(got, want.Bytes()))
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func TestDelayProxyCloseEndsConnections(t *testing.T) {
	p, err := newDelayProxy(echoServer(t), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
	p.Close()
	if _, err := c.Read(buf); err == nil {
		t.Fatal("connection still open after Close")
	}
}

func TestDelayProxyRefusesNonLoopback(t *testing.T) {
	for _, target := range []string{"192.0.2.1:25", "example.com:25", "nonsense"} {
		if p, err := newDelayProxy(target, time.Millisecond); err == nil {
			p.Close()
			t.Errorf("%s: accepted", target)
		}
	}
}
