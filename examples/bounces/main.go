// Command bounces shows what happens to mail that comes back later, without
// leaving the machine: a sender with a BounceDomain, the inbound receiver
// (Client.ServeInbound) on a loopback port, and MX hosts from
// relay/relaytest that accept every message and then, as real ones do,
// send back a bounce for a mailbox that does not exist and a spam
// complaint for another reader.
//
//	go run ./examples/bounces
package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/queue"
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

const intro = `mxrelay bounces: a sender whose return paths are in bounces.example.org
(Client.BounceDomain), and that domain's receiver (Client.ServeInbound) on
a loopback port. The MX hosts of example.com (relay/relaytest) accept all
mail; then, as real ones do hours later, one mailbox turns out not to exist
and its MTA sends a delivery status notification (RFC 3464) to the return
path, and one reader's provider sends a spam complaint (RFC 5965). Both
are matched to the message and the recipient, reported as events and put
on the suppression list; the next message to either is not sent.
`

func run(ctx context.Context, out io.Writer) error {
	fmt.Fprint(out, intro)

	// 1. An offline internet: DNS and one MX host for example.com.
	srv, err := relaytest.NewServer()
	if err != nil {
		return err
	}
	defer srv.Close()
	if _, err := srv.AddHost("mx.example.com", relaytest.HostConfig{DSN: true}); err != nil {
		return err
	}
	srv.AddDomain("example.com", "mx.example.com")

	// 2. The sender. BounceDomain needs LinkKeys, which sign the token in
	// each return path; keep them, or the tokens of mail already sent no
	// longer verify.
	key := make([]byte, relay.MinLinkKeySize)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	store := &queue.MemoryStore{}
	c := srv.Client()
	c.BounceDomain = "bounces.example.org"
	c.LinkKeys = [][]byte{key}
	c.Suppressions = store
	var mu sync.Mutex
	var events []relay.Event
	got := make(chan struct{}, 100)
	c.Events = func(e relay.Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
		got <- struct{}{}
	}

	// 3. The receiver for bounces.example.org. In production its MX record
	// points here, on port 25.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- c.ServeInbound(sctx, ln) }()
	defer func() {
		stop()
		<-served
	}()

	// 4. Three messages, all accepted at once.
	fmt.Fprintln(out, "\n== sending")
	for _, to := range []string{"ann@example.com", "gone@example.com", "cat@example.com"} {
		res, err := c.Send(ctx, &mime.Message{
			From:    mail.Address{Name: "Example Shop", Address: "shop@example.org"},
			To:      []mail.Address{{Address: to}},
			Subject: "Your order has shipped",
			Text:    "It is on its way.\n",
		})
		if err != nil {
			return err
		}
		r := res.Recipients[0]
		fmt.Fprintf(out, "%-18s %-9s %d %s\n", r.Recipient, r.Status, r.Code, r.Enhanced)
	}
	received := map[string]*relaytest.Message{}
	for _, m := range srv.Messages() {
		received[m.To[0]] = m
	}
	gone, cat := received["gone@example.com"], received["cat@example.com"]
	if gone == nil || cat == nil {
		return fmt.Errorf("the MX host received %d messages", len(received))
	}
	fmt.Fprintf(out, "return path of gone's copy: %s (ENVID %s…)\n", gone.From, gone.EnvelopeID[:12])

	// 5. Later, gone's MTA finds no such mailbox and bounces the message to
	// its return path; cat's provider forwards a complaint. Here the
	// example plays both, over SMTP to the receiver.
	fmt.Fprintln(out, "\n== later: a bounce and a complaint arrive")
	if err := smtp.SendMail(ln.Addr().String(), nil, "", []string{gone.From}, dsnFor(gone)); err != nil {
		return fmt.Errorf("delivering the bounce: %w", err)
	}
	if err := smtp.SendMail(ln.Addr().String(), nil, "fbl@feedback.example.net", []string{"abuse@bounces.example.org"}, complaintFor(cat)); err != nil {
		return fmt.Errorf("delivering the complaint: %w", err)
	}
	if err := waitFor(ctx, got, &mu, &events, func(e relay.Event) bool { return e.Type == relay.EventComplained }); err != nil {
		return err
	}
	if err := waitFor(ctx, got, &mu, &events, func(e relay.Event) bool { return e.Type == relay.EventBounced && e.Async }); err != nil {
		return err
	}
	mu.Lock()
	for _, e := range events {
		if !e.Async {
			continue
		}
		fmt.Fprintf(out, "event %-10s %-18s", e.Type, e.Recipient)
		if e.DSN != nil {
			fmt.Fprintf(out, " category %s, status %s from %s: %s", e.Category, e.DSN.Status, e.DSN.RemoteMTA, e.DSN.DiagnosticCode)
		}
		if e.Feedback != nil {
			fmt.Fprintf(out, " feedback type %s by %s", e.Feedback.FeedbackType, e.Feedback.UserAgent)
		}
		fmt.Fprintln(out)
	}
	mu.Unlock()

	// 6. The suppression list, and the next message.
	fmt.Fprintln(out, "\n== the suppression list")
	entries, err := store.Suppressions(ctx, queue.SuppressionFilter{})
	if err != nil {
		return err
	}
	for _, e := range entries {
		fmt.Fprintf(out, "%-18s %-12s %s\n", e.Address, e.Reason, e.Source)
	}
	fmt.Fprintln(out, "\n== sending again")
	suppressed := 0
	for _, to := range []string{"ann@example.com", "gone@example.com", "cat@example.com"} {
		res, _ := c.Send(ctx, &mime.Message{
			From:    mail.Address{Name: "Example Shop", Address: "shop@example.org"},
			To:      []mail.Address{{Address: to}},
			Subject: "A new offer",
			Text:    "Only this week.\n",
		})
		r := res.Recipients[0]
		if r.Status == relay.Suppressed {
			suppressed++
		}
		fmt.Fprintf(out, "%-18s %s\n", r.Recipient, r.Status)
	}
	fmt.Fprintf(out, "\nsummary: 1 late bounce and 1 complaint matched; %d addresses suppressed; %d of 3 not sent the second time\n",
		len(entries), suppressed)
	return nil
}

// waitFor waits, bounded by ctx, for an event that match accepts.
func waitFor(ctx context.Context, got chan struct{}, mu *sync.Mutex, events *[]relay.Event, match func(relay.Event) bool) error {
	for {
		mu.Lock()
		for _, e := range *events {
			if match(e) {
				mu.Unlock()
				return nil
			}
		}
		mu.Unlock()
		select {
		case <-got:
		case <-ctx.Done():
			return fmt.Errorf("waiting for an event: %w", ctx.Err())
		}
	}
}

// headerOf is the header of a received message, for the returned part.
func headerOf(m *relaytest.Message) string {
	h, _, _ := strings.Cut(string(m.Data), "\r\n\r\n")
	return h
}

// dsnFor is the bounce an MTA sends when a mailbox turns out not to exist:
// a multipart/report with the delivery status and the returned header
// (RET=HDRS, as mxrelay asks).
func dsnFor(m *relaytest.Message) []byte {
	return crlf(fmt.Sprintf(`From: Mail Delivery System <MAILER-DAEMON@mx.example.com>
To: <%[1]s>
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Your message could not be delivered to <%[2]s>.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
Original-Envelope-Id: %[3]s

Final-Recipient: rfc822; %[2]s
Original-Recipient: rfc822; %[2]s
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.com
Diagnostic-Code: smtp; 550 5.1.1 <%[2]s>: Recipient address rejected: User unknown

--b1
Content-Type: text/rfc822-headers

%[4]s

--b1--
`, m.From, m.To[0], m.EnvelopeID, headerOf(m)))
}

// complaintFor is the report a mailbox provider's feedback loop sends when
// a reader marks a message as spam: the recipient's address is often
// redacted, but the returned header and Original-Mail-From, the return
// path, are whole.
func complaintFor(m *relaytest.Message) []byte {
	return crlf(fmt.Sprintf(`From: Feedback Loop <fbl@feedback.example.net>
To: <abuse@bounces.example.org>
Subject: Complaint about a message from 192.0.2.25
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="f1"

--f1
Content-Type: text/plain

A user marked this message as spam.

--f1
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/2.1
Version: 1
Original-Mail-From: <%[1]s>
Original-Rcpt-To: <redacted@example.com>
Source-IP: 192.0.2.25

--f1
Content-Type: text/rfc822-headers

%[2]s

--f1--
`, m.From, headerOf(m)))
}

func crlf(s string) []byte {
	return []byte(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n"))
}
