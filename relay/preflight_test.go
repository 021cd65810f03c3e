package relay_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/preflight"
	"github.com/mxrelay/mxrelay/relay"
)

// preflightClient is a client of the harness that signs for example.org,
// whose zone publishes SPF, the DKIM key and DMARC.
func preflightClient(t *testing.T) (*relay.Client, *mxtest.Server, string) {
	t.Helper()
	s := newHarness(t)
	key, err := dkim.GenerateKey(dkim.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := dkim.NewSigner(dkim.Config{Domain: "example.org", Selector: "mail", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	s.DNS.Set("example.org", mxtest.Domain{MX: []mx.MX{{Host: "mx.example.org", Pref: 10}}, TXT: []string{"v=spf1 ip4:192.0.2.0/24 -all"}})
	s.DNS.Set("mx.example.org", mxtest.Domain{A: []string{"192.0.2.10"}})
	keyTXT, err := dkim.TXTRecord(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	s.DNS.Set("mail._domainkey.example.org", mxtest.Domain{TXT: []string{keyTXT}})
	s.DNS.Set("_dmarc.example.org", mxtest.Domain{TXT: []string{"v=DMARC1; p=quarantine; rua=mailto:dmarc@example.org"}})
	c := s.Client()
	c.Signer = signer
	return c, s.DNS, keyTXT
}

func TestPreflight(t *testing.T) {
	c, dns, _ := preflightClient(t)
	rep, err := c.Preflight(ctx(t), "example.org")
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("a clean zone has errors or warnings:\n%s", rep)
	}
	dns.Delete("mail._domainkey.example.org")
	rep, err = c.Preflight(ctx(t), "example.org")
	if err != nil {
		t.Fatal(err)
	}
	if errs := rep.Errors(); len(errs) != 1 || errs[0].Check != "dkim.missing" || errs[0].Record == nil {
		t.Errorf("without the key's record: %v", errs)
	}
	if _, err := c.Preflight(ctx(t), "bad domain"); !errors.Is(err, preflight.ErrInvalidConfig) {
		t.Errorf("a bad domain: %v", err)
	}
	custom := &relay.Client{Transport: &recordingTransport{}}
	if _, err := custom.Preflight(ctx(t), "example.org"); !errors.Is(err, relay.ErrInvalidConfig) {
		t.Errorf("a custom transport: %v", err)
	}
}

// A preflight error that appears fires an alert at the next daily check,
// and resolves once the record is back.
func TestAlertPreflight(t *testing.T) {
	c, dns, keyTXT := preflightClient(t)
	c.Alerts = relay.AlertOptions{Rules: []relay.AlertRule{{Name: "preflight", Kind: relay.AlertPreflight}},
		Preflight: []string{"example.org"}, PreflightEvery: time.Hour}
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	relay.SetClock(c, func() time.Time { return time.Unix(0, now.Load()) })
	wantChanges(t, "clean", check(t, c))
	dns.Delete("mail._domainkey.example.org")
	wantChanges(t, "not yet due", check(t, c))
	now.Add(int64(time.Hour))
	// The key's record is gone, and with it DKIM's alignment.
	wantChanges(t, "after the record went", check(t, c),
		"firing error preflight example.org dkim.missing mail._domainkey.example.org",
		"firing warning preflight example.org dmarc.dkim-unaligned _dmarc.example.org")
	if f := c.FiringAlerts(); len(f) != 2 || !strings.Contains(f[0].Message, "fix: publish") {
		t.Errorf("firing %+v", f)
	}
	dns.Set("mail._domainkey.example.org", mxtest.Domain{TXT: []string{keyTXT}})
	now.Add(int64(time.Hour))
	wantChanges(t, "record back", check(t, c),
		"resolved error preflight example.org dkim.missing mail._domainkey.example.org",
		"resolved warning preflight example.org dmarc.dkim-unaligned _dmarc.example.org")
}
