// Command customqueue shows how to plug your own storage into mxrelay's
// queue. store.go holds Spool, a queue.Store written with the standard
// library only: a directory with one file per job, written durably
// (temporary file, fsync, rename, fsync of the directory). Its test runs
// queuetest.TestStore, the conformance suite every Store passes.
//
// This program gives the spool to a relay.Client, enqueues a few messages
// and runs the queue against an in-process MX host (relay/relaytest) until
// they are delivered — one of them after a greylisting deferral and a
// retry — then prints what happened.
//
//	go run ./examples/customqueue
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
	"path/filepath"
	"slices"
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

// recipients of the demo, one message each; "cid" is greylisted once.
var recipients = []string{"ann@example.com", "bob@example.com", "cid@example.com"}

// run enqueues the messages into a spool, delivers them and reports to out.
func run(ctx context.Context, out io.Writer) error {
	// 1. An offline internet: DNS and one MX host on loopback. The host
	// greylists cid: the first RCPT gets a 451, later ones are accepted.
	srv, err := relaytest.NewServer()
	if err != nil {
		return err
	}
	defer srv.Close()
	var greylist sync.Map
	_, err = srv.AddHost("mx.example.com", relaytest.HostConfig{
		RcptReply: func(rcpt string) *relaytest.Reply {
			if _, seen := greylist.LoadOrStore(rcpt, true); !seen && strings.HasPrefix(rcpt, "cid@") {
				return &relaytest.Reply{Code: 451, Enhanced: "4.7.1", Text: "greylisted, try again later"}
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	srv.AddDomain("example.com", "mx.example.com")

	// 2. The spool, in a directory of its own.
	dir, err := os.MkdirTemp("", "customqueue-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	spool, err := OpenSpool(dir)
	if err != nil {
		return err
	}
	defer spool.Close()

	// 3. The client: the spool as its Store, a quick retry for the demo
	// (real schedules wait minutes), and events into a channel.
	events := make(chan relay.Event, 100)
	client := srv.Client()
	client.Store = spool
	client.Retry = &queue.BackoffPolicy{Intervals: []time.Duration{200 * time.Millisecond}}
	client.Events = func(e relay.Event) {
		select {
		case events <- e:
		default: // never block: the demo reads far fewer than 100
		}
	}

	// 4. Enqueue: each call returns once the job's file is on disk.
	for _, to := range recipients {
		msg := &mime.Message{
			From:    mail.Address{Name: "Shop", Address: "orders@example.org"},
			To:      []mail.Address{{Address: to}},
			Subject: "Your order has shipped",
			Text:    "Hello,\n\nyour order is on its way.\n",
		}
		if _, err := client.EnqueueWith(ctx, msg, &relay.EnqueueOptions{Metadata: map[string]string{"customer": to}}); err != nil {
			return err
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*"+jobSuffix))
	if err != nil {
		return err
	}
	st, err := spool.Stats(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "enqueued %d messages: %d job files, %d queued\n", len(recipients), len(files), st.Queued)

	// 5. Run the queue until every recipient is delivered, or give up.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- client.Run(runCtx) }()
	delivered, err := collect(ctx, events, len(recipients), 30*time.Second, out)
	stop()
	if rerr := <-done; rerr != nil && !errors.Is(rerr, context.Canceled) {
		return errors.Join(err, rerr)
	}
	if err != nil {
		return err
	}

	// 6. The results.
	fmt.Fprintln(out, "results:")
	for _, to := range recipients {
		e := delivered[to]
		fmt.Fprintf(out, "  %-16s delivered %d %s by %s, %s, customer=%s\n",
			to, e.Code, e.Enhanced, e.MX, e.TLS.Version, e.Metadata["customer"])
	}
	if st, err = spool.Stats(ctx); err != nil {
		return err
	}
	if files, err = filepath.Glob(filepath.Join(dir, "*"+jobSuffix)); err != nil {
		return err
	}
	fmt.Fprintf(out, "spool afterwards: %d job files, %+v\n", len(files), st)
	fmt.Fprintf(out, "the MX host received %d messages\n", len(srv.Messages()))
	return nil
}

// collect reads events until n recipients are delivered, printing the
// deferrals on the way; a bounce, an expiry or the timeout ends it early.
func collect(ctx context.Context, events <-chan relay.Event, n int, timeout time.Duration, out io.Writer) (map[string]relay.Event, error) {
	delivered := make(map[string]relay.Event)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for len(delivered) < n {
		select {
		case e := <-events:
			switch e.Type {
			case relay.EventDelivered:
				delivered[e.Recipient] = e
			case relay.EventDeferred:
				fmt.Fprintf(out, "deferred %s: %d %s %s (retried by the queue)\n", e.Recipient, e.Code, e.Enhanced, e.Message)
			case relay.EventBounced, relay.EventExpired:
				return delivered, fmt.Errorf("customqueue: %s %s: %d %s", e.Recipient, e.Type, e.Code, e.Message)
			}
		case <-timer.C:
			return delivered, fmt.Errorf("customqueue: only %d of %d delivered after %v: %v", len(delivered), n, timeout, slices.Sorted(maps.Keys(delivered)))
		case <-ctx.Done():
			return delivered, ctx.Err()
		}
	}
	return delivered, nil
}
