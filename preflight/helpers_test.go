package preflight

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
)

// The sources of the clean setup.
const (
	src4 = "192.0.2.1"
	src6 = "2001:db8::1"
)

// checkedAt is the fixed clock of the tests.
var checkedAt = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	keysOnce            sync.Once
	edKey, rsaKey, weak crypto.Signer
	otherEd             crypto.Signer
	keysErr             error
)

// testKeys returns keys made once for all tests: RSA generation is slow.
func testKeys(t testing.TB) (ed, rs, weakRSA, other crypto.Signer) {
	t.Helper()
	keysOnce.Do(func() {
		if edKey, keysErr = dkim.GenerateKey(dkim.Ed25519); keysErr != nil {
			return
		}
		if otherEd, keysErr = dkim.GenerateKey(dkim.Ed25519); keysErr != nil {
			return
		}
		if rsaKey, keysErr = dkim.GenerateKey(dkim.RSA); keysErr != nil {
			return
		}
		weak, keysErr = rsa.GenerateKey(rand.Reader, 1024)
	})
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return edKey, rsaKey, weak, otherEd
}

// signingKeys returns the keys a Signer with ed and rsa keys for domain
// reports.
func signingKeys(t testing.TB, domain string) []dkim.SigningKey {
	t.Helper()
	ed, rs, _, _ := testKeys(t)
	s, err := dkim.NewSigner(
		dkim.Config{Domain: domain, Selector: "ed", Key: ed},
		dkim.Config{Domain: domain, Selector: "rsa", Key: rs},
	)
	if err != nil {
		t.Fatal(err)
	}
	return s.Keys()
}

// cleanConfig is a setup with nothing to fix: two sources, two keys, a
// bounce domain, list mail with one-click unsubscribe.
func cleanConfig(t testing.TB) *Config {
	return &Config{
		Domain: "example.com",
		Sources: []Source{
			{Addr: netip.MustParseAddr(src4), Hostname: "mail.example.com"},
			{Addr: netip.MustParseAddr(src6)},
		},
		Hostname:        "mail.example.com",
		Keys:            signingKeys(t, "example.com"),
		BounceDomain:    "bounce.example.com",
		ListMail:        true,
		ListUnsubscribe: true,
		Now:             func() time.Time { return checkedAt },
	}
}

// rev returns the reverse name of an address, for a zone key.
func rev(t testing.TB, addr string) string {
	t.Helper()
	n, err := mxtest.ReverseName(addr)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// cleanZone is the DNS that matches cfg: every key of cfg published.
func cleanZone(t testing.TB, cfg *Config) mxtest.Zone {
	t.Helper()
	z := mxtest.Zone{
		"example.com": {
			MX:  []mx.MX{{Host: "mx.example.com", Pref: 10}},
			TXT: []string{"google-site-verification=abc", "v=spf1 ip4:" + src4 + " ip6:" + src6 + " ~all"},
		},
		"mx.example.com":     {A: []string{"192.0.2.10"}},
		"mail.example.com":   {A: []string{src4}, AAAA: []string{src6}},
		rev(t, src4):         {PTR: []string{"mail.example.com"}},
		rev(t, src6):         {PTR: []string{"mail.example.com"}},
		"_dmarc.example.com": {TXT: []string{"v=DMARC1; p=reject; rua=mailto:dmarc@example.com"}},
		"bounce.example.com": {
			MX:  []mx.MX{{Host: "mx.example.com", Pref: 10}},
			TXT: []string{"v=spf1 include:_spf.example.com -all"},
		},
		"_spf.example.com": {TXT: []string{"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/64 -all"}},
	}
	for _, k := range cfg.Keys {
		publishKey(t, z, k.Domain, k.Selector, k.Public)
	}
	return z
}

// publishKey puts the record of pub at selector._domainkey.domain.
func publishKey(t testing.TB, z mxtest.Zone, domain, selector string, pub crypto.PublicKey) {
	t.Helper()
	v, err := dkim.TXTRecord(pub)
	if err != nil {
		t.Fatal(err)
	}
	z[dkim.RecordName(domain, selector)] = mxtest.Domain{TXT: []string{v}}
}

// setTXT replaces the TXT records of name, keeping its other records.
func setTXT(z mxtest.Zone, name string, txt ...string) {
	d := z[name]
	d.TXT = txt
	z[name] = d
}

// run checks cfg against zone.
func run(t testing.TB, cfg *Config, zone mxtest.Zone, srvf func(*mxtest.Server)) *Report {
	t.Helper()
	srv := mxtest.NewServer(zone)
	t.Cleanup(srv.Close)
	if srvf != nil {
		srvf(srv)
	}
	cfg.Resolver = srv.Resolver()
	rep, err := Check(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// checks returns the check names of a report with their highest severity.
func checks(r *Report) map[string]Severity {
	out := map[string]Severity{}
	for _, f := range r.Findings {
		if s, ok := out[f.Check]; !ok || f.Severity > s {
			out[f.Check] = f.Severity
		}
	}
	return out
}

// problems lists the findings at Warning or Error, for failure messages.
func problems(r *Report) string {
	var lines []string
	for _, f := range r.Findings {
		if f.Severity >= Info {
			lines = append(lines, f.String())
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// find returns the first finding of check, or nil.
func find(r *Report, check string) *Finding {
	for i := range r.Findings {
		if r.Findings[i].Check == check {
			return &r.Findings[i]
		}
	}
	return nil
}

// b64 is standard base64.
func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// x509PKCS1 returns the PKCS #1 RSAPublicKey DER of an RSA key.
func x509PKCS1(k crypto.Signer) []byte {
	return x509.MarshalPKCS1PublicKey(k.Public().(*rsa.PublicKey))
}

// findAt returns the finding of check about subject, or nil.
func findAt(r *Report, check, subject string) *Finding {
	for i := range r.Findings {
		if r.Findings[i].Check == check && r.Findings[i].Subject == subject {
			return &r.Findings[i]
		}
	}
	return nil
}
