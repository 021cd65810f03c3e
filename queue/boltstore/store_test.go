package boltstore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/queuetest"
	bolt "go.etcd.io/bbolt"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := OpenWith(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reopenOptions make the suite close a store and open its file again.
// Open ends the leases of the process that had the file before.
var reopenOptions = queuetest.StoreOptions{
	Reopen: func(t *testing.T, old queue.Store) queue.Store {
		s := old.(*Store)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return openWith(t, s.Path(), s.opts)
	},
	ReopenEndsLeases: true,
}

func TestConformance(t *testing.T) {
	queuetest.TestStore(t, func(t *testing.T) queue.Store {
		return open(t, filepath.Join(t.TempDir(), "q.db"))
	}, reopenOptions)
}

func TestConformanceBoltBatch(t *testing.T) {
	queuetest.TestStore(t, func(t *testing.T) queue.Store {
		return openWith(t, filepath.Join(t.TempDir(), "q.db"), Options{NoSync: true, useBoltBatch: true})
	}, reopenOptions)
}

// openWith opens path with o, closed when the test ends. With
// o.useBoltBatch it shortens bbolt's batch delay, so that the tests do not
// wait for it.
func openWith(t *testing.T, path string, o Options) *Store {
	t.Helper()
	s, err := OpenWith(path, o)
	if err != nil {
		t.Fatal(err)
	}
	if o.useBoltBatch {
		s.db.MaxBatchDelay = time.Millisecond
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newJob(id, key string) *queue.Job {
	j := queue.NewJob("s@example.org", []string{"r@" + key}, []byte("Subject: x\r\n\r\nx\r\n"))
	j.ID, j.RoutingKey, j.Created, j.NextAttempt = id, key, t0, t0
	return j
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	open(t, path)
	_, err := OpenWith(path, Options{Timeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestReopenKeepsJobsAndRecoversLeases(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := s.Put(ctx, newJob(id, "example.com")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set(ctx, "c", queue.ActionHold); err != nil {
		t.Fatal(err)
	}
	jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "dead", Max: 1, Now: t0, Lease: time.Hour})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Claim: %v %v", jobs, err)
	}
	s.Close()
	if _, err := s.Get(ctx, "a"); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}

	s = open(t, path)
	if st, _ := s.Stats(ctx); st != (queue.Stats{Queued: 2, Held: 1}) {
		t.Fatalf("Stats after reopen: %+v, want 2 queued 1 held", st)
	}
	// The dead process's lease is gone: both due jobs at once.
	jobs, err = s.Claim(ctx, queue.ClaimRequest{Owner: "new", Max: 5, Now: t0, Lease: time.Hour})
	if err != nil || len(jobs) != 2 {
		t.Fatalf("Claim after reopen: %d jobs, %v; want 2", len(jobs), err)
	}
	// A stale token from before the crash is fenced out.
	jobs[0].Lease.Token = "old"
	if err := s.Finish(ctx, jobs[0]); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("Finish with the old token: %v", err)
	}
}

func TestCorruptRecord(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	for _, id := range []string{"a", "b", "c"} {
		if err := s.Put(ctx, newJob(id, "example.com")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bJobs).Put([]byte("b"), []byte("{not json"))
	}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(ctx, "b")
	var ce *queue.CorruptError
	if !errors.As(err, &ce) || ce.ID != "b" || !errors.Is(err, queue.ErrCorrupt) {
		t.Fatalf("Get of a corrupt record: %v, want a CorruptError for b", err)
	}
	jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "w", Max: 5, Now: t0, Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 2 || jobs[0].ID != "a" || jobs[1].ID != "c" {
		t.Fatalf("Claim: %d jobs, want a and c", len(jobs))
	}
	if st, _ := s.Stats(ctx); st != (queue.Stats{Active: 2, Corrupt: 1}) {
		t.Fatalf("Stats: %+v, want 2 active, 1 corrupt", st)
	}
	list, _, err := s.List(ctx, queue.ListRequest{})
	if err != nil || len(list) != 2 {
		t.Fatalf("List: %d jobs, %v; want the 2 readable ones", len(list), err)
	}
	for _, a := range []queue.Action{queue.ActionHold, queue.ActionRelease, queue.ActionRetry} {
		err := s.Set(ctx, "b", a)
		if !errors.As(err, &ce) || ce.ID != "b" || !errors.Is(err, queue.ErrCorrupt) {
			t.Fatalf("Set(%d) of a corrupt record: %v, want a CorruptError for b", a, err)
		}
	}
	if err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bJobs).Get([]byte("b")); string(v) != "{not json" {
			t.Errorf("corrupt record after Set: %q, want it left as it was", v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "b", queue.ActionCancel); err != nil {
		t.Fatalf("Cancel of a corrupt record: %v", err)
	}
	if st, _ := s.Stats(ctx); st != (queue.Stats{Active: 2}) {
		t.Fatalf("Stats after Cancel: %+v, want 2 active", st)
	}
}

// A retried job's zero NextAttempt is stored as such: it reads back as
// the zero time after reopening, and the job is still due at once.
func TestRetrySurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	s := open(t, path)
	j := newJob("a", "example.com")
	j.NextAttempt = t0.Add(time.Hour)
	if err := s.Put(ctx, j); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "a", queue.ActionRetry); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	got, err := s.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if !got.NextAttempt.IsZero() {
		t.Fatalf("NextAttempt after reopen: %v, want the zero time", got.NextAttempt)
	}
	jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "w", Max: 5, Now: t0, Lease: time.Minute})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Claim after reopen: %d jobs, %v; want the retried job", len(jobs), err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	j := newJob("x", "bad\x00key")
	if err := s.Put(ctx, j); !errors.Is(err, queue.ErrInvalid) {
		t.Fatalf("Put with NUL in the key: %v", err)
	}
	if err := s.Set(ctx, "x", queue.Action(99)); !errors.Is(err, queue.ErrInvalid) {
		t.Fatalf("Set with an unknown action: %v", err)
	}
}
