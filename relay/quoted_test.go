package relay_test

import (
	"net/mail"
	"slices"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

const quoted = `"john smith"@example.com`

// quotedMessage is addressed to a quoted local part, a plain address at
// the same domain, and an address mime accepts but SMTP cannot carry (a
// path over 256 octets).
func quotedMessage(long string) *mime.Message {
	m := testMessage("ann@example.com")
	m.To = append(m.To, mail.Address{Address: quoted}, mail.Address{Address: long})
	return m
}

// longAddress has a 64-octet local part and a domain of four 60-octet
// labels: valid for mime, too long for an SMTP path.
func longAddress(s *relaytest.Server) string {
	label := strings.Repeat("d", 60)
	domain := strings.Join([]string{label, label, label, label, "com"}, ".")
	s.AddDomain(domain, "mx.example.com")
	return strings.Repeat("l", 64) + "@" + domain
}

// A quoted local part is sent quoted and its domain's other recipients go
// with it; an address SMTP cannot carry bounces alone with 5.1.3.
func TestQuotedLocalPartDelivered(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	long := longAddress(s)
	res, err := s.Client().Send(ctx(t), quotedMessage(long))
	if res == nil {
		t.Fatalf("Send: %v", err)
	}
	checkQuotedResults(t, s, res.Recipients, long)
}

func TestQuotedLocalPartQueued(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	long := longAddress(s)
	c := s.Client()
	c.Store = &queue.MemoryStore{}
	log := newEventLog()
	c.Events = log.hook
	if _, err := c.Enqueue(ctx(t), quotedMessage(long)); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	runClient(t, c)
	log.waitFor(t, relay.EventDelivered, quoted)
	log.waitFor(t, relay.EventDelivered, "ann@example.com")
	e := log.waitFor(t, relay.EventBounced, long)
	if e.Enhanced != "5.1.3" {
		t.Errorf("bounce of the long address: %+v", e)
	}
}

func checkQuotedResults(t *testing.T, s *relaytest.Server, rs []relay.RecipientResult, long string) {
	t.Helper()
	for _, r := range rs {
		want, enh := relay.Delivered, ""
		if r.Recipient == long {
			want, enh = relay.Bounced, "5.1.3"
		}
		if r.Status != want || (enh != "" && r.Enhanced != enh) {
			t.Errorf("%s: %v %s %s, want %v %s", r.Recipient, r.Status, r.Enhanced, r.Message, want, enh)
		}
	}
	msgs := s.Messages()
	// go-smtp's server hands the local part over unquoted.
	if len(msgs) != 1 || !slices.Contains(msgs[0].To, "john smith@example.com") || !slices.Contains(msgs[0].To, "ann@example.com") {
		t.Fatalf("received %d messages: %+v", len(msgs), msgs)
	}
}
