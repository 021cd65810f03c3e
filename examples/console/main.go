// Command console serves the web console (relay/console) of a relay.Client
// that has mail to show, without leaving the machine: an in-process DNS
// server and MX hosts (relay/relaytest) stand in for the internet, a few
// dozen messages are sent, queued and held, a campaign waits for
// approval, and the console is served on a loopback port until the
// program is interrupted.
//
//	go run ./examples/console
//
// Then open http://127.0.0.1:8025/console/ as "admin", password
// "mxrelay-demo". -addr picks another loopback address; -for stops the
// program after a while.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/console"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// The operator the demo console admits. The password is fixed, and
// printed, because this is a demo on loopback: a real console takes its
// password from a secret, and is served over TLS when anything but
// loopback can reach it.
const (
	user     = "admin"
	password = "mxrelay-demo"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8025", "the loopback address to serve the console on")
	stopAfter := flag.Duration("for", 0, "stop after this long (0: run until interrupted)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *stopAfter > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *stopAfter)
		defer cancel()
	}
	if err := run(ctx, os.Stdout, *addr, nil); err != nil {
		log.Fatal(err)
	}
}

const intro = `mxrelay console: the web console of relay/console, over a relay.Client
with mail to show. An in-process DNS server and two MX hosts on loopback
(relay/relaytest) stand in for the internet. On purpose: mx.example.com
knows no "nobody" (a bounce, 5.1.1, which puts the address on the
suppression list) and full@example.net's mailbox is full (a deferral,
4.2.2, queued for retry). The client keeps its queue, history and
suppressions in memory, signs with two generated DKIM keys published in
that DNS, and holds every campaign for review (Review.Campaigns).
`

// run loads the demo, serves the console on addr (a loopback address)
// until ctx ends, and writes what it does to out. ready, if not nil, is
// given the console's URL once it is served.
func run(ctx context.Context, out io.Writer, addr string, ready func(consoleURL string)) error {
	if err := checkLoopback(addr); err != nil {
		return err
	}
	out = &syncWriter{w: out} // the console's action log writes to it too
	fmt.Fprint(out, intro)

	// 1. An offline internet: DNS plus two MX hosts on loopback.
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
	_, err = srv.AddHost("mx.example.net", relaytest.HostConfig{
		RcptReply: func(rcpt string) *relaytest.Reply {
			if strings.HasPrefix(rcpt, "full@") {
				return &relaytest.Reply{Code: 452, Enhanced: "4.2.2", Text: "mailbox full, try again later"}
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	srv.AddDomain("example.com", "mx.example.com")
	srv.AddDomain("example.net", "mx.example.net")

	// 2. DKIM: an Ed25519 and an RSA key for the sender's domain,
	// published in that DNS, where the console's message page finds them
	// to verify the signatures.
	signer, err := newSigner(srv, "example.org")
	if err != nil {
		return err
	}

	// 3. The listener first: list mail links to the client's Handler,
	// served beside the console, so PublicURL needs the address.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	base := "http://" + ln.Addr().String()

	// 4. The client: one MemoryStore for the queue, the history and the
	// suppression list (boltstore or pgstore in production), the signer,
	// the links of list mail, and review of every campaign.
	linkKey := make([]byte, relay.MinLinkKeySize)
	if _, err := rand.Read(linkKey); err != nil {
		return err
	}
	store := &queue.MemoryStore{}
	c := srv.Client()
	c.Store, c.History, c.Suppressions = store, store, store
	c.Signer = signer
	c.PublicURL = base + "/mail"
	c.LinkKeys = [][]byte{linkKey}
	c.Pages = relay.Pages{SenderName: "Example Shop", Lists: []relay.List{{Name: "news", Title: "Example Shop news"}}}
	c.Review = relay.ReviewOptions{Campaigns: true}

	// 5. The console, mounted the way net/http/pprof is, beside the
	// unsubscribe pages. Its Logger records every operator action.
	h, err := console.New(c, console.Options{
		Path:      "/console/",
		Authorize: console.BasicAuth(user, password),
		Title:     "mxrelay demo",
		Logger:    slog.New(slog.NewTextHandler(out, nil)),
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", h)
	mux.Handle("/mail/", c.Handler())
	mux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusFound))
	web := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}

	// 6. The queue's workers, in the background until the end.
	runCtx, stopRun := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(runCtx) }()
	defer func() {
		stopRun()
		<-ran
	}()

	// 7. Mail for the console to show.
	fmt.Fprintln(out, "\n== loading the demo")
	if err := load(ctx, out, c); err != nil {
		return err
	}

	// 8. Serve until ctx ends, then shut down cleanly.
	served := make(chan error, 1)
	go func() { served <- web.Serve(ln) }()
	consoleURL := base + "/console/"
	fmt.Fprintf(out, "\n== the console\nopen  %s\nuser  %s\npass  %s   (a fixed demo password; the console listens on loopback only)\n", consoleURL, user, password)
	fmt.Fprintln(out, `Approve or reject the campaign under Approvals; approved mail goes out at once.
Interrupt (Ctrl-C) to stop.`)
	if ready != nil {
		ready(consoleURL)
	}
	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serving the console: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := web.Shutdown(sctx); err != nil {
		web.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving the console: %w", err)
	}
	fmt.Fprintln(out, "\nstopped")
	return nil
}

// load sends, queues and holds the demo's mail, and says what it did.
func load(ctx context.Context, out io.Writer, c *relay.Client) error {
	shop := mail.Address{Name: "Example Shop", Address: "shop@example.org"}

	// Transactional mail with Send, one attempt now: the dashboard's
	// figures. One recipient bounces, one is deferred and queued.
	count := map[relay.Status]int{}
	var notes []string
	rcpts := append(customers(), "nobody@example.com", "full@example.net")
	for i, to := range rcpts {
		order := 1001 + i
		res, err := c.Send(ctx, &mime.Message{
			From:    shop,
			To:      []mail.Address{{Address: to}},
			Subject: fmt.Sprintf("Your order #%d has shipped", order),
			Text:    fmt.Sprintf("Hello,\n\nyour order #%d is on its way.\n", order),
			HTML:    fmt.Sprintf("<p>Hello,</p><p>your order <b>#%d</b> is on its way.</p>", order),
		})
		if res == nil {
			return err
		}
		for _, r := range res.Recipients {
			count[r.Status]++
			if r.Status != relay.Delivered {
				notes = append(notes, fmt.Sprintf("%s %s %d %s", r.Recipient, r.Status, r.Code, r.Enhanced))
			}
		}
	}
	fmt.Fprintf(out, "Send      %d messages: %d delivered, %d bounced, %d deferred (queued for retry)\n",
		len(rcpts), count[relay.Delivered], count[relay.Bounced], count[relay.Deferred])
	for _, n := range notes {
		fmt.Fprintf(out, "          %s\n", n)
	}

	// Enqueue: Run delivers them in the background; wait for it, so that
	// the console opens on a settled queue.
	var ids []string
	for _, to := range []string{"ann@example.com", "bob@example.net", "cat@example.com"} {
		id, err := c.Enqueue(ctx, &mime.Message{
			From:    shop,
			To:      []mail.Address{{Address: to}},
			Subject: "Reset your password",
			Text:    "Hello,\n\nsomeone asked to reset your password. If it was not you, ignore this message.\n",
		})
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	if err := waitDelivered(ctx, c, ids); err != nil {
		return err
	}
	fmt.Fprintf(out, "Enqueue   %d messages, delivered by Run\n", len(ids))

	// Held by hand (EnqueueOptions.Hold): refunds that want a second look.
	for i, to := range []string{"dan@example.net", "eve@example.com"} {
		order := 1042 + i
		_, err := c.EnqueueWith(ctx, &mime.Message{
			From:    shop,
			To:      []mail.Address{{Address: to}},
			Subject: fmt.Sprintf("Your refund for order #%d", order),
			Text:    fmt.Sprintf("Hello,\n\nwe have refunded order #%d: 49.00 EUR.\n", order),
		}, &relay.EnqueueOptions{Hold: true, Metadata: map[string]string{"order": fmt.Sprint(order)}})
		if err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "Hold      2 refunds, held for a second look")

	// A campaign to the list "news": held for review by Review.Campaigns,
	// one message per subscriber, each personalised and signed at its
	// attempt. The HTML has an inline logo, a remote banner (blocked in
	// the preview until asked) and an attachment.
	logo, err := logoPNG()
	if err != nil {
		return err
	}
	subscribers := []string{"ann@example.com", "bob@example.net", "cat@example.com", "dan@example.net", "eve@example.com", "fay@example.net"}
	for _, to := range subscribers {
		_, err := c.EnqueueWith(ctx, &mime.Message{
			From:    shop,
			To:      []mail.Address{{Address: to}},
			Subject: "Spring sale: 20% off everything until Sunday",
			Text:    campaignText,
			HTML:    campaignHTML,
			Attachments: []mime.Attachment{
				{Filename: "logo.png", ContentType: "image/png", Data: logo, ContentID: "logo@example.org"},
				{Filename: "price-list.csv", ContentType: "text/csv", Data: []byte(priceList)},
			},
		}, &relay.EnqueueOptions{List: "news", Campaign: "spring-sale"})
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "Campaign  spring-sale (list \"news\"): %d messages held for review\n", len(subscribers))
	return nil
}

// customers are the recipients of the transactional mail, on both
// domains.
func customers() []string {
	var out []string
	for _, name := range []string{"ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal", "ivy", "jon", "kim", "lea"} {
		out = append(out, name+"@example.com", name+"@example.net")
	}
	return out
}

// waitDelivered waits until the queue no longer holds any of ids.
func waitDelivered(ctx context.Context, c *relay.Client, ids []string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	q := c.Queue()
	for _, id := range ids {
		for {
			_, err := q.Get(ctx, id)
			if errors.Is(err, queue.ErrNotFound) {
				break
			}
			if err != nil {
				return err
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				return fmt.Errorf("waiting for Run to deliver %s: %w", id, ctx.Err())
			}
		}
	}
	return nil
}

// newSigner generates an Ed25519 and an RSA key for domain, publishes
// them in the harness's DNS and returns a signer with both.
func newSigner(srv *relaytest.Server, domain string) (*dkim.Signer, error) {
	var cfgs []dkim.Config
	for _, k := range []struct {
		kind     dkim.KeyType
		selector string
	}{{dkim.Ed25519, "ed"}, {dkim.RSA, "rsa"}} {
		key, err := dkim.GenerateKey(k.kind)
		if err != nil {
			return nil, err
		}
		txt, err := dkim.TXTRecord(key.Public())
		if err != nil {
			return nil, err
		}
		srv.DNS.Set(dkim.RecordName(domain, k.selector), mxtest.Domain{TXT: []string{txt}})
		cfgs = append(cfgs, dkim.Config{Domain: domain, Selector: k.selector, Key: key})
	}
	return dkim.NewSigner(cfgs...)
}

// logoPNG draws the shop's logo: green, with three white bars.
func logoPNG() ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, 120, 40))
	green, white := color.RGBA{0x2e, 0x7d, 0x32, 0xff}, color.RGBA{0xff, 0xff, 0xff, 0xff}
	for y := range 40 {
		for x := range 120 {
			c := green
			if y >= 10 && y < 30 && (x >= 12 && x < 24 || x >= 30 && x < 42 || x >= 48 && x < 60) {
				c = white
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

const campaignText = `Spring sale: 20% off everything until Sunday.

Our price list is attached. See the whole range at
https://example.org/spring

Example Shop
`

const campaignHTML = `<table role="presentation" width="100%" style="font-family:sans-serif">
<tr><td><img src="cid:logo@example.org" alt="Example Shop" width="120" height="40"></td></tr>
<tr><td><img src="https://images.example.org/spring/banner.jpg" alt="Spring flowers on a shop counter" width="560" height="200"></td></tr>
<tr><td>
<h1 style="color:#2e7d32">Spring sale: 20% off everything</h1>
<p>Until Sunday, every order is 20% off. Our price list is attached.</p>
<p><a href="https://example.org/spring">See the whole range</a></p>
</td></tr>
</table>`

const priceList = "item,price,sale price\r\ncoffee grinder,49.00,39.20\r\nkettle,35.00,28.00\r\nmugs (set of 4),24.00,19.20\r\n"

// checkLoopback refuses an address that is not on loopback: the demo
// console has a published password.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: the demo console listens on a loopback address only (127.0.0.1, ::1 or localhost)", addr)
	}
	return nil
}

// syncWriter serialises writes to w: the program and the console's
// action log share it.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
