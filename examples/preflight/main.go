// Command preflight checks a sending domain's DNS setup the way receivers
// will look at it, before the first message goes out: SPF, DKIM, DMARC,
// reverse DNS, the MX of the From and bounce domains and the bulk-sender
// rules. It serves the domain from an in-process DNS server (mx/mxtest)
// with two mistakes, prints the report with the fix for each, then
// publishes the fixes and prints the report again.
//
//	go run ./examples/preflight
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/netip"
	"os"
	"time"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/relay"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// source is the address the mail leaves from (a documentation address:
// the check only looks it up in the DNS).
var source = netip.MustParseAddr("192.0.2.25")

func run(ctx context.Context, out io.Writer) error {
	// 1. The signing key, and the client as the application configures it.
	key, err := dkim.GenerateKey(dkim.Ed25519)
	if err != nil {
		return err
	}
	signer, err := dkim.NewSigner(dkim.Config{Domain: "example.org", Selector: "mail2026", Key: key})
	if err != nil {
		return err
	}
	keyRecord, err := dkim.TXTRecord(key.Public())
	if err != nil {
		return err
	}

	// 2. The zone, with two mistakes: the SPF record lists the old
	// sending address, and there is no DMARC record.
	dns := mxtest.NewServer(mxtest.Zone{
		"example.org":                     {MX: []mx.MX{{Host: "mx.example.org", Pref: 10}}, TXT: []string{"v=spf1 ip4:198.51.100.7 -all"}},
		"mx.example.org":                  {A: []string{"198.51.100.10"}},
		"mail.example.org":                {A: []string{source.String()}},
		"mail2026._domainkey.example.org": {TXT: []string{keyRecord}},
	})
	defer dns.Close()
	ptr, err := mxtest.ReverseName(source.String())
	if err != nil {
		return err
	}
	dns.Set(ptr, mxtest.Domain{PTR: []string{"mail.example.org"}})

	client := &relay.Client{
		Resolver: dns.Resolver(),
		Hostname: "mail.example.org",
		Sources:  []relay.Source{{Addr: source, Hostname: "mail.example.org"}},
		Signer:   signer,
	}
	if err := report(ctx, out, client); err != nil {
		return err
	}

	// 3. The fixes the report gives: the address in SPF, a DMARC record.
	dns.Set("example.org", mxtest.Domain{MX: []mx.MX{{Host: "mx.example.org", Pref: 10}}, TXT: []string{"v=spf1 ip4:" + source.String() + " -all"}})
	dns.Set("_dmarc.example.org", mxtest.Domain{TXT: []string{"v=DMARC1; p=quarantine; rua=mailto:dmarc@example.org"}})
	fmt.Fprintln(out)
	fmt.Fprintln(out, "after publishing the fixes:")
	fmt.Fprintln(out)
	return report(ctx, out, client)
}

// report runs the preflight and prints it.
func report(ctx context.Context, out io.Writer, client *relay.Client) error {
	rep, err := client.Preflight(ctx, "example.org")
	if err != nil {
		return err
	}
	return rep.WriteText(out)
}
