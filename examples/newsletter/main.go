// Command newsletter sends a newsletter the way a list should be sent, and
// unsubscribes a reader with one click, without leaving the machine: an
// in-process DNS server and MX hosts (relay/relaytest) stand in for the
// internet, the client's unsubscribe pages are served on a loopback port,
// and the one-click POST a mailbox provider makes is made here.
//
//	go run ./examples/newsletter
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/mx/mxtest"
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

// subscribers of the "news" list, one per receiving domain.
var subscribers = []string{"ann@example.com", "bob@example.net", "cat@example.edu"}

// run does the whole tour and writes the report to out.
func run(ctx context.Context, out io.Writer) error {

	// 1. An offline internet: DNS plus one MX host per subscriber's domain,
	// all on loopback.
	srv, err := relaytest.NewServer()
	if err != nil {
		return err
	}
	defer srv.Close()
	for _, domain := range []string{"example.com", "example.net", "example.edu"} {
		if _, err := srv.AddHost("mx."+domain, relaytest.HostConfig{}); err != nil {
			return err
		}
		srv.AddDomain(domain, "mx."+domain)
	}

	// 2. DKIM for the sender's domain. Gmail and Yahoo offer one-click
	// unsubscribe only when a valid signature covers List-Unsubscribe and
	// List-Unsubscribe-Post, which the Signer does for list messages.
	key, err := dkim.GenerateKey(dkim.Ed25519)
	if err != nil {
		return err
	}
	txt, err := dkim.TXTRecord(key.Public())
	if err != nil {
		return err
	}
	srv.DNS.Set(dkim.RecordName("example.org", "news"), mxtest.Domain{TXT: []string{txt}})
	signer, err := dkim.NewSigner(dkim.Config{Domain: "example.org", Selector: "news", Key: key})
	if err != nil {
		return err
	}

	// 3. The web side: Handler serves the unsubscribe and preferences
	// pages and the one-click endpoint. A real service mounts it under its
	// https PublicURL; http is accepted on loopback, for tests like this.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c := srv.Client()
	mux := http.NewServeMux()
	mux.Handle("/mail/", c.Handler())
	web := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- web.Serve(ln) }()
	defer func() {
		web.Close()
		<-served
	}()

	// 4. The client: a suppression list (here in memory; boltstore and
	// pgstore keep it durably), the URL its links point at, and a key that
	// seals each link, so that a link names its recipient without showing
	// or letting anyone change it. Keep the key: a new one voids every link
	// already sent.
	linkKey := make([]byte, relay.MinLinkKeySize)
	if _, err := rand.Read(linkKey); err != nil {
		return err
	}
	store := &queue.MemoryStore{}
	c.Signer = signer
	c.Suppressions = store
	c.PublicURL = "http://" + ln.Addr().String() + "/mail"
	c.LinkKeys = [][]byte{linkKey}
	c.Pages = relay.Pages{SenderName: "Example Shop", Lists: []relay.List{{Name: "news", Title: "Weekly news"}}}

	fmt.Fprint(out, intro)
	count := map[relay.Status]int{}

	// 5. Issue 1, to every subscriber. One Send per subscriber, so that each
	// copy's To shows only its own reader; SendOptions.List adds the
	// reader's own unsubscribe link and List-Id, and checks the
	// suppression list for "news" and for all mail.
	fmt.Fprintln(out, "\n== issue 1: one copy per subscriber")
	if err := sendIssue(ctx, out, c, 1, count); err != nil {
		return err
	}

	// 6. The link in Bob's copy, as his mail app sees it.
	bob := subscribers[1]
	received := srv.Messages()
	var link string
	fmt.Fprintf(out, "\n== the list fields of %s's copy\n", bob)
	for _, m := range received {
		if len(m.To) == 1 && m.To[0] == bob {
			link = listFields(out, m.Data)
		}
	}
	if link == "" {
		return errors.New("no List-Unsubscribe in " + bob + "'s copy")
	}

	// 7. Bob presses "Unsubscribe" beside the sender's name. His provider
	// then POSTs List-Unsubscribe=One-Click to the link from its own
	// servers (RFC 8058): no cookie, no page, no confirmation. The
	// handler suppresses him for the list at once. (A GET of the link,
	// which every link scanner makes, only shows a confirmation page.)
	fmt.Fprintf(out, "\n== %s unsubscribes: the one-click POST his provider sends\n", bob)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, link, strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "POST /mail/u/… List-Unsubscribe=One-Click → %s: %s\n", resp.Status, strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("one-click unsubscribe: %s", resp.Status)
	}

	// 8. What the suppression list now holds.
	fmt.Fprintln(out, "\n== the suppression list")
	entries, err := store.Suppressions(ctx, queue.SuppressionFilter{})
	if err != nil {
		return err
	}
	for _, e := range entries {
		scope := "all mail"
		if e.Scope != "" {
			scope = "list " + e.Scope
		}
		fmt.Fprintf(out, "%-20s %-10s %-12s since %s, from %s\n", e.Address, scope, e.Reason, e.Created.UTC().Format(time.DateOnly), e.Source)
	}

	// 9. Issue 2: Bob's copy is not sent, and no MX host hears of him.
	fmt.Fprintln(out, "\n== issue 2: the suppression list is consulted first")
	if err := sendIssue(ctx, out, c, 2, count); err != nil {
		return err
	}

	fmt.Fprintf(out, "\nsummary: %d delivered, %d suppressed over 2 issues; %d unsubscribed with one click; %d messages received\n",
		count[relay.Delivered], count[relay.Suppressed], len(entries), len(srv.Messages()))
	return nil
}

// intro says what the tour shows.
const intro = `mxrelay newsletter: two issues of the list "news" to three subscribers,
over an offline internet (an in-process DNS server and three MX hosts on
loopback, from relay/relaytest). Each copy carries its reader's own
one-click unsubscribe link (RFC 8058), served by relay.Client.Handler on a
loopback port. Between the issues one reader unsubscribes, with the POST a
mailbox provider sends, and the second issue skips him.
`

// sendIssue sends issue n to every subscriber and prints each result.
func sendIssue(ctx context.Context, out io.Writer, c *relay.Client, n int, count map[relay.Status]int) error {
	for _, to := range subscribers {
		msg := &mime.Message{
			From:    mail.Address{Name: "Example Shop", Address: "news@example.org"},
			To:      []mail.Address{{Address: to}},
			Subject: fmt.Sprintf("Weekly news #%d", n),
			Text:    "This week: new arrivals and a recipe.\n",
			HTML:    "<p>This week: new arrivals and a recipe.</p>",
		}
		res, err := c.SendWith(ctx, msg, &relay.SendOptions{List: "news"})
		if res == nil {
			return err // the message or the client's settings are wrong
		}
		for _, r := range res.Recipients {
			count[r.Status]++
			code, via := "-", "" // a suppressed recipient meets no server
			if r.Code != 0 {
				code = fmt.Sprint(r.Code)
			}
			if r.MX != "" {
				via = "via " + r.MX
			}
			fmt.Fprintf(out, "%-20s %-10s %3s %-5s %-18s %s\n", r.Recipient, r.Status, code, r.Enhanced, via, r.Message)
		}
	}
	return nil
}

// listFields prints the List-* fields of a received message and returns
// its List-Unsubscribe URL.
func listFields(out io.Writer, data []byte) string {
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	var link string
	for line := range strings.SplitSeq(string(head), "\r\n") {
		name, value, _ := strings.Cut(line, ":")
		if !strings.HasPrefix(strings.ToLower(name), "list-") {
			continue
		}
		fmt.Fprintln(out, line)
		if strings.EqualFold(name, "List-Unsubscribe") {
			link = strings.Trim(strings.TrimSpace(value), "<>")
		}
	}
	return link
}
