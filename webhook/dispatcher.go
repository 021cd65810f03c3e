package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// Defaults and limits of a Dispatcher's fields.
const (
	DefaultBatchSize     = 100
	MaxBatchSize         = 10000
	DefaultMaxBatchBytes = 1 << 20
	MaxMaxBatchBytes     = 4 << 20
	DefaultTimeout       = 30 * time.Second
	DefaultMaxAge        = 24 * time.Hour
	DefaultPollInterval  = 5 * time.Second
)

// storeTimeout bounds the store calls that end a batch (AckOutbox,
// RetryOutbox), which run even after Run's context has ended so that a
// batch delivered or interrupted at shutdown is recorded as such.
const storeTimeout = 10 * time.Second

// A Dispatcher delivers the outboxes of its Endpoints: for each, one
// sender claims the head of the outbox, POSTs it as one signed JSON
// payload, and removes it on a 2xx or schedules a retry otherwise. Set the
// fields, then call Run; do not change them while Run is going. Notify
// and Stats may be called at any time, from any goroutine.
type Dispatcher struct {
	// Store holds the outboxes; required. Other processes may run
	// Dispatchers over the same store: the store's lease gives each
	// endpoint to one sender at a time.
	Store queue.OutboxStore
	// Endpoints are the receivers, each with its own outbox and sender.
	// At least one.
	Endpoints []Endpoint
	// Owner names this process in the store's leases (OutboxState.Owner).
	// Empty: the host name and the process id, "host:1234".
	Owner string
	// Client makes the POSTs. Nil: a client whose dialer refuses
	// addresses that are not globally reachable (loopback, private,
	// link-local, metadata services ...; see AllowPrivateAddrs), with no
	// proxy. A Client given here is used as it is, its own dialer
	// deciding what may be reached, except that redirects are never
	// followed, with either: a 3xx is a failed attempt.
	Client *http.Client
	// AllowPrivateAddrs lets the default client reach any address, for
	// receivers on the loopback or the private network. Ignored when
	// Client is set.
	AllowPrivateAddrs bool
	// BatchSize is the most items in one POST. Zero: DefaultBatchSize
	// (100); at most MaxBatchSize.
	BatchSize int
	// MaxBatchBytes caps the items' Data in one POST, in octets, except
	// that the first item always goes (an item is at most
	// queue.MaxOutboxItemSize). Zero: DefaultMaxBatchBytes (1 MiB); at
	// most MaxMaxBatchBytes (4 MiB), which keeps bodies under
	// MaxBodySize.
	MaxBatchBytes int
	// Timeout bounds one attempt at a batch, from its claim from the
	// store to the end of the answer (dialling and sending included).
	// Zero: DefaultTimeout (30 s). The store's lease on a batch lasts half
	// as long again, so that no other sender takes a batch whose POST may
	// still be under way, and the removal of a delivered batch has time
	// to happen under the lease.
	Timeout time.Duration
	// MaxAge is how long an item may wait: an item found at the head of
	// its outbox older than this (by OutboxEntry.Time) is removed unsent
	// and reported to OnDrop and the Logger at error level. Zero:
	// DefaultMaxAge (24 h).
	MaxAge time.Duration
	// Backoff returns the wait after the attempt-th failed attempt at a
	// batch, attempt counting from 1. Nil: DefaultBackoff. A 429 or 503
	// with a Retry-After header waits as asked instead (at most
	// MaxRetryAfter).
	Backoff func(attempt int) time.Duration
	// PollInterval is how often a sender with nothing to send looks at its
	// outbox again when Notify was not called: items appended by other
	// processes, or an endpoint leased elsewhere. Zero:
	// DefaultPollInterval (5 s).
	PollInterval time.Duration
	// OnDrop, if set, is called with items removed undelivered and why:
	// an error wrapping ErrTooOld (and the last attempt's error, when this
	// process made one) or ErrInvalidItem. It is called from the
	// endpoint's sender, which waits for it.
	OnDrop func(endpoint string, items []queue.OutboxItem, reason error)
	// Logger receives what happens: deliveries at debug level, failed
	// attempts at warn, drops and store errors at error. Nil: silent.
	Logger *slog.Logger

	running atomic.Bool
	stats   stats
	mu      sync.Mutex
	wake    []chan struct{} // one per sender of the current Run
}

// Run delivers the outboxes until ctx ends. It checks the configuration
// first and returns an error wrapping ErrInvalidConfig or
// ErrInvalidEndpoint when it is wrong, or ErrRunning when another Run of
// d has not returned. Then it runs one sender per endpoint, each with at
// most one POST in flight, so an endpoint's items arrive in order.
//
// When ctx ends, POSTs in flight are cancelled and their batches given
// back to the store, due at once, to be sent again by the next Run here or
// elsewhere: delivery is at least once, and an event whose answer was
// lost is delivered again. Run returns ctx's error once every sender has
// stopped, or an error wrapping queue.ErrClosed if the store was closed
// under it. Other store errors are logged and retried.
func (d *Dispatcher) Run(ctx context.Context) error {
	cfg, err := d.config()
	if err != nil {
		return err
	}
	if !d.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer d.running.Store(false)
	if d.Client == nil {
		defer cfg.client.CloseIdleConnections()
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	senders := make([]*sender, len(cfg.endpoints))
	wake := make([]chan struct{}, len(cfg.endpoints))
	for i := range cfg.endpoints {
		wake[i] = make(chan struct{}, 1)
		senders[i] = &sender{cfg: cfg, ep: &cfg.endpoints[i], name: cfg.endpoints[i].name(), wake: wake[i], stats: &d.stats}
		// List the endpoint in Stats now, in the order of Endpoints, not
		// when its sender first has something to count.
		d.stats.update(senders[i].name, func(*EndpointStats) {})
	}
	d.mu.Lock()
	d.wake = wake
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.wake = nil
		d.mu.Unlock()
	}()

	var wg sync.WaitGroup
	var fatalOnce sync.Once
	var fatal error
	for _, s := range senders {
		wg.Go(func() {
			if err := s.run(runCtx); err != nil {
				fatalOnce.Do(func() { fatal = err })
				cancel()
			}
		})
	}
	wg.Wait()
	if fatal != nil {
		return fatal
	}
	return ctx.Err()
}

// Notify wakes the senders of a running Dispatcher to look at their
// outboxes now, after an AppendOutbox. It never blocks; without a Run it
// does nothing (Run looks at every outbox when it starts).
func (d *Dispatcher) Notify() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.wake {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// Stats returns the counters of every Run of d so far.
func (d *Dispatcher) Stats() Stats {
	return d.stats.snapshot()
}

// config is a Dispatcher's fields, checked, with the defaults filled in.
type config struct {
	store     queue.OutboxStore
	endpoints []Endpoint
	owner     string
	client    *http.Client
	batch     int
	maxBytes  int
	timeout   time.Duration
	lease     time.Duration
	maxAge    time.Duration
	backoff   func(int) time.Duration
	poll      time.Duration
	onDrop    func(string, []queue.OutboxItem, error)
	log       *slog.Logger
}

func (d *Dispatcher) config() (*config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case d.Store == nil:
		return nil, bad("no Store")
	case len(d.Endpoints) == 0:
		return nil, bad("no Endpoints")
	case d.BatchSize < 0 || d.BatchSize > MaxBatchSize:
		return nil, bad("BatchSize %d outside 0-%d", d.BatchSize, MaxBatchSize)
	case d.MaxBatchBytes < 0 || d.MaxBatchBytes > MaxMaxBatchBytes:
		return nil, bad("MaxBatchBytes %d outside 0-%d", d.MaxBatchBytes, MaxMaxBatchBytes)
	case d.Timeout < 0:
		return nil, bad("negative Timeout %v", d.Timeout)
	case d.MaxAge < 0:
		return nil, bad("negative MaxAge %v", d.MaxAge)
	case d.PollInterval < 0:
		return nil, bad("negative PollInterval %v", d.PollInterval)
	}
	for i := 0; i < len(d.Owner); i++ {
		if c := d.Owner[i]; c < 0x20 || c == 0x7f {
			return nil, bad("Owner %q has a control character", d.Owner)
		}
	}
	seen := make(map[string]bool, len(d.Endpoints))
	cfg := &config{
		store:     d.Store,
		endpoints: make([]Endpoint, len(d.Endpoints)),
		owner:     d.Owner,
		client:    d.Client,
		batch:     orDefault(d.BatchSize, DefaultBatchSize),
		maxBytes:  orDefault(d.MaxBatchBytes, DefaultMaxBatchBytes),
		timeout:   orDefault(d.Timeout, DefaultTimeout),
		maxAge:    orDefault(d.MaxAge, DefaultMaxAge),
		backoff:   d.Backoff,
		poll:      orDefault(d.PollInterval, DefaultPollInterval),
		onDrop:    d.OnDrop,
		log:       d.Logger,
	}
	for i := range d.Endpoints {
		e := &d.Endpoints[i]
		if err := e.check(i); err != nil {
			return nil, err
		}
		if seen[e.name()] {
			return nil, fmt.Errorf("%w: Endpoints[%d]: name %q used twice", ErrInvalidEndpoint, i, e.name())
		}
		seen[e.name()] = true
		cfg.endpoints[i] = Endpoint{Name: e.Name, URL: e.URL, Secrets: make([][]byte, len(e.Secrets))}
		for j, s := range e.Secrets {
			cfg.endpoints[i].Secrets[j] = append([]byte(nil), s...)
		}
	}
	cfg.lease = cfg.timeout + cfg.timeout/2
	if cfg.owner == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		cfg.owner = host + ":" + strconv.Itoa(os.Getpid())
	}
	if cfg.client == nil {
		cfg.client = newClient(d.AllowPrivateAddrs)
	} else {
		cfg.client = withoutRedirects(cfg.client)
	}
	if cfg.backoff == nil {
		cfg.backoff = DefaultBackoff
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// errStopped is the reason recorded for a batch whose POST was cut short
// because Run's context ended.
var errStopped = errors.New("dispatcher stopped")
