package dnsclient

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// rawServer answers every UDP datagram and TCP query on one loopback port
// with whatever reply returns (nil: no answer).
type rawServer struct {
	pc   net.PacketConn
	l    net.Listener
	addr string
}

func newRawServer(t *testing.T, reply func(req *dns.Msg, tcp bool) [][]byte) *rawServer {
	t.Helper()
	var s rawServer
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			pc.Close()
			continue
		}
		s = rawServer{pc: pc, l: l, addr: pc.LocalAddr().String()}
		break
	}
	if s.pc == nil {
		t.Fatal("no port")
	}
	t.Cleanup(func() { s.pc.Close(); s.l.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := s.pc.ReadFrom(buf)
			if err != nil {
				return
			}
			req := new(dns.Msg)
			if req.Unpack(buf[:n]) != nil {
				continue
			}
			for _, b := range reply(req, false) {
				_, _ = s.pc.WriteTo(b, from)
			}
		}
	}()
	go func() {
		for {
			c, err := s.l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var lb [2]byte
				if _, err := io.ReadFull(c, lb[:]); err != nil {
					return
				}
				b := make([]byte, binary.BigEndian.Uint16(lb[:]))
				if _, err := io.ReadFull(c, b); err != nil {
					return
				}
				req := new(dns.Msg)
				if req.Unpack(b) != nil {
					return
				}
				for _, out := range reply(req, true) {
					binary.BigEndian.PutUint16(lb[:], uint16(len(out)))
					_, _ = c.Write(append(lb[:], out...))
				}
			}()
		}
	}()
	return &s
}

func pack(t testing.TB, m *dns.Msg) []byte {
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mxReply(req *dns.Msg, hosts ...string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	for i, h := range hosts {
		m.Answer = append(m.Answer, &dns.MX{
			Hdr: dns.RR_Header{Name: req.Question[0].Name, Rrtype: dns.TypeMX, Class: dns.ClassINET, Ttl: 60},
			Mx:  h, Preference: uint16(i),
		})
	}
	return m
}

var q = Query{Name: "example.com.", Type: TypeMX}

func TestExchangeIgnoresStrayAnswers(t *testing.T) {
	s := newRawServer(t, func(req *dns.Msg, _ bool) [][]byte {
		wrongID := mxReply(req, "wrong-id.example.")
		wrongID.Id++
		wrongQ := mxReply(req, "wrong-q.example.")
		wrongQ.Question[0].Name = "other.example."
		notResp := mxReply(req, "not-a-response.example.")
		notResp.Response = false
		return [][]byte{pack(t, wrongID), pack(t, wrongQ), pack(t, notResp), pack(t, mxReply(req, "right.example."))}
	})
	c := &Client{Servers: []string{s.addr}, Timeout: 2 * time.Second, Attempts: 1}
	r, err := c.Exchange(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || r.Answer[0].Target != "right.example." {
		t.Fatalf("answer %+v", r.Answer)
	}
}

func TestExchangeTruncatedUsesTCP(t *testing.T) {
	s := newRawServer(t, func(req *dns.Msg, tcp bool) [][]byte {
		if !tcp {
			m := mxReply(req, "partial.example.")
			m.Truncated = true
			return [][]byte{pack(t, m)}
		}
		return [][]byte{pack(t, mxReply(req, "a.example.", "b.example."))}
	})
	c := &Client{Servers: []string{s.addr}, Attempts: 1}
	r, err := c.Exchange(context.Background(), q)
	if err != nil || len(r.Answer) != 2 || r.Truncated {
		t.Fatalf("got %+v, %v", r, err)
	}
}

func TestExchangeNextServer(t *testing.T) {
	bad := newRawServer(t, func(req *dns.Msg, _ bool) [][]byte {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeServerFailure)
		return [][]byte{pack(t, m)}
	})
	good := newRawServer(t, func(req *dns.Msg, _ bool) [][]byte {
		return [][]byte{pack(t, mxReply(req, "a.example."))}
	})
	c := &Client{Servers: []string{bad.addr, good.addr}, Attempts: 1}
	r, err := c.Exchange(context.Background(), q)
	if err != nil || r.Server != good.addr {
		t.Fatalf("got %+v, %v", r, err)
	}
	c = &Client{Servers: []string{bad.addr}, Attempts: 2}
	_, err = c.Exchange(context.Background(), q)
	var e *Error
	if !errors.As(err, &e) || e.Rcode != RcodeServFail || e.Timeout() {
		t.Fatalf("got %v, want a SERVFAIL *Error", err)
	}
}

func TestExchangeHostile(t *testing.T) {
	tests := map[string]func(req *dns.Msg) []byte{
		"garbage": func(*dns.Msg) []byte { return []byte{1, 2, 3} },
		"header only": func(req *dns.Msg) []byte {
			b := pack(t, mxReply(req))
			return b[:12]
		},
		"cut short": func(req *dns.Msg) []byte {
			b := pack(t, mxReply(req, "a.example.", "b.example."))
			return b[:len(b)-5]
		},
		"pointer loop": func(req *dns.Msg) []byte {
			b := pack(t, mxReply(req))
			b[7] = 1 // ANCOUNT 1
			return append(b, 0xc0, byte(len(b)))
		},
	}
	for name, reply := range tests {
		t.Run(name, func(t *testing.T) {
			s := newRawServer(t, func(req *dns.Msg, _ bool) [][]byte { return [][]byte{reply(req)} })
			c := &Client{Servers: []string{s.addr}, Timeout: time.Second, Attempts: 1}
			if r, err := c.Exchange(context.Background(), q); err == nil {
				t.Fatalf("got %+v, want an error", r)
			}
		})
	}
}

func TestExchangeHugeTCP(t *testing.T) {
	s := newRawServer(t, func(req *dns.Msg, tcp bool) [][]byte {
		if !tcp {
			m := mxReply(req)
			m.Truncated = true
			return [][]byte{pack(t, m)}
		}
		var hosts []string
		for range 2000 {
			hosts = append(hosts, "a-long-name-to-make-the-answer-big.example.")
		}
		m := mxReply(req, hosts...)
		m.Compress = true
		return [][]byte{pack(t, m)}
	})
	c := &Client{Servers: []string{s.addr}, Attempts: 1}
	r, err := c.Exchange(context.Background(), q)
	if err != nil || len(r.Answer) != 2000 {
		t.Fatalf("got %d records, %v", len(r.Answer), err)
	}
}

func TestExchangeContextCancel(t *testing.T) {
	s := newRawServer(t, func(*dns.Msg, bool) [][]byte { return nil })
	c := &Client{Servers: []string{s.addr}, Timeout: time.Minute, Attempts: 1}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Exchange(ctx, q)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestSystemServers(t *testing.T) {
	f := t.TempDir() + "/resolv.conf"
	if err := writeFile(f, "nameserver 192.0.2.53\nnameserver 2001:db8::53\n"); err != nil {
		t.Fatal(err)
	}
	got, err := SystemServers(f)
	if err != nil || len(got) != 2 || got[0] != "192.0.2.53:53" || got[1] != "[2001:db8::53]:53" {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := SystemServers(t.TempDir() + "/missing"); err == nil {
		t.Fatal("missing file: no error")
	}
}
