package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"
)

// The program prints the report of the zone with its two mistakes, each
// with the record that fixes it, then a clean report once they are fixed.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := regexp.MustCompile(`checked [0-9-]+ [0-9:]+ UTC`).ReplaceAllString(out.String(), "checked TIME")
	want := `Preflight of example.org, checked TIME
1 error, 1 warning, 0 info, 3 ok

SPF (RFC 7208)
  ERROR    spf.not-authorized  example.org
           found   192.0.2.25 gets fail (matched -all)
           fix     authorise the sending addresses in the SPF record
           record  example.org. IN TXT "v=spf1 ip4:198.51.100.7 ip4:192.0.2.25 -all"
           source  RFC 7208 §2.6, §5.6

DMARC (RFC 7489)
  WARNING  dmarc.missing       _dmarc.example.org
           found   no v=DMARC1 record at _dmarc.example.org: receivers apply no DMARC policy, and some treat unauthenticated mail from the domain with suspicion
           fix     publish a DMARC record; p=none is the minimum the bulk-sender rules accept
           record  _dmarc.example.org. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@example.org"
           source  RFC 7489 §6.6.3; Google Email sender guidelines, 2024

DKIM (RFC 6376)
  OK       dkim.ok             mail2026._domainkey.example.org
           found   k=ed25519, matches the signing key

Reverse DNS and EHLO
  OK       rdns.ok             192.0.2.25
           found   192.0.2.25 → mail.example.org → 192.0.2.25; EHLO mail.example.org

Replies and bounces (MX)
  OK       mx.ok               example.org
           found   MX mx.example.org: replies and bounces can be delivered

after publishing the fixes:

Preflight of example.org, checked TIME
0 errors, 0 warnings, 0 info, 5 ok

SPF (RFC 7208)
  OK       spf.ok    example.org
           found   "v=spf1 ip4:192.0.2.25 -all": 192.0.2.25 passes (ip4:192.0.2.25); 0 of 10 DNS lookups at most

DKIM (RFC 6376)
  OK       dkim.ok   mail2026._domainkey.example.org
           found   k=ed25519, matches the signing key

DMARC (RFC 7489)
  OK       dmarc.ok  _dmarc.example.org
           found   "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.org"; DKIM (relaxed): d=example.org s=mail2026 is aligned; SPF: envelope domain example.org is aligned (relaxed)

Reverse DNS and EHLO
  OK       rdns.ok   192.0.2.25
           found   192.0.2.25 → mail.example.org → 192.0.2.25; EHLO mail.example.org

Replies and bounces (MX)
  OK       mx.ok     example.org
           found   MX mx.example.org: replies and bounces can be delivered
`
	if got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}
