package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// Spool is a queue.Store that keeps each job in a file of its own, in one
// directory, using nothing but the standard library. It is what a user
// might write to put the queue on storage of their choice, and it passes
// queuetest.TestStore.
//
// Layout: the job with id X lives in X.job, a JSON record of the whole
// job: its message, its recipients' states and its current lease. A file
// is never changed in place. Every change writes a new version to a
// temporary file, fsyncs it, renames it over the old one (rename is
// atomic, so a reader or a crash sees the old version or the new, never
// half of one) and fsyncs the directory so that the rename itself is on
// disk. Only then does the method return: that is the Store's promise of
// durability.
//
// The spool is for ONE process. A mutex makes it safe for the goroutines
// of that process, and an index in memory (every job without its message,
// rebuilt from the files by OpenSpool) answers Claim, List and Stats
// without reading the directory. Two processes on one directory would each
// trust their own index and claim the same jobs; a store shared between
// processes needs a database that arbitrates, such as queue/pgstore.
//
// Simplicity costs speed: each Put, Claim and Finish fsyncs a file and the
// directory while holding the one lock, so goroutines take turns at the
// disk. BenchmarkStores compares it with queue/boltstore, which commits
// several goroutines' changes together.
type Spool struct {
	dir string

	mu      sync.Mutex
	jobs    map[string]*queue.Job // every job without its Message, lease included
	corrupt map[string]error      // job files that cannot be decoded
	closed  bool
}

const (
	jobSuffix = ".job"  // a job's file: <id>.job
	tmpPrefix = ".tmp-" // a write in progress; left over only by a crash
	format    = 1       // the record format this code writes and reads
)

// record is the content of a job file. Format lets a later version of the
// program recognise files it must convert instead of misreading them.
type record struct {
	Format int       `json:"format"`
	Job    queue.Job `json:"job"`
}

var _ queue.Store = (*Spool)(nil)

// OpenSpool opens the spool in dir, creating the directory if needed. It
// reads every job file to rebuild the index, sets aside the ones that
// cannot be decoded (reported by Get, counted by Stats, removed by
// Cancel), and removes temporary files that a crash left behind: their
// rename never happened, so they were never part of the queue.
func OpenSpool(dir string) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{dir: dir, jobs: make(map[string]*queue.Job), corrupt: make(map[string]error)}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, tmpPrefix):
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("spool: %w", err)
			}
		case strings.HasSuffix(name, jobSuffix):
			id := strings.TrimSuffix(name, jobSuffix)
			j, err := s.read(id)
			var ce *queue.CorruptError
			switch {
			case errors.As(err, &ce):
				s.corrupt[id] = ce
			case err != nil:
				return nil, err
			default:
				j.Message = nil
				s.jobs[id] = j
			}
		}
	}
	return s, nil
}

// Close makes every later call fail with queue.ErrClosed. The files stay:
// OpenSpool on the same directory finds the queue as it was.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Put implements queue.Store. The id becomes a file name, so it may hold
// only letters, digits, '-', '_' and '.', and may not start with '.'
// (queue.NewID's hex ids always qualify).
func (s *Spool) Put(ctx context.Context, job *queue.Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	if job == nil || !validID(job.ID) {
		return fmt.Errorf("spool: %w: id not usable as a file name", queue.ErrInvalid)
	}
	if _, ok := s.jobs[job.ID]; ok {
		return fmt.Errorf("spool: %w: %s", queue.ErrExists, job.ID)
	}
	if _, ok := s.corrupt[job.ID]; ok {
		return fmt.Errorf("spool: %w: %s", queue.ErrExists, job.ID)
	}
	j := job.Clone()
	j.Lease = queue.Lease{}
	if err := s.write(j); err != nil {
		return err
	}
	if err := s.syncDir(); err != nil {
		return err
	}
	s.index(j)
	return nil
}

// Get implements queue.Store: it reads the job's file.
func (s *Spool) Get(ctx context.Context, id string) (*queue.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := s.known(id); err != nil {
		return nil, err
	}
	return s.read(id)
}

// Claim implements queue.Store. It looks through the index for due jobs,
// takes them earliest first, and writes each one's new lease to its file
// before handing it out. One directory fsync covers all the renames.
func (s *Spool) Claim(ctx context.Context, r queue.ClaimRequest) ([]*queue.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if r.Max <= 0 {
		return nil, nil
	}
	type candidate struct {
		job *queue.Job
		due time.Time
	}
	var due []candidate
	leased := make(map[string]int) // unexpired leases per routing key
	for _, j := range s.jobs {
		switch {
		case j.Lease.Token != "" && j.Lease.Until.After(r.Now):
			leased[j.RoutingKey]++ // being worked on, held or not
		case j.Held:
		case j.Lease.Token != "": // the lease expired: due since it ended
			due = append(due, candidate{j, j.Lease.Until})
		case !j.NextAttempt.After(r.Now):
			due = append(due, candidate{j, j.NextAttempt})
		}
	}
	slices.SortFunc(due, func(a, b candidate) int {
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		return strings.Compare(a.job.ID, b.job.ID)
	})
	var out []*queue.Job
	for _, c := range due {
		if len(out) == r.Max {
			break
		}
		key := c.job.RoutingKey
		if r.PerKey > 0 && leased[key] >= r.PerKey {
			continue // skip, do not wait: other keys get their turn
		}
		lease := queue.Lease{Owner: r.Owner, Token: rand.Text(), Until: r.Now.Add(r.Lease)}
		j, err := s.update(c.job.ID, func(j *queue.Job) { j.Lease = lease })
		var ce *queue.CorruptError
		if errors.As(err, &ce) {
			continue // set aside by update
		}
		if err != nil {
			// The jobs leased so far come back when their leases end.
			return nil, err
		}
		leased[key]++
		out = append(out, j)
	}
	if len(out) > 0 {
		if err := s.syncDir(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Finish implements queue.Store. The lease token is the fence: a worker
// whose lease expired and was claimed again cannot overwrite the newer
// outcome.
func (s *Spool) Finish(ctx context.Context, job *queue.Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := s.known(job.ID); err != nil {
		return err
	}
	if cur := s.jobs[job.ID]; cur.Lease.Token == "" || cur.Lease.Token != job.Lease.Token {
		return fmt.Errorf("spool: %w: job %s", queue.ErrLeaseLost, job.ID)
	}
	if job.Done() {
		return s.remove(job.ID)
	}
	_, err := s.update(job.ID, func(j *queue.Job) {
		j.Recipients = slices.Clone(job.Recipients)
		j.Attempts = job.Attempts
		j.NextAttempt = job.NextAttempt
		j.LastError = job.LastError
		j.Lease = queue.Lease{}
	})
	if err != nil {
		return err
	}
	return s.syncDir()
}

// Set implements queue.Store.
func (s *Spool) Set(ctx context.Context, id string, a queue.Action) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	if _, bad := s.corrupt[id]; bad && a == queue.ActionCancel {
		return s.remove(id) // the one thing to do with a corrupt record
	}
	if err := s.known(id); err != nil {
		return err
	}
	var held bool
	switch a {
	case queue.ActionRetry:
		// Due at once; a lease in flight is left alone, as by Release.
		if _, err := s.update(id, func(j *queue.Job) { j.NextAttempt = time.Time{} }); err != nil {
			return err
		}
		return s.syncDir()
	case queue.ActionHold:
		held = true
	case queue.ActionRelease:
		held = false
	case queue.ActionCancel:
		return s.remove(id) // a lease in flight dies with the file
	default:
		return fmt.Errorf("spool: %w: unknown action %d", queue.ErrInvalid, a)
	}
	if s.jobs[id].Held == held {
		return nil
	}
	// Release leaves a lease in flight alone: Claim sees the job again
	// when that lease ends, or at NextAttempt once Finish clears it.
	if _, err := s.update(id, func(j *queue.Job) { j.Held = held }); err != nil {
		return err
	}
	return s.syncDir()
}

// List implements queue.Store, from the index: no file is read.
func (s *Spool) List(ctx context.Context, r queue.ListRequest) ([]*queue.Job, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, "", err
	}
	limit := r.Limit
	if limit <= 0 {
		limit = 100
	}
	var ids []string
	for id, j := range s.jobs {
		if id > r.After && (r.State == queue.StateAny || queue.StateOf(j) == r.State) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	next := ""
	if len(ids) > limit {
		ids = ids[:limit]
		next = ids[limit-1]
	}
	out := make([]*queue.Job, len(ids))
	for i, id := range ids {
		out[i] = s.jobs[id].Clone() // Message is nil in the index
	}
	return out, next, nil
}

// Stats implements queue.Store, from the index.
func (s *Spool) Stats(ctx context.Context) (queue.Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return queue.Stats{}, err
	}
	st := queue.Stats{Corrupt: len(s.corrupt)}
	for _, j := range s.jobs {
		switch queue.StateOf(j) {
		case queue.StateQueued:
			st.Queued++
		case queue.StateActive:
			st.Active++
		case queue.StateHeld:
			st.Held++
		}
	}
	return st, nil
}

// ---- helpers; s.mu is held ----

func (s *Spool) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed {
		return queue.ErrClosed
	}
	return nil
}

// known returns nil for an id in the index, the *queue.CorruptError of a
// set-aside file, or queue.ErrNotFound. Only ids that passed through here
// or Put ever become paths.
func (s *Spool) known(id string) error {
	if _, ok := s.jobs[id]; ok {
		return nil
	}
	if err, ok := s.corrupt[id]; ok {
		return err
	}
	return fmt.Errorf("spool: %w: %s", queue.ErrNotFound, id)
}

func (s *Spool) path(id string) string { return filepath.Join(s.dir, id+jobSuffix) }

// index puts a copy of j, without its message, in the index.
func (s *Spool) index(j *queue.Job) {
	c := *j
	c.Message = nil
	s.jobs[j.ID] = c.Clone()
}

// read decodes the job's file. A file that does not decode is reported as
// a *queue.CorruptError naming the job.
func (s *Spool) read(id string) (*queue.Job, error) {
	data, err := os.ReadFile(s.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("spool: %w: %s", queue.ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, &queue.CorruptError{ID: id, Err: err}
	}
	if rec.Format != format || rec.Job.ID != id {
		return nil, &queue.CorruptError{ID: id, Err: fmt.Errorf("format %d, id %q", rec.Format, rec.Job.ID)}
	}
	return &rec.Job, nil
}

// update reads the job's file, applies change, writes it back and updates
// the index; the caller syncs the directory. It returns the new job, with
// its message. A file found corrupt is set aside.
func (s *Spool) update(id string, change func(*queue.Job)) (*queue.Job, error) {
	j, err := s.read(id)
	var ce *queue.CorruptError
	if errors.As(err, &ce) {
		delete(s.jobs, id)
		s.corrupt[id] = ce
	}
	if err != nil {
		return nil, err
	}
	change(j)
	if err := s.write(j); err != nil {
		return nil, err
	}
	s.index(j)
	return j, nil
}

// write replaces the job's file atomically: temporary file, fsync,
// rename. The rename is durable once the caller has synced the directory.
func (s *Spool) write(j *queue.Job) (err error) {
	data, err := json.Marshal(record{Format: format, Job: *j})
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	f, err := os.CreateTemp(s.dir, tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("spool: %w", err)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil { // the bytes are on disk...
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), s.path(j.ID)) // ...before the name points at them
}

// remove deletes the job's file, makes that durable and forgets the job.
func (s *Spool) remove(id string) error {
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	if err := s.syncDir(); err != nil {
		return err
	}
	delete(s.jobs, id)
	delete(s.corrupt, id)
	return nil
}

// syncDir fsyncs the directory, which makes the renames and removals in it
// durable (POSIX: a rename is a change to the directory, not to the file).
func (s *Spool) syncDir() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// validID reports whether id is safe as a file name in the spool.
func validID(id string) bool {
	if id == "" || len(id) > 200 || id[0] == '.' {
		return false
	}
	for _, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}
