// Command alerts shows how an application watches its sending: it wires
// relay.Client.Events to a BounceMonitor (monitor.go) that raises an
// alert when a recipient domain bounces more than 20% of its last 20
// messages (once it has at least 10), and a notice when that is over; then
// it prints the per-domain counters of Client.Stats().
//
// Everything runs offline against relay/relaytest: three domains, each
// with its own MX host. good.example accepts everyone, mixed.example
// refuses one recipient in ten (below the threshold), and bad.example —
// a stale mailing list, say — refuses four in five until the list is
// cleaned.
//
//	go run ./examples/alerts
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net/mail"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mxrelay/mxrelay/mime"
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

// perDomain is how many messages go to each domain, one recipient each.
const perDomain = 20

// domains and which of their users (by number) do not exist.
var domains = []struct {
	name    string
	unknown func(user int) bool
}{
	{"good.example", func(int) bool { return false }},
	{"mixed.example", func(u int) bool { return u%10 == 3 }},
	{"bad.example", func(u int) bool { return u%5 != 0 }},
}

// run sends the messages, prints the alerts as they come and the
// counters at the end.
func run(ctx context.Context, out io.Writer) error {
	// 1. An offline internet: one MX host per domain.
	srv, err := relaytest.NewServer()
	if err != nil {
		return err
	}
	defer srv.Close()
	for _, d := range domains {
		host := "mx." + d.name
		_, err := srv.AddHost(host, relaytest.HostConfig{
			RcptReply: func(rcpt string) *relaytest.Reply {
				if d.unknown(userNumber(rcpt)) {
					return &relaytest.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
				}
				return nil
			},
		})
		if err != nil {
			return err
		}
		srv.AddDomain(d.name, host)
	}

	// 2. The monitor, fed by the client's event hook. The hook runs on a
	// goroutine of the client's; alerts are written under a lock, and
	// every final outcome is counted so that run knows when the monitor
	// has seen them all.
	var mu sync.Mutex
	monitor := &BounceMonitor{
		Threshold:   0.20,
		MinMessages: 10,
		Window:      20,
		Notify: func(a Alert) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintln(out, a)
		},
	}
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
	outcomes := make(chan struct{}, 100)
	client := srv.Client()
	client.Events = func(e relay.Event) {
		monitor.Observe(e)
		switch e.Type {
		case relay.EventDelivered, relay.EventBounced, relay.EventExpired:
			outcomes <- struct{}{}
		}
	}

	// 3. Send: the domains take turns, one message at a time.
	var addrs []string
	for u := range perDomain {
		for _, d := range domains {
			addrs = append(addrs, fmt.Sprintf("user%d@%s", u, d.name))
		}
	}
	say("sending %d messages to each of %d domains", perDomain, len(domains))
	if err := send(ctx, client, addrs, outcomes); err != nil {
		return err
	}

	// 4. The list of bad.example is cleaned: only addresses that exist.
	// Once the bounces have left the window, the alert resolves.
	addrs = addrs[:0]
	for u := range perDomain {
		addrs = append(addrs, fmt.Sprintf("user%d@bad.example", 5*(perDomain+u)))
	}
	say("sending %d messages to the cleaned list of bad.example", len(addrs))
	if err := send(ctx, client, addrs, outcomes); err != nil {
		return err
	}

	// 5. The counters: Client.Stats() keeps them by domain and by MX host
	// since the client started, which a periodic check can alert on too.
	// Being totals, they remember bad.example's bounces after the list was
	// cleaned: the reason the monitor keeps a window of recent outcomes.
	st := client.Stats()
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintln(out, "per-domain counters from Client.Stats():")
	fmt.Fprintf(out, "  %-14s %9s %7s %11s\n", "domain", "delivered", "bounced", "bounce rate")
	for _, name := range slices.Sorted(maps.Keys(st.ByDomain)) {
		c := st.ByDomain[name]
		fmt.Fprintf(out, "  %-14s %9d %7d %10.1f%%\n", name, c.Delivered, c.Bounced, 100*c.BounceRate())
	}
	fmt.Fprintf(out, "events dropped: %d\n", st.EventsDropped)
	return nil
}

// send sends one message to each address in turn, then waits (bounded)
// until the event hook has seen every outcome.
func send(ctx context.Context, client *relay.Client, addrs []string, outcomes <-chan struct{}) error {
	for _, to := range addrs {
		msg := &mime.Message{
			From:    mail.Address{Address: "news@example.org"},
			To:      []mail.Address{{Address: to}},
			Subject: "Our monthly news",
			Text:    "Hello,\n\nhere is what happened this month.\n",
		}
		// A bounce is a result, not a failure of the program: the
		// per-recipient outcome goes to the event hook.
		if _, err := client.Send(ctx, msg); err != nil && !relay.IsPermanent(err) {
			return err
		}
	}
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for range addrs {
		select {
		case <-outcomes:
		case <-timer.C:
			return errors.New("alerts: the event hook did not see every outcome in time")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// userNumber returns N of "userN@domain", or -1.
func userNumber(addr string) int {
	local, _, _ := strings.Cut(addr, "@")
	n, err := strconv.Atoi(strings.TrimPrefix(local, "user"))
	if err != nil {
		return -1
	}
	return n
}
