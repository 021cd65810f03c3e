package relay_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// Bytes that are not RFC 5322 are refused before anything is sent, with
// an error that says where: a lone CR in a header would otherwise start a
// new field on receivers that read it as a line break.
func TestSendRawRefusesNonCompliantBytes(t *testing.T) {
	head := "From: a@example.org\r\nTo: b@example.com\r\n"
	cases := map[string]struct {
		msg    string
		line   int
		reason string
	}{
		"cr in subject":   {head + "Subject: hi\rReply-To: evil@example.net\r\n\r\nbody\r\n", 3, "lone CR"},
		"cr in body":      {head + "Subject: x\r\n\r\nfirst\rsecond\r\n", 5, "lone CR"},
		"cr at the end":   {head + "Subject: x\r\n\r\nbody\r", 5, "lone CR"},
		"cr before crlf":  {head + "Subject: x\r\n\r\nbody\r\r\n", 5, "lone CR"},
		"nul":             {head + "Subject: x\r\n\r\nbo\x00dy\r\n", 5, "NUL byte"},
		"2000 octets":     {head + "Subject: x\r\n\r\n" + strings.Repeat("a", 2000) + "\r\n", 5, "line over 998 octets"},
		"5000 in header":  {head + "X-Long: " + strings.Repeat("b", 5000) + "\r\n\r\nbody\r\n", 3, "line over 998 octets"},
		"999 no eol":      {head + "\r\n" + strings.Repeat("c", 999), 4, "line over 998 octets"},
		"bare lf then cr": {"From: a@example.org\nSubject: x\ry\n\nbody\n", 2, "lone CR"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := newHarness(t)
			h := addHost(t, s, "mx.example.com", relaytest.HostConfig{})
			s.AddDomain("example.com", "mx.example.com")
			res, err := s.Client().SendRaw(ctx(t), "a@example.org", []string{"b@example.com"}, strings.NewReader(tc.msg))
			if !errors.Is(err, relay.ErrInvalidMessage) {
				t.Fatalf("SendRaw = %v, %+v; want ErrInvalidMessage", res, err)
			}
			var me *relay.MessageError
			if !errors.As(err, &me) || me.Line != tc.line || me.Reason != tc.reason {
				t.Errorf("error %v (%+v), want line %d: %s", err, me, tc.line, tc.reason)
			}
			if n := h.Connections(); n != 0 {
				t.Errorf("%d connections made, want none", n)
			}
		})
	}
}

// Lines of exactly 998 octets are allowed, and so is a message that does
// not end in a line break.
func TestSendRawAcceptsLongestLine(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	line := strings.Repeat("d", 998)
	msg := "From: a@example.org\r\nTo: b@example.com\r\n\r\n" + line + "\r\n" + line
	if _, err := s.Client().SendRaw(ctx(t), "a@example.org", []string{"b@example.com"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || !bytes.Contains(msgs[0].Data, []byte(line+"\r\n"+line+"\r\n")) {
		t.Fatalf("message not delivered intact: %d messages", len(msgs))
	}
}

// A message written with bare LF line ends is converted before signing,
// so the signature the receiver checks is over the bytes it got.
func TestSendRawBareLFSignedAsSent(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	key, err := dkim.GenerateKey(dkim.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := dkim.TXTRecord(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	s.DNS.Set(dkim.RecordName("example.org", "s1"), mxtest.Domain{TXT: []string{txt}})
	signer, err := dkim.NewSigner(dkim.Config{Domain: "example.org", Selector: "s1", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	c.Signer = signer
	msg := "From: a@example.org\nTo: b@example.com\nSubject: unix\n\nline one\n\nline three\n"
	if _, err := c.SendRaw(ctx(t), "a@example.org", []string{"b@example.com"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	if !bytes.HasSuffix(msgs[0].Data, []byte("Subject: unix\r\n\r\nline one\r\n\r\nline three\r\n")) {
		t.Errorf("not CRLF: %q", msgs[0].Data)
	}
	vs, err := dkim.Verify(ctx(t), bytes.NewReader(msgs[0].Data), &dkim.VerifyOptions{LookupTXT: s.NetResolver().LookupTXT})
	if err != nil || len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("DKIM on the received message: %v %+v", err, vs)
	}
}

// An 8-bit body is never sent to a server without 8BITMIME: the recipient
// bounces with 5.6.3 and the server receives nothing.
func TestSendRawEightBitNeedsEightBitMIME(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{No8BitMIME: true})
	s.AddDomain("example.com", "mx.example.com")
	msg := "From: a@example.org\r\nTo: b@example.com\r\n\r\ncaf\xc3\xa9\r\n"
	res, err := s.Client().SendRaw(ctx(t), "a@example.org", []string{"b@example.com"}, strings.NewReader(msg))
	if err == nil || res == nil {
		t.Fatalf("SendRaw = %v, %v; want a bounce", res, err)
	}
	r := res.Recipients[0]
	if r.Status != relay.Bounced || r.Enhanced != "5.6.3" {
		t.Errorf("result %+v, want bounced 5.6.3", r)
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d messages arrived", n)
	}
}

// negLen is a reader whose Len method is broken.
type negLen struct{ *strings.Reader }

func (negLen) Len() int { return -1 }

func TestSendRawNegativeLen(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	msg := "From: a@example.org\r\nTo: b@example.com\r\n\r\nhi\r\n"
	if _, err := s.Client().SendRaw(ctx(t), "a@example.org", []string{"b@example.com"}, negLen{strings.NewReader(msg)}); err != nil {
		t.Fatal(err)
	}
}
