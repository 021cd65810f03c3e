package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/queue/boltstore"
	"github.com/mxrelay/mxrelay/relay"
)

// senders is the concurrency of every run: the goroutines calling Send or
// Enqueue, go-mail's goroutines, smtp-source's sessions.
const senders = 20

// newDNS serves example.com's MX, mx.example.com, at 127.0.0.1. Its
// answers are cached for an hour, negative ones (no AAAA) too, as a real
// zone's SOA would allow: mxtest's default negative TTL of 0 would make
// every delivery ask for the AAAA records again.
func newDNS() *mxtest.Server {
	s := mxtest.NewServer(mxtest.Zone{
		"example.com":    {TTL: 3600, MX: []mx.MX{{Host: "mx.example.com", Pref: 10}}},
		"mx.example.com": {TTL: 3600, A: []string{"127.0.0.1"}},
	})
	s.SetNegativeTTL(3600)
	return s
}

// fanOut runs send n times from senders goroutines and stops at the first
// error, which it returns.
func fanOut(ctx context.Context, n int, send func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				if err := send(ctx); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// runSend sends n messages with c.Send from senders goroutines.
func runSend(ctx context.Context, c *relay.Client, n int, text string) (time.Duration, error) {
	start := time.Now()
	err := fanOut(ctx, n, func(ctx context.Context) error {
		res, err := c.Send(ctx, mxMessage(text))
		if err != nil {
			return err
		}
		if r := res.Recipients[0]; r.Status != relay.Delivered {
			return fmt.Errorf("%w: %s %d %s", errFailed, r.Status, r.Code, r.Message)
		}
		return nil
	})
	el := time.Since(start)
	c.CloseIdleConnections()
	return el, err
}

// runSendRaw sends n copies of one message written beforehand with
// c.SendRaw from senders goroutines: the transport alone, as smtp-source
// measures it, without composing each message.
func runSendRaw(ctx context.Context, c *relay.Client, n int, text string) (time.Duration, error) {
	data, err := mxMessage(text).Bytes()
	if err != nil {
		return 0, err
	}
	to := []string{recipient}
	start := time.Now()
	err = fanOut(ctx, n, func(ctx context.Context) error {
		res, err := c.SendRaw(ctx, sender, to, bytes.NewReader(data))
		if err != nil {
			return err
		}
		if r := res.Recipients[0]; r.Status != relay.Delivered {
			return fmt.Errorf("%w: %s %d %s", errFailed, r.Status, r.Code, r.Message)
		}
		return nil
	})
	el := time.Since(start)
	c.CloseIdleConnections()
	return el, err
}

// runGoMail sends n messages with go-mail from senders goroutines, each
// with its own go-mail Client on one connection that it reuses for all
// its messages (DialWithContext once, then Send; go-mail then sends NOOP
// before and RSET after each message, as its defaults do).
func runGoMail(ctx context.Context, port, n int, text string) (time.Duration, error) {
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) { once.Do(func() { first = err; cancel() }) }
	start := time.Now()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := gomail.NewClient("127.0.0.1", gomail.WithPort(port), gomail.WithTLSPolicy(gomail.NoTLS))
			if err != nil {
				fail(err)
				return
			}
			if err := c.DialWithContext(ctx); err != nil {
				fail(err)
				return
			}
			defer c.Close()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				m, err := goMailMessage(text)
				if err == nil {
					err = c.Send(m)
				}
				if err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), first
}

// durableResult is what the durable run measures.
type durableResult struct {
	total   time.Duration // first Enqueue to last delivery
	enqueue time.Duration // first Enqueue to last Enqueue returned
}

// runDurable enqueues n messages with c into a new boltstore file in dir
// from senders goroutines while c.Run delivers them, and times the whole
// until the last delivery. The store and the queue keep their defaults
// (Client.QueueWorkers included).
func runDurable(ctx context.Context, c *relay.Client, dir string, n int, text string) (durableResult, error) {
	var r durableResult
	st, err := boltstore.Open(filepath.Join(dir, fmt.Sprintf("queue-%d.db", os.Getpid())))
	if err != nil {
		return r, err
	}
	defer st.Close()
	c.Store = st
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- c.Run(runCtx) }()

	start := time.Now()
	err = fanOut(ctx, n, func(ctx context.Context) error {
		_, err := c.Enqueue(ctx, mxMessage(text))
		return err
	})
	r.enqueue = time.Since(start)
	if err != nil {
		stop()
		<-ran
		return r, err
	}
	for {
		s := c.Stats().Total
		if s.Delivered >= int64(n) {
			break
		}
		if s.Bounced+s.Deferred > 0 {
			err = fmt.Errorf("%w: %d bounced, %d deferred", errFailed, s.Bounced, s.Deferred)
			break
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("durable run: %d of %d delivered: %w", s.Delivered, n, ctx.Err())
			break
		}
		time.Sleep(time.Millisecond)
	}
	r.total = time.Since(start)
	stop()
	if rerr := <-ran; rerr != nil && !errors.Is(rerr, context.Canceled) && err == nil {
		err = rerr
	}
	if err == nil {
		qs, qerr := c.Queue().Stats(context.Background())
		if qerr != nil {
			err = qerr
		} else if left := qs.Queued + qs.Active + qs.Held + qs.Corrupt; left != 0 {
			err = fmt.Errorf("durable run: %d jobs left in the store", left)
		}
	}
	return r, err
}

// newSigner makes a DKIM signer with a fresh key of type t.
func newSigner(t dkim.KeyType) (*dkim.Signer, error) {
	key, err := dkim.GenerateKey(t)
	if err != nil {
		return nil, err
	}
	return dkim.NewSigner(dkim.Config{Domain: "sender.example", Selector: "bench", Key: key})
}

var errFailed = errors.New("delivery failed")
