package relay_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

func newHarness(t *testing.T) *relaytest.Server {
	t.Helper()
	s, err := relaytest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func addHost(t *testing.T, s *relaytest.Server, name string, cfg relaytest.HostConfig) *relaytest.Host {
	t.Helper()
	h, err := s.AddHost(name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// direct is the harness transport of a Client from s.Client().
func direct(c *relay.Client) *relay.Direct { return c.Transport.(*relay.Direct) }

func testMessage(to ...string) *mime.Message {
	m := &mime.Message{
		From:    addr("Sender <sender@example.org>"),
		Subject: "Grüße aus Köln",
		Text:    "Hello.\n.\nA dot line above.\n",
		HTML:    "<p>Hello.</p>",
	}
	for _, a := range to {
		m.To = append(m.To, addr(a))
	}
	return m
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestSendDelivers(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx1.example.com", relaytest.HostConfig{})
	addHost(t, s, "mx.example.net", relaytest.HostConfig{TLS: relaytest.TLSNone})
	s.AddDomain("example.com", "mx1.example.com")
	s.AddDomain("example.net", "mx.example.net")
	c := s.Client()

	m := testMessage("a@example.com", "b@example.com", "c@example.net")
	m.Bcc = append(m.Bcc, addr("hidden@example.net"))
	res, err := c.Send(ctx(t), m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := res.Count(relay.Delivered); got != 4 {
		t.Fatalf("delivered %d of 4: %+v", got, res.Recipients)
	}
	byRcpt := map[string]relay.RecipientResult{}
	for _, r := range res.Recipients {
		byRcpt[r.Recipient] = r
		if r.Code != 250 {
			t.Errorf("%s: code %d", r.Recipient, r.Code)
		}
	}
	if r := byRcpt["a@example.com"]; r.MX != "mx1.example.com" || r.TLS.Version == "" || !r.TLS.Verified || r.TLS.Policy != "opportunistic" {
		t.Errorf("a@example.com: %+v", r)
	}
	if r := byRcpt["c@example.net"]; r.MX != "mx.example.net" || r.TLS.Version != "" {
		t.Errorf("c@example.net: %+v", r)
	}
	msgs := s.Messages()
	if len(msgs) != 2 {
		t.Fatalf("received %d messages, want 2 (one per domain)", len(msgs))
	}
	for _, got := range msgs {
		if got.From != "sender@example.org" {
			t.Errorf("MAIL FROM %q", got.From)
		}
		if !got.Pipelined || !got.Chunked {
			t.Errorf("%s: pipelined=%v chunked=%v, want both", got.Host, got.Pipelined, got.Chunked)
		}
		if bytes.Contains(got.Data, []byte("Bcc")) || bytes.Contains(got.Data, []byte("hidden@")) {
			t.Errorf("Bcc leaked into the message")
		}
		if got.Helo != "client.relaytest" {
			t.Errorf("EHLO %q", got.Helo)
		}
	}
	var net *relaytest.Message
	for _, m := range msgs {
		if m.Host == "mx.example.net" {
			net = m
		}
	}
	if net == nil || strings.Join(net.To, ",") != "c@example.net,hidden@example.net" {
		t.Errorf("example.net envelope: %v", net)
	}
}

func TestSendOutcomes(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{
		RcptReply: func(rcpt string) *relaytest.Reply {
			switch {
			case strings.HasPrefix(rcpt, "unknown@"):
				return &relaytest.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
			case strings.HasPrefix(rcpt, "full@"):
				return &relaytest.Reply{Code: 452, Enhanced: "4.2.2", Text: "mailbox full"}
			}
			return nil
		},
	})
	s.AddDomain("example.com", "mx.example.com")
	s.DNS.Set("null.example", mxtest.Domain{MX: []mx.MX{{Host: ".", Pref: 0}}})
	s.DNS.Set("broken.example", mxtest.Domain{Faults: mxtest.Faults{ServFail: true}})

	c := s.Client()
	m := testMessage("ok@example.com", "unknown@example.com", "full@example.com",
		"x@null.example", "y@nxdomain.example", "z@broken.example")
	res, err := c.Send(ctx(t), m)
	if err == nil {
		t.Fatal("Send: nil error with failed recipients")
	}
	want := map[string]struct {
		status   relay.Status
		code     int
		enhanced string
	}{
		"ok@example.com":      {relay.Delivered, 250, ""},
		"unknown@example.com": {relay.Bounced, 550, "5.1.1"},
		"full@example.com":    {relay.Deferred, 452, "4.2.2"},
		"x@null.example":      {relay.Bounced, 0, "5.1.10"},
		"y@nxdomain.example":  {relay.Bounced, 0, "5.1.2"},
		"z@broken.example":    {relay.Deferred, 0, "4.4.3"},
	}
	for _, r := range res.Recipients {
		w := want[r.Recipient]
		if r.Status != w.status || r.Code != w.code || (w.enhanced != "" && r.Enhanced != w.enhanced) {
			t.Errorf("%s: got %v %d %s %q, want %v %d %s", r.Recipient, r.Status, r.Code, r.Enhanced, r.Message, w.status, w.code, w.enhanced)
		}
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 5 {
		t.Fatalf("error %v does not join 5 recipient errors", err)
	}
	var re *relay.Error
	if !errors.As(err, &re) {
		t.Fatalf("errors.As(*relay.Error) failed on %v", err)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages received, want 1", n)
	}
}
