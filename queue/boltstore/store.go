package boltstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	bolt "go.etcd.io/bbolt"
)

// ErrLocked: another process (or another Store in this one) has the file
// open.
var ErrLocked = errors.New("boltstore: file in use by another process")

// Options tune OpenWith. The zero value gives Open's behaviour.
type Options struct {
	// Timeout bounds the wait for the file lock; 0 → 1 second.
	Timeout time.Duration
	// NoSync skips fdatasync on commit: faster, and a machine crash may
	// lose or corrupt recent writes. For tests and throwaway queues only.
	NoSync bool
	// MaxBatch caps the writes shared by one commit; 0 → 1024.
	MaxBatch int
	// Logger receives corrupt-record reports; nil → silent.
	Logger *slog.Logger

	useBoltBatch bool // benchmarks: commit through bbolt's DB.Batch instead
	noGather     bool // benchmarks: never wait for a batch's writers to return
}

// Store is a queue.Store in one bbolt file. Close it when done.
type Store struct {
	db   *bolt.DB
	opts Options
	path string

	mu     sync.RWMutex // guards closed against ops being sent
	closed bool
	ops    chan *op
	done   chan struct{} // the commit loop exited
	prefix string        // lease token prefix, unique per Open

	commits atomic.Int64 // write transactions committed (tests and benchmarks count them)
	writes  atomic.Int64 // writes committed in them
	busy    atomic.Int64 // nanoseconds spent running and committing batches
}

var (
	_ queue.Store         = (*Store)(nil)
	_ queue.PutLeaser     = (*Store)(nil)
	_ queue.FinishClaimer = (*Store)(nil)
)

// Open opens (creating if needed) the queue file at path with default
// options.
func Open(path string) (*Store, error) { return OpenWith(path, Options{}) }

// OpenWith opens the queue file at path, creating it only if no file is
// there. Jobs leased when the file was last closed (a crash) are made due
// again at once, and the outboxes' leases are ended.
//
// An existing file is checked first; a file that is empty, truncated or
// damaged gives an error that matches ErrCorrupt, never a panic, and is
// left as it was (see the package documentation). A file another process
// has open gives ErrLocked after Options.Timeout.
func OpenWith(path string, o Options) (*Store, error) {
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1024
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A new queue: bbolt creates the file and writes its first pages.
	case err != nil:
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	case fi.IsDir():
		return nil, fmt.Errorf("boltstore: open %s: is a directory", path)
	default:
		if err := checkFile(path, fi.Size(), o.Timeout); err != nil {
			return nil, err
		}
	}
	// checkFile has read every page that bbolt reads here (some of them in
	// a goroutine of its own, out of reach of safely).
	var db *bolt.DB
	_, err = openBolt(path, &bolt.Options{
		Timeout:        o.Timeout,
		NoSync:         o.NoSync,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	}, &db)
	if err != nil {
		return nil, boltOpenErr(path, err, o.Timeout)
	}
	s := &Store{db: db, opts: o, path: path, ops: make(chan *op, o.MaxBatch),
		done: make(chan struct{}), prefix: queue.NewID(time.Now())[16:24]}
	// Verify before the first write, so that a damaged file is not changed.
	if err := safely(path, s.verify); err != nil {
		db.Close()
		return nil, err
	}
	if err := safely(path, func() error {
		return db.Update(func(btx *bolt.Tx) error {
			for _, b := range allBuckets {
				if _, err := btx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			if err := s.recoverLeases(tx{btx}); err != nil {
				return err
			}
			return s.endOutboxLeases(tx{btx})
		})
	}); err != nil {
		db.Close()
		if errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	go s.loop()
	return s, nil
}

// recoverLeases gives back every job a previous process had claimed.
func (s *Store) recoverLeases(t tx) error {
	type lease struct{ key, id string }
	var ls []lease
	c := t.b(bLeased).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		i := indexByte(k, 0)
		ls = append(ls, lease{string(k[:i]), string(k[i+1:])})
	}
	for _, l := range ls {
		if err := t.b(bLeased).Delete(leasedKey(l.key, l.id)); err != nil {
			return err
		}
		v := t.b(bJobs).Get([]byte(l.id))
		r, err := decode(l.id, v)
		if v == nil || err != nil {
			continue // gone, or set aside on first claim
		}
		if !r.Held {
			if err := t.unschedule(r.Key, l.id, r.Due); err != nil {
				return err
			}
			r.Due = r.Next
			if err := t.schedule(r.Key, l.id, r.Due); err != nil {
				return err
			}
		}
		r.LeaseOwner, r.LeaseToken, r.LeaseUntil = "", "", 0
		if err := t.b(bJobs).Put([]byte(l.id), encode(r)); err != nil {
			return err
		}
	}
	if len(ls) > 0 {
		s.log(slog.LevelInfo, "boltstore: recovered leases of a previous process", "jobs", len(ls))
	}
	return nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func (s *Store) log(level slog.Level, msg string, args ...any) {
	if s.opts.Logger != nil {
		s.opts.Logger.Log(context.Background(), level, msg, args...)
	}
}

// Path returns the file's path.
func (s *Store) Path() string { return s.path }

// Close waits for pending writes, then closes the file. Later calls fail
// with queue.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.ops)
	s.mu.Unlock()
	<-s.done
	return s.db.Close()
}

// op is one write waiting for a commit. fn must change nothing outside the
// transaction except its own results, since it may run again when another
// op in its batch fails.
type op struct {
	fn  func(t tx) error
	err chan error
}

// update runs fn in a write transaction shared with other callers' writes
// and returns once it is committed.
func (s *Store) update(ctx context.Context, fn func(t tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return queue.ErrClosed
	}
	if s.opts.useBoltBatch {
		s.mu.RUnlock()
		return s.db.Batch(func(btx *bolt.Tx) error { return fn(tx{btx}) })
	}
	o := &op{fn: fn, err: make(chan error, 1)}
	s.ops <- o
	s.mu.RUnlock()
	// Wait even if ctx ends: the write may already be committed.
	return <-o.err
}

// view runs fn in a read transaction.
func (s *Store) view(ctx context.Context, fn func(t tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return queue.ErrClosed
	}
	return s.db.View(func(btx *bolt.Tx) error { return fn(tx{btx}) })
}

// loop is the group commit: it takes every write waiting and commits them
// in one transaction.
func (s *Store) loop() {
	defer close(s.done)
	batch := make([]*op, 0, s.opts.MaxBatch)
	last := 0 // size of the previous batch
	for o := range s.ops {
		batch = append(batch[:0], o)
		// After a batch of several writers, those writers were just
		// answered and are about to send their next writes: yield a few
		// times for about as many to arrive, so that one commit takes them
		// all. A lone writer never waits; there is no timer to be late.
		want := min(last*3/4, s.opts.MaxBatch)
		for y := 0; y < gatherYields && len(batch) < want && !s.opts.noGather; y++ {
			runtime.Gosched()
		drain:
			for len(batch) < s.opts.MaxBatch {
				select {
				case o, ok := <-s.ops:
					if !ok {
						break drain
					}
					batch = append(batch, o)
				default:
					break drain
				}
			}
		}
	fill:
		for len(batch) < s.opts.MaxBatch {
			select {
			case o, ok := <-s.ops:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		last = len(batch)
		s.commit(batch)
	}
}

// gatherYields bounds the yields while gathering a batch.
const gatherYields = 8

// commit runs a batch in one transaction. An op that fails is answered with
// its error and the batch is run again without it, so that its partial
// writes are rolled back.
func (s *Store) commit(batch []*op) {
	start := time.Now()
	defer func() { s.busy.Add(int64(time.Since(start))) }()
	for len(batch) > 0 {
		btx, err := s.db.Begin(true)
		if err != nil {
			answer(batch, err)
			return
		}
		failed := -1
		for i, o := range batch {
			if err := o.fn(tx{btx}); err != nil {
				failed = i
				o.err <- err
				break
			}
		}
		if failed >= 0 {
			_ = btx.Rollback()
			batch = append(batch[:failed:failed], batch[failed+1:]...)
			continue
		}
		err = btx.Commit()
		if err == nil {
			s.commits.Add(1)
			s.writes.Add(int64(len(batch)))
		}
		answer(batch, err)
		return
	}
}

func answer(batch []*op, err error) {
	for _, o := range batch {
		o.err <- err
	}
}
