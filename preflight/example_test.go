package preflight_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/preflight"
)

// A domain about to send from 192.0.2.1: its DKIM key and reverse DNS are
// in place, but its SPF record authorises only its MX host, and it has no
// DMARC record.
func Example() {
	key, err := dkim.GenerateKey(dkim.Ed25519)
	if err != nil {
		panic(err)
	}
	signer, err := dkim.NewSigner(dkim.Config{Domain: "example.com", Selector: "mail", Key: key})
	if err != nil {
		panic(err)
	}
	keyRecord, err := dkim.TXTRecord(key.Public())
	if err != nil {
		panic(err)
	}
	reverse, err := mxtest.ReverseName("192.0.2.1")
	if err != nil {
		panic(err)
	}
	srv := mxtest.NewServer(mxtest.Zone{
		"example.com":                 {MX: []mx.MX{{Host: "mx.example.com", Pref: 10}}, TXT: []string{"v=spf1 mx ~all"}},
		"mx.example.com":              {A: []string{"192.0.2.10"}},
		"mail.example.com":            {A: []string{"192.0.2.1"}},
		reverse:                       {PTR: []string{"mail.example.com"}},
		"mail._domainkey.example.com": {TXT: []string{keyRecord}},
	})
	defer srv.Close()

	rep, err := preflight.Check(context.Background(), &preflight.Config{
		Domain:   "example.com",
		Resolver: srv.Resolver(),
		Sources:  []preflight.Source{{Addr: netip.MustParseAddr("192.0.2.1"), Hostname: "mail.example.com"}},
		Keys:     signer.Keys(),
		Now:      func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := rep.WriteText(os.Stdout); err != nil {
		fmt.Println(err)
	}
	// Output:
	// Preflight of example.com, checked 2026-03-01 12:00:00 UTC
	// 1 error, 1 warning, 0 info, 3 ok
	//
	// SPF (RFC 7208)
	//   ERROR    spf.not-authorized  example.com
	//            found   192.0.2.1 gets softfail (matched ~all)
	//            fix     authorise the sending addresses in the SPF record
	//            record  example.com. IN TXT "v=spf1 mx ip4:192.0.2.1 ~all"
	//            source  RFC 7208 §2.6, §5.6
	//
	// DMARC (RFC 7489)
	//   WARNING  dmarc.missing       _dmarc.example.com
	//            found   no v=DMARC1 record at _dmarc.example.com: receivers apply no DMARC policy, and some treat unauthenticated mail from the domain with suspicion
	//            fix     publish a DMARC record; p=none is the minimum the bulk-sender rules accept
	//            record  _dmarc.example.com. IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@example.com"
	//            source  RFC 7489 §6.6.3; Google Email sender guidelines, 2024
	//
	// DKIM (RFC 6376)
	//   OK       dkim.ok             mail._domainkey.example.com
	//            found   k=ed25519, matches the signing key
	//
	// Reverse DNS and EHLO
	//   OK       rdns.ok             192.0.2.1
	//            found   192.0.2.1 → mail.example.com → 192.0.2.1; EHLO mail.example.com
	//
	// Replies and bounces (MX)
	//   OK       mx.ok               example.com
	//            found   MX mx.example.com: replies and bounces can be delivered
}

// Compare tells what got worse since the last preflight, for an alert.
func ExampleCompare() {
	yesterday := &preflight.Report{Domain: "example.com", Findings: []preflight.Finding{
		{Check: "dmarc.policy-none", Severity: preflight.Info, Subject: "_dmarc.example.com"},
	}}
	today := &preflight.Report{Domain: "example.com", Findings: []preflight.Finding{
		{Check: "dmarc.policy-none", Severity: preflight.Info, Subject: "_dmarc.example.com"},
		{Check: "dkim.missing", Severity: preflight.Error, Subject: "mail._domainkey.example.com", Found: "no TXT record"},
	}}
	for _, f := range preflight.Compare(yesterday, today) {
		fmt.Println(f)
	}
	// Output:
	// error dkim.missing mail._domainkey.example.com: no TXT record
}
