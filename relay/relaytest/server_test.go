package relaytest_test

import (
	"crypto/tls"
	"net"
	"net/smtp"
	"strconv"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/relay/relaytest"
)

func newServer(t *testing.T) *relaytest.Server {
	t.Helper()
	s, err := relaytest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Hosts share one port on distinct loopback addresses and announce what
// their script says.
func TestHostsAndExtensions(t *testing.T) {
	s := newServer(t)
	full, err := s.AddHost("mx1.example.com", relaytest.HostConfig{DSN: true, MaxSize: 5000})
	if err != nil {
		t.Fatal(err)
	}
	bare, err := s.AddHost("mx2.example.com", relaytest.HostConfig{TLS: relaytest.TLSNone, NoPipelining: true, NoChunking: true, No8BitMIME: true, NoSMTPUTF8: true})
	if err != nil {
		t.Fatal(err)
	}
	if full.IP == bare.IP || s.Port == 0 {
		t.Fatalf("hosts at %s and %s, port %d", full.IP, bare.IP, s.Port)
	}
	ext := func(h *relaytest.Host, tlsToo bool) map[string]bool {
		c, err := smtp.Dial(net.JoinHostPort(h.IP, strconv.Itoa(s.Port)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Hello("client.test"); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, e := range []string{"PIPELINING", "CHUNKING", "8BITMIME", "SMTPUTF8", "STARTTLS", "DSN", "SIZE"} {
			ok, _ := c.Extension(e)
			got[e] = ok
		}
		if tlsToo {
			if err := c.StartTLS(&tls.Config{ServerName: h.Name, RootCAs: s.RootCAs()}); err != nil {
				t.Fatalf("STARTTLS with the test CA: %v", err)
			}
			if ok, _ := c.Extension("STARTTLS"); ok {
				t.Error("STARTTLS offered again after TLS")
			}
		}
		return got
	}
	got := ext(full, true)
	for _, e := range []string{"PIPELINING", "CHUNKING", "8BITMIME", "SMTPUTF8", "STARTTLS", "DSN", "SIZE"} {
		if !got[e] {
			t.Errorf("mx1 does not offer %s", e)
		}
	}
	got = ext(bare, false)
	for _, e := range []string{"PIPELINING", "CHUNKING", "8BITMIME", "SMTPUTF8", "STARTTLS"} {
		if got[e] {
			t.Errorf("mx2 offers %s", e)
		}
	}
}

// Messages are recorded with their envelope and TLS state; the data of a
// message is not mistaken for commands.
func TestRecordsMessages(t *testing.T) {
	s := newServer(t)
	h, err := s.AddHost("mx.example.com", relaytest.HostConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.Dial(net.JoinHostPort(h.IP, strconv.Itoa(s.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: h.Name, RootCAs: s.RootCAs()}); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.com"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	body := "Subject: x\r\n\r\nSTARTTLS\r\nBDAT 5\r\n"
	w.Write([]byte(body))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.From != "a@example.org" || strings.Join(m.To, ",") != "b@example.com" || m.TLS == nil || m.Chunked || string(m.Data) != body {
		t.Errorf("recorded %v tls=%v chunked=%v data=%q", m, m.TLS != nil, m.Chunked, m.Data)
	}
}

func TestGreetingAndClose(t *testing.T) {
	s := newServer(t)
	h, err := s.AddHost("mx.example.com", relaytest.HostConfig{Greeting: "421 4.3.2 busy\r\n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := smtp.Dial(net.JoinHostPort(h.IP, strconv.Itoa(s.Port))); err == nil || !strings.Contains(err.Error(), "421") {
		t.Errorf("Dial: %v, want the 421", err)
	}
	s.Close()
	if _, err := net.Dial("tcp", net.JoinHostPort(h.IP, strconv.Itoa(s.Port))); err == nil {
		t.Error("host still listening after Close")
	}
}
