// Command quickstart sends a signed message end to end without leaving the
// machine: an in-process DNS server and MX hosts (relay/relaytest) stand in
// for the internet, a DKIM key is generated and published in that DNS, the
// message goes out through relay.Send, and what arrived is printed with its
// DKIM verification.
//
//	go run ./examples/quickstart
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run does the whole tour and writes the report to out.
func run(ctx context.Context, out io.Writer) error {

	// 1. An offline internet: DNS plus two MX hosts on loopback. The host
	// for example.com knows no "nobody"; example.net's offers no TLS.
	srv, err := relaytest.NewServer()
	if err != nil {
		return err
	}
	defer srv.Close()
	_, err = srv.AddHost("mx.example.com", relaytest.HostConfig{
		RcptReply: func(rcpt string) *relaytest.Reply {
			if strings.HasPrefix(rcpt, "nobody@") {
				return &relaytest.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	_, err = srv.AddHost("mx.example.net", relaytest.HostConfig{TLS: relaytest.TLSNone})
	if err != nil {
		return err
	}
	srv.AddDomain("example.com", "mx.example.com")
	srv.AddDomain("example.net", "mx.example.net")

	// 2. DKIM: two keys for the sender's domain (Ed25519 for modern
	// receivers, RSA for the rest), published in that DNS.
	var cfgs []dkim.Config
	for _, k := range []struct {
		kind     dkim.KeyType
		selector string
	}{{dkim.Ed25519, "ed"}, {dkim.RSA, "rsa"}} {
		key, err := dkim.GenerateKey(k.kind)
		if err != nil {
			return err
		}
		txt, err := dkim.TXTRecord(key.Public())
		if err != nil {
			return err
		}
		srv.DNS.Set(dkim.RecordName("example.org", k.selector), mxtest.Domain{TXT: []string{txt}})
		cfgs = append(cfgs, dkim.Config{Domain: "example.org", Selector: k.selector, Key: key})
	}
	signer, err := dkim.NewSigner(cfgs...)
	if err != nil {
		return err
	}

	// 3. The default client, pointed at the offline internet.
	srv.Configure(relay.DefaultClient)
	relay.DefaultClient.Signer = signer

	// 4. The message, sent straight to the recipients' MX hosts.
	msg := &mime.Message{
		From:    mail.Address{Name: "Shop Ünïcode", Address: "news@example.org"},
		To:      []mail.Address{{Name: "Ann", Address: "ann@example.com"}, {Address: "nobody@example.com"}},
		Cc:      []mail.Address{{Name: "Bob", Address: "bob@example.net"}},
		Subject: "Your order — ready for pickup ✓",
		Text:    "Hello Ann,\n\nyour order is ready. The receipt is attached.\n",
		HTML:    "<p>Hello Ann,</p><p>your order is <b>ready</b>. The receipt is attached.</p>",
		Attachments: []mime.Attachment{{
			Filename: "receipt.txt", ContentType: "text/plain",
			Data: []byte("1 × coffee grinder ........ 49.00 EUR\n"),
		}},
		ListUnsubscribe: "https://example.org/unsubscribe?u=ann",
	}
	fmt.Fprint(out, intro)
	res, err := relay.Send(ctx, msg)
	if res == nil {
		return err
	}

	fmt.Fprintln(out, "\n== per-recipient results")
	count := map[relay.Status]int{}
	for _, r := range res.Recipients {
		count[r.Status]++
		tls := "plaintext"
		if r.TLS.Version != "" {
			tls = r.TLS.Version
			if r.TLS.Verified {
				tls += ", verified"
			}
		}
		fmt.Fprintf(out, "%-20s %-9s %d %-6s via %-15s %-22s %s\n",
			r.Recipient, r.Status, r.Code, r.Enhanced, r.MX, tls, r.Message)
	}

	// 5. What the MX hosts received, and the DKIM check a receiver makes.
	passed, signatures := 0, 0
	for _, m := range srv.Messages() {
		fmt.Fprintf(out, "\n== received by %s: MAIL FROM:<%s> RCPT TO:%v, TLS=%v, BDAT=%v, pipelined=%v\n",
			m.Host, m.From, m.To, m.TLS != nil, m.Chunked, m.Pipelined)
		results, err := dkim.Verify(ctx, bytes.NewReader(m.Data), &dkim.VerifyOptions{LookupTXT: srv.NetResolver().LookupTXT})
		if err != nil {
			return err
		}
		for _, v := range results {
			signatures++
			status := "pass"
			if v.Err != nil {
				status = "FAIL: " + v.Err.Error()
			} else {
				passed++
			}
			fmt.Fprintf(out, "   DKIM d=%s s=%s a=%s: %s\n", v.Domain, v.Selector, v.Algorithm, status)
		}
	}
	first := srv.Messages()[0]
	fmt.Fprintf(out, "\n== the header as received by %s (signatures folded)\n", first.Host)
	if err := writeHeader(out, first.Data); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nsummary: %d delivered, %d bounced, %d deferred; %d messages received; %d of %d DKIM signatures verified\n",
		count[relay.Delivered], count[relay.Bounced], count[relay.Deferred], len(srv.Messages()), passed, signatures)
	return nil
}

// intro says what the tour shows, so that its bounce and its plaintext
// delivery read as the demonstrations they are.
const intro = `mxrelay quickstart: one message, three recipients, sent by relay.Send
straight to the recipients' MX hosts, over an offline internet (an
in-process DNS server and two MX hosts on loopback, from relay/relaytest).
On purpose: mx.example.com knows no "nobody" (a bounce, 5.1.1), and
mx.example.net offers no STARTTLS (delivered in plaintext, as opportunistic
TLS allows). The message is DKIM-signed with two generated keys, published
in that DNS and verified below as a receiver would.
`

// writeHeader writes the header of a received message, each
// DKIM-Signature shortened to its first line.
func writeHeader(out io.Writer, data []byte) error {
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	inSig := false
	for _, line := range strings.Split(string(head), "\r\n") {
		folded := strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")
		if !folded {
			inSig = strings.HasPrefix(strings.ToLower(line), "dkim-signature:")
			if inSig {
				line += " ..."
			}
		} else if inSig {
			continue
		}
		if _, err := fmt.Fprintln(out, line); err != nil {
			return err
		}
	}
	return nil
}
