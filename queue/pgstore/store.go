package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mxrelay/mxrelay/queue"
)

// DefaultSchema is the PostgreSQL schema that holds the queue when
// Options.Schema is empty.
const DefaultSchema = "mxrelay"

// DefaultMaxConns is the pool size Open and OpenWith use when the DSN does
// not set pool_max_conns.
const DefaultMaxConns = 16

// Options tune OpenWith and New. The zero value gives Open's behaviour.
type Options struct {
	// Schema is the PostgreSQL schema of the queue's tables, created if
	// missing; "" → DefaultSchema. Processes that share a queue use the
	// same schema; separate queues (or tests) use separate ones.
	//
	// The name must be a plain lower-case identifier: 1 to 63 characters
	// of a-z, 0-9 and _, not starting with a digit, and not starting with
	// "pg_" (PostgreSQL reserves those names). It is matched against
	// ^[a-z_][a-z0-9_]{0,62}$ before anything reaches the server; any
	// other name (upper case, quotes, spaces, dashes, dots, non-ASCII
	// letters) makes OpenWith and New fail with an error wrapping
	// ErrInvalidSchema.
	Schema string
	// MaxBatch caps the jobs one commit inserts when many Puts arrive at
	// once; 0 → 256. A commit takes a shared advisory lock per distinct
	// routing key among its jobs, which PostgreSQL keeps in its lock table
	// (max_locks_per_transaction × max_connections entries, 6,400 by
	// default): keep MaxBatch × Committers well under it.
	MaxBatch int
	// Committers is how many group commits may be in flight at once;
	// 0 → 2.
	Committers int
	// CommitTimeout bounds one group commit; 0 → 30 seconds.
	CommitTimeout time.Duration
	// SlotTTL is how long a connection slot (queue.LimitStore) outlives
	// the store's last renewal of it: the store renews its slots every
	// SlotTTL/3, and the slots of a process that died end within SlotTTL.
	// 0 → DefaultSlotTTL.
	SlotTTL time.Duration
	// Logger receives connection events of the wake-up listener; nil →
	// silent.
	Logger *slog.Logger
}

// Store is a queue.Store in PostgreSQL, shared by every process that opens
// the same schema. Its methods are safe for concurrent use. Close it when
// done.
type Store struct {
	pool     *pgxpool.Pool
	ownsPool bool
	opts     Options
	schema   string // raw name
	q        string // quoted schema name, for SQL text
	channel  string // LISTEN/NOTIFY channel
	sql      statements
	hsql     historySQL
	osql     outboxSQL

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	mu     sync.Mutex // orders Close against starting the listener
	closed atomic.Bool
	wg     sync.WaitGroup

	puts chan *putReq

	wakeOnce sync.Once
	wakeC    chan struct{}

	// queue.LimitStore (limits.go)
	lsql        limitsSQL
	owner       string // this store's name in dest_slots
	slotSeq     atomic.Uint64
	slotChannel string // NOTIFY channel of released slots
	slotC       chan struct{}
	renewOnce   sync.Once
	renewing    atomic.Bool
	limitsMu    sync.Mutex
	held        map[string]struct{} // the slots it renews
}

var (
	_ queue.Store      = (*Store)(nil)
	_ queue.Waker      = (*Store)(nil)
	_ queue.LimitStore = (*Store)(nil)
	_ fmt.Stringer     = (*Store)(nil)
)

// Open connects to the database named by dsn (a PostgreSQL URL or
// key=value string, as pgx accepts), creates or upgrades the queue schema
// DefaultSchema, and returns the store. It fails with a clear error when
// the DSN is malformed, the server cannot be reached, or the schema was
// written by a newer release (ErrSchemaTooNew).
func Open(ctx context.Context, dsn string) (*Store, error) {
	return OpenWith(ctx, dsn, Options{})
}

// OpenWith is Open with options. The store owns its connection pool and
// closes it in Close. The DSN may carry pgxpool's parameters
// (pool_max_conns and others); without pool_max_conns the pool holds up to
// DefaultMaxConns connections, plus one for wake-ups once Wake is called.
// A schema name that Options.Schema does not allow fails with an error
// wrapping ErrInvalidSchema before any connection is made.
func OpenWith(ctx context.Context, dsn string, o Options) (*Store, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: bad DSN: %w", err)
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "mxrelay-pgstore"
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		// pgx's default (the number of CPUs, at least 4) starves a queue
		// whose workers claim and finish in parallel.
		cfg.MaxConns = max(cfg.MaxConns, DefaultMaxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s, err := newStore(ctx, pool, o)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.ownsPool = true
	return s, nil
}

// New returns a store on an existing pool, creating or upgrading its
// schema. The pool must connect directly to PostgreSQL or through a
// session-mode pooler (wake-ups LISTEN on a connection of the pool's
// configuration). Close leaves the pool open. A schema name that
// Options.Schema does not allow fails with an error wrapping
// ErrInvalidSchema before the pool is used.
func New(ctx context.Context, pool *pgxpool.Pool, o Options) (*Store, error) {
	if pool == nil {
		return nil, errors.New("pgstore: New: nil pool")
	}
	return newStore(ctx, pool, o)
}

// schemaPattern is the form of the schema names a store accepts (see
// Options.Schema).
var schemaPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// checkSchema reports an error wrapping ErrInvalidSchema unless name is a
// schema name that Options.Schema accepts.
func checkSchema(name string) error {
	if !schemaPattern.MatchString(name) {
		return fmt.Errorf("%w: %q: want 1 to 63 characters of a-z, 0-9 and _, not starting with a digit",
			ErrInvalidSchema, name)
	}
	if strings.HasPrefix(name, "pg_") {
		return fmt.Errorf("%w: %q: names starting with pg_ are reserved by PostgreSQL",
			ErrInvalidSchema, name)
	}
	return nil
}

// fill replaces zero fields with their defaults and checks the schema
// name. It is idempotent.
func (o *Options) fill() error {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if err := checkSchema(o.Schema); err != nil {
		return err
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.Committers <= 0 {
		o.Committers = 2
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 30 * time.Second
	}
	if o.SlotTTL <= 0 {
		o.SlotTTL = DefaultSlotTTL
	}
	return nil
}

func newStore(ctx context.Context, pool *pgxpool.Pool, o Options) (*Store, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("pgstore: connect to database: %w", err)
	}
	if err := migrate(ctx, pool, o.Schema); err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(o.Schema))
	s := &Store{
		pool:    pool,
		opts:    o,
		schema:  o.Schema,
		q:       pgx.Identifier{o.Schema}.Sanitize(),
		channel: "mxrelay_" + hex.EncodeToString(sum[:8]),
		puts:    make(chan *putReq, o.MaxBatch),
		wakeC:   make(chan struct{}, 1),
		slotC:   make(chan struct{}, 1),
		held:    make(map[string]struct{}),
		owner:   queue.NewID(time.Now()),
	}
	s.slotChannel = s.channel + "_slots"
	s.lsql = prepareLimitsSQL(s.q)
	s.sql = prepareSQL(s.q)
	s.hsql = prepareHistorySQL(s.q)
	s.osql = prepareOutboxSQL(s.q)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for range o.Committers {
		s.wg.Add(1)
		go s.commitLoop()
	}
	return s, nil
}

// String names the store for logs: "pgstore(schema)".
func (s *Store) String() string { return "pgstore(" + s.schema + ")" }

// Schema returns the PostgreSQL schema that holds the queue.
func (s *Store) Schema() string { return s.schema }

// Pool returns the connection pool the store uses.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close stops the group-commit loops and the wake-up listener, fails Puts
// still waiting with queue.ErrClosed, and closes the pool if Open created
// it. Later calls fail with queue.ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	wasClosed := s.closed.Swap(true)
	s.mu.Unlock()
	if wasClosed {
		return nil
	}
	s.releaseAllSlots()
	s.cancel()
	s.wg.Wait()
	// Fail requests that raced with Close.
	for {
		select {
		case r := <-s.puts:
			r.done <- queue.ErrClosed
		default:
			if s.ownsPool {
				s.pool.Close()
			}
			return nil
		}
	}
}

// check reports ctx's error or ErrClosed before an operation.
func (s *Store) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return queue.ErrClosed
	}
	return nil
}

// dbError wraps err from operation op, saying when the store was closed.
func (s *Store) dbError(op string, err error) error {
	if s.closed.Load() {
		return fmt.Errorf("pgstore: %s: %w", op, queue.ErrClosed)
	}
	return fmt.Errorf("pgstore: %s: database: %w", op, err)
}
