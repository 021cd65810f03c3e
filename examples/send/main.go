// Command send delivers one message straight to the recipients' mail
// servers over the internet, and prints what became of each recipient.
//
//	go run ./examples/send -from me@example.org -to you@example.net \
//	    -subject "Hello" -text body.txt -html body.html -attach report.pdf \
//	    -dkim-key dkim.pem -dkim-selector mail -ehlo mail.example.org
//
// Direct delivery needs outbound port 25, a sending IP with reverse DNS, and
// SPF/DKIM records for the sender's domain, or receivers will refuse or
// junk the mail.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/dkim"
	mxmime "github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/relay"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var to, cc, attach list
	from := flag.String("from", "", "sender, e.g. \"Ann <ann@example.org>\" (required)")
	flag.Var(&to, "to", "recipient (repeatable)")
	flag.Var(&cc, "cc", "carbon-copy recipient (repeatable)")
	flag.Var(&attach, "attach", "file to attach (repeatable)")
	subject := flag.String("subject", "", "subject")
	textFile := flag.String("text", "", "file holding the plain-text body")
	htmlFile := flag.String("html", "", "file holding the HTML body")
	unsub := flag.String("unsubscribe", "", "List-Unsubscribe URL (https: or mailto:)")
	keyFile := flag.String("dkim-key", "", "PEM private key to DKIM-sign with")
	selector := flag.String("dkim-selector", "", "DKIM selector")
	domain := flag.String("dkim-domain", "", "DKIM domain (default: the sender's domain)")
	ehlo := flag.String("ehlo", "", "EHLO name (default: the host name)")
	tlsPolicy := flag.String("tls", "opportunistic", "TLS policy: opportunistic or required")
	noSTS := flag.Bool("no-mta-sts", false, "ignore MTA-STS policies")
	verbose := flag.Bool("v", false, "log each step and print the SMTP transcript")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Parse()

	if *from == "" || len(to)+len(cc) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	m := &mxmime.Message{Subject: *subject, ListUnsubscribe: *unsub}
	f, err := mail.ParseAddress(*from)
	check(err)
	m.From = *f
	m.To = addresses(to)
	m.Cc = addresses(cc)
	m.Text = readFile(*textFile)
	m.HTML = readFile(*htmlFile)
	for _, p := range attach {
		data, err := os.ReadFile(p)
		check(err)
		ct := mime.TypeByExtension(filepath.Ext(p))
		m.Attachments = append(m.Attachments, mxmime.Attachment{Filename: filepath.Base(p), ContentType: ct, Data: data})
	}

	d := &relay.Direct{Hostname: *ehlo, DisableMTASTS: *noSTS}
	c := &relay.Client{Transport: d}
	switch *tlsPolicy {
	case "opportunistic":
	case "required":
		d.RequireTLS = true
	default:
		log.Fatalf("unknown -tls %q", *tlsPolicy)
	}
	if *verbose {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		d.DebugWriter = os.Stderr
	}
	if *keyFile != "" {
		pemBytes, err := os.ReadFile(*keyFile)
		check(err)
		key, err := dkim.ParsePrivateKey(pemBytes)
		check(err)
		d := *domain
		if d == "" {
			d = f.Address[strings.LastIndexByte(f.Address, '@')+1:]
		}
		c.Signer, err = dkim.NewSigner(dkim.Config{Domain: d, Selector: *selector, Key: key})
		check(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	res, err := c.Send(ctx, m)
	if res == nil {
		log.Fatal(err)
	}
	for _, r := range res.Recipients {
		fmt.Printf("%s\t%s\t%d %s\t%s\ttls=%s verified=%v\t%s\n",
			r.Recipient, r.Status, r.Code, r.Enhanced, r.MX, r.TLS.Version, r.TLS.Verified, r.Message)
	}
	if err != nil {
		os.Exit(1)
	}
}

func addresses(l list) []mail.Address {
	var out []mail.Address
	for _, s := range l {
		a, err := mail.ParseAddress(s)
		check(err)
		out = append(out, *a)
	}
	return out
}

func readFile(p string) string {
	if p == "" {
		return ""
	}
	b, err := os.ReadFile(p)
	check(err)
	return string(b)
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
