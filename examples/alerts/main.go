// Command alerts shows the alert rules of relay.Client watching a sender:
// a recipient domain whose bounce rate crosses a threshold, an MX host
// that defers message after message and then recovers, and a host that
// a back-off rule suspends after a provider's "slow down" reply. Each
// alert is printed once when it fires, again if it turns from warning to
// error, and once when it resolves.
//
// Everything runs offline against relay/relaytest: good.example accepts
// everyone; bad.example — a stale mailing list — refuses four in five;
// busy.example answers 451 for a while; and yahoo.example answers with
// Yahoo's [TSS04] throttling text.
//
// The program evaluates the rules with Client.CheckAlerts after each step
// so that its output is the same at every run; an application calls
// Client.Run, which evaluates them every AlertOptions.Interval.
//
//	go run ./examples/alerts
package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log"
	"maps"
	"net/mail"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
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

// rules are the alert rules of the program: the shipped ones judge a
// day's mail and need a thousand messages; these judge the few messages
// of a demonstration.
var rules = []relay.AlertRule{
	{Name: "bounce-rate", Kind: relay.AlertBounceRate, Warning: 0.2, Error: 0.5,
		Window: time.Hour, MinMessages: 10, PerDomain: true},
	{Name: "deferral-streak", Kind: relay.AlertDeferrals, Warning: 5, Error: 10},
	{Name: "backoff", Kind: relay.AlertBackoff},
}

// run sends to each domain in turn and prints the alerts as they change.
func run(ctx context.Context, out io.Writer) error {
	// 1. An offline internet: one MX host per domain.
	srv, err := relaytest.NewServer()
	if err != nil {
		return err
	}
	defer srv.Close()
	var busy atomic.Bool
	busy.Store(true)
	hosts := map[string]func(rcpt string) *relaytest.Reply{
		"good.example": func(string) *relaytest.Reply { return nil },
		"bad.example": func(rcpt string) *relaytest.Reply {
			if userNumber(rcpt)%5 != 0 {
				return &relaytest.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
			}
			return nil
		},
		"busy.example": func(string) *relaytest.Reply {
			if busy.Load() {
				return &relaytest.Reply{Code: 451, Enhanced: "4.3.2", Text: "system busy, try later"}
			}
			return nil
		},
		"yahoo.example": func(string) *relaytest.Reply {
			return &relaytest.Reply{Code: 421, Enhanced: "4.7.0",
				Text: "[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints"}
		},
	}
	for _, d := range slices.Sorted(maps.Keys(hosts)) {
		if _, err := srv.AddHost("mx."+d, relaytest.HostConfig{RcptReply: hosts[d]}); err != nil {
			return err
		}
		srv.AddDomain(d, "mx."+d)
	}

	// 2. The client, its rules, and where alerts go: Notify here; they
	// are also EventAlert events, and reach the webhooks.
	client := srv.Client()
	client.Alerts = relay.AlertOptions{Rules: rules, Notify: func(a relay.Alert) {
		fmt.Fprintln(out, " ", a)
	}}
	step := func(title string, domain string, from, to int) error {
		fmt.Fprintf(out, "%s\n", title)
		for u := from; u < to; u++ {
			if err := send(ctx, client, fmt.Sprintf("user%d@%s", u, domain)); err != nil {
				return err
			}
		}
		_, err := client.CheckAlerts(ctx)
		return err
	}

	// 3. The steps.
	if err := step("20 messages to good.example", "good.example", 0, 20); err != nil {
		return err
	}
	if err := step("20 messages to bad.example, a stale list", "bad.example", 0, 20); err != nil {
		return err
	}
	if err := step("6 messages to busy.example, which is busy", "busy.example", 0, 6); err != nil {
		return err
	}
	busy.Store(false)
	if err := step("3 messages to busy.example, which has recovered", "busy.example", 6, 9); err != nil {
		return err
	}
	if err := step("1 message to yahoo.example, which throttles", "yahoo.example", 0, 1); err != nil {
		return err
	}

	// 4. What is still firing.
	fmt.Fprintln(out, "firing now:")
	for _, a := range client.FiringAlerts() {
		fmt.Fprintf(out, "  %-7s %-11s %s\n", a.Severity, a.Rule, cmp.Or(a.Subject, "(all mail)"))
	}
	return nil
}

// send sends one message. A bounce or a deferral is a result, not a
// failure of the program: Send without a queue reports it as an error
// that names the recipient, which the alerts count through the events.
func send(ctx context.Context, client *relay.Client, to string) error {
	msg := &mime.Message{
		From:    mail.Address{Address: "news@example.org"},
		To:      []mail.Address{{Address: to}},
		Subject: "Our monthly news",
		Text:    "Hello,\n\nhere is what happened this month.\n",
	}
	res, err := client.Send(ctx, msg)
	if res == nil {
		return err
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
