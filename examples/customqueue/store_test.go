package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/queuetest"
)

// The spool passes the conformance suite every Store passes.
func TestSpoolConformance(t *testing.T) {
	queuetest.TestStore(t, func(t *testing.T) queue.Store {
		return openSpool(t, t.TempDir())
	}, queuetest.StoreOptions{
		// The files stay when the spool is closed: open the directory
		// again, as a restarted process would.
		Reopen: func(t *testing.T, old queue.Store) queue.Store {
			s := old.(*Spool)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openSpool(t, s.dir)
		},
	})
}

func openSpool(t *testing.T, dir string) *Spool {
	t.Helper()
	s, err := OpenSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 6_000_000, time.UTC)

func testJob(id string) *queue.Job {
	j := queue.NewJob("a@example.org", []string{"b@example.com", "c@example.com"}, []byte("Subject: x\r\n\r\nhi\r\n"))
	j.ID, j.Created, j.NextAttempt, j.RoutingKey = id, t0, t0, "example.com"
	return j
}

// What the files hold survives closing and reopening: jobs, recipients'
// states, holds and leases (a lease token still fences after a restart).
func TestSpoolReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openSpool(t, dir)
	for _, id := range []string{"j1", "j2", "j3"} {
		if err := s.Put(ctx, testJob(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Set(ctx, "j3", queue.ActionHold); err != nil {
		t.Fatal(err)
	}
	jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "w", Max: 2, Now: t0, Lease: time.Hour})
	if err != nil || len(jobs) != 2 {
		t.Fatalf("Claim: %d jobs, %v", len(jobs), err)
	}
	// j1: one recipient delivered, the other retried later.
	j1 := jobs[0]
	j1.Recipients[0].State, j1.Recipients[0].Reply = queue.Delivered, "250 ok"
	j1.Recipients[1].State = queue.Deferred
	j1.Attempts, j1.NextAttempt, j1.LastError = 1, t0.Add(time.Minute), "451 later"
	if err := s.Finish(ctx, j1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Get(ctx, "j1"); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}

	s = openSpool(t, dir)
	st, err := s.Stats(ctx)
	if err != nil || st != (queue.Stats{Queued: 1, Active: 1, Held: 1}) {
		t.Fatalf("Stats after reopening: %+v, %v; want 1 queued, 1 active, 1 held", st, err)
	}
	got, err := s.Get(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Recipients[0].State != queue.Delivered || got.Recipients[1].State != queue.Deferred ||
		got.Attempts != 1 || !got.NextAttempt.Equal(t0.Add(time.Minute)) || string(got.Message) != "Subject: x\r\n\r\nhi\r\n" {
		t.Fatalf("j1 after reopening: %+v", got)
	}
	// The lease of j2 was on disk: its token still finishes it.
	j2 := jobs[1]
	j2.Recipients[0].State, j2.Recipients[1].State = queue.Delivered, queue.Bounced
	if err := s.Finish(ctx, j2); err != nil {
		t.Fatalf("Finish with a lease from before the restart: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "j2.job")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file of a finished job: %v, want it gone", err)
	}
	if held, _, _ := s.List(ctx, queue.ListRequest{State: queue.StateHeld}); len(held) != 1 || held[0].ID != "j3" {
		t.Fatalf("held jobs after reopening: %v", held)
	}
}

// A file that does not decode is set aside: reported by Get, skipped by
// Claim and List, counted by Stats, removed by Cancel. A leftover
// temporary file (a crash before its rename) is removed at open.
func TestSpoolCorruptAndLeftovers(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openSpool(t, dir)
	for _, id := range []string{"good", "bad", "later"} {
		if err := s.Put(ctx, testJob(id)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	for name, data := range map[string]string{
		"bad.job":       `{"format":1,"job":{"ID":"bad","Recip`,
		".tmp-12345":    "half a write",
		"unrelated.txt": "kept",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s = openSpool(t, dir)
	if _, err := os.Stat(filepath.Join(dir, ".tmp-12345")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file after open: %v, want it removed", err)
	}
	var ce *queue.CorruptError
	if _, err := s.Get(ctx, "bad"); !errors.As(err, &ce) || ce.ID != "bad" || !errors.Is(err, queue.ErrCorrupt) {
		t.Fatalf("Get of a corrupt file: %v, want a CorruptError for bad", err)
	}
	if st, _ := s.Stats(ctx); st != (queue.Stats{Queued: 2, Corrupt: 1}) {
		t.Fatalf("Stats: %+v, want 2 queued, 1 corrupt", st)
	}
	if list, _, _ := s.List(ctx, queue.ListRequest{}); len(list) != 2 {
		t.Fatalf("List: %d jobs, want the 2 good ones", len(list))
	}
	// A file damaged while the spool is open is set aside by Claim.
	if err := os.WriteFile(filepath.Join(dir, "later.job"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "w", Max: 10, Now: t0, Lease: time.Minute})
	if err != nil || len(jobs) != 1 || jobs[0].ID != "good" {
		t.Fatalf("Claim: %v, %v; want only good", jobs, err)
	}
	if st, _ := s.Stats(ctx); st != (queue.Stats{Active: 1, Corrupt: 2}) {
		t.Fatalf("Stats after Claim: %+v, want 1 active, 2 corrupt", st)
	}
	for _, id := range []string{"bad", "later"} {
		if err := s.Set(ctx, id, queue.ActionCancel); err != nil {
			t.Fatalf("Cancel(%s): %v", id, err)
		}
		if _, err := os.Stat(filepath.Join(dir, id+".job")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("file of cancelled %s: %v", id, err)
		}
	}
	if st, _ := s.Stats(ctx); st != (queue.Stats{Active: 1}) {
		t.Fatalf("Stats after Cancel: %+v, want 1 active", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "unrelated.txt")); err != nil {
		t.Errorf("a file that is not the spool's was touched: %v", err)
	}
}

// Ids become file names: anything that could leave the directory or hide
// among temporary files is refused.
func TestSpoolIDs(t *testing.T) {
	s := openSpool(t, t.TempDir())
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"0123456789abcdef0123456789abcdef", true},
		{"job-00001_x.y", true},
		{"", false},
		{"../escape", false},
		{"a/b", false},
		{`a\b`, false},
		{".hidden", false},
		{".tmp-1", false},
		{"spa ce", false},
		{"nul\x00", false},
		{"ü", false},
	} {
		j := testJob(tc.id)
		err := s.Put(context.Background(), j)
		if tc.ok && err != nil {
			t.Errorf("Put(%q): %v", tc.id, err)
		}
		if !tc.ok && !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("Put(%q): %v, want ErrInvalid", tc.id, err)
		}
	}
}
