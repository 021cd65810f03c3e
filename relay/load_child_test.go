package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/boltstore"
	"github.com/mxrelay/mxrelay/relay"
)

// runLoadChild is the sending process: it opens the store, runs the queue,
// enqueues its share of the messages and, as the last child, drains the
// queue and stops. It reports on stdout (see loadState), and exits at its
// deadline or when its stdin closes (the parent is gone), whatever happens.
func runLoadChild(js string) error {
	var cfg loadChildConfig
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		return err
	}
	store, err := boltstore.Open(cfg.Store)
	if err != nil {
		return err
	}
	var out sync.Mutex
	say := func(kind string, i int) {
		out.Lock()
		defer out.Unlock()
		os.Stdout.Write([]byte(kind + " " + strconv.Itoa(i) + "\n"))
	}
	c := &relay.Client{
		Transport: &relay.Direct{
			Hostname:          loadHelo(cfg.Gen),
			Resolver:          &mx.Resolver{Servers: []string{cfg.DNS}, Timeout: time.Second},
			Port:              cfg.Port,
			AllowPrivateAddrs: true,
			DisableMTASTS:     true,
			DisableDANE:       true,
			ConnectTimeout:    5 * time.Second,
		},
		Store:        finishReporter{store, say},
		QueueWorkers: 32,
		Retry: &queue.BackoffPolicy{ // no Lifetime: nothing expires
			Intervals: []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond, time.Second},
			Jitter:    0.2,
		},
	}
	q := c.Queue() // before its first use; the Client has no fields for these
	q.PollInterval = time.Second
	q.Grace = 10 * time.Second

	ctx, cancel := context.WithDeadline(context.Background(), cfg.Deadline)
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(ctx) }()

	var next atomic.Int64
	next.Store(int64(cfg.From))
	var wg sync.WaitGroup
	var enqErr atomic.Value
	for range 8 { // concurrent producers share the store's commits
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= cfg.N {
					return
				}
				say("s", i)
				if _, err := c.Enqueue(ctx, loadMessage(i)); err != nil {
					enqErr.Store(fmt.Errorf("enqueue %d: %w", i, err))
					cancel()
					return
				}
				say("a", i)
			}
		})
	}
	wg.Wait()
	if err, _ := enqErr.Load().(error); err != nil {
		return err
	}
	if cfg.Drain {
		if err := waitDrained(ctx, store, cfg.N/loadStuck+1); err != nil {
			return err
		}
		cancel()
	}
	err = <-runErr
	if cerr := store.Close(); cerr != nil {
		return cerr
	}
	if !cfg.Drain || !errors.Is(err, context.Canceled) {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}

// finishReporter says "f i" once the store recorded message i as done.
type finishReporter struct {
	queue.Store
	say func(kind string, i int)
}

func (s finishReporter) Finish(ctx context.Context, job *queue.Job) error {
	err := s.Store.Finish(ctx, job)
	if err == nil && job.Done() {
		if i, _, ok := loadIndex(job.Recipients[0].Addr); ok {
			s.say("f", i)
		}
	}
	return err
}

// waitDrained polls the store until every job left is a stuck one that has
// been tried (and so has a reason), or ctx ends. The store is listed only
// when it holds no more jobs than maxStuck.
func waitDrained(ctx context.Context, store queue.Store, maxStuck int) error {
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("not drained: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		stats, err := store.Stats(ctx)
		if err != nil {
			return err
		}
		drained := stats.Queued+stats.Active+stats.Held <= maxStuck
		for after := ""; drained; {
			jobs, next, err := store.List(ctx, queue.ListRequest{After: after, Limit: 1000})
			if err != nil {
				return err
			}
			for _, j := range jobs {
				if _, stuck, _ := loadIndex(j.Recipients[0].Addr); !stuck || j.Attempts == 0 {
					drained = false
				}
			}
			if next == "" {
				break
			}
			after = next
		}
		if drained {
			return nil
		}
	}
}
