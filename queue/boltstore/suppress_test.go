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

func TestSuppressions(t *testing.T) {
	queuetest.TestSuppressions(t, func(t *testing.T) queue.SuppressionStore {
		return open(t, filepath.Join(t.TempDir(), "q.db"))
	}, queuetest.SuppressionOptions{
		Reopen: func(t *testing.T, old queue.SuppressionStore) queue.SuppressionStore {
			s := old.(*Store)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, s.Path())
		},
	})
}

// TestSuppressionsBesideJobs: the list shares the file with the queue, and
// both survive a reopening with the file's checks.
func TestSuppressionsBesideJobs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	s := open(t, path)
	if err := s.Put(ctx, newJob("j1", "x.example")); err != nil {
		t.Fatal(err)
	}
	e := queue.Suppression{Address: "a@x.example", Reason: queue.Complained, Source: "arf", Created: t0}
	if err := s.Suppress(ctx, e); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path)
	if _, err := s.Get(ctx, "j1"); err != nil {
		t.Fatalf("Get after reopening: %v", err)
	}
	got, err := s.Suppressed(ctx, "news", []string{"a@x.example"}, t0)
	if err != nil || len(got) != 1 || got[0].Source != "arf" {
		t.Fatalf("Suppressed after reopening: %+v, %v", got, err)
	}
}

// TestSuppressionsNoBucket: a file that never had a suppression answers
// every read, and Unsuppress, without creating the bucket.
func TestSuppressionsNoBucket(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	if got, err := s.Suppressed(ctx, "", []string{"a@x.example"}, t0); err != nil || len(got) != 0 {
		t.Fatalf("Suppressed: %v, %v", got, err)
	}
	if got, err := s.Suppressions(ctx, queue.SuppressionFilter{}); err != nil || len(got) != 0 {
		t.Fatalf("Suppressions: %v, %v", got, err)
	}
	if ok, err := s.Unsuppress(ctx, "a@x.example", ""); ok || err != nil {
		t.Fatalf("Unsuppress: %v, %v", ok, err)
	}
	s.db.View(func(btx *bolt.Tx) error {
		if btx.Bucket(bSuppress) != nil {
			t.Errorf("the suppression bucket was created by reads")
		}
		return nil
	})
}

// TestSuppressionCorrupt: a damaged entry is reported by Suppressed and
// Suppressions as a *queue.CorruptSuppressionError naming it (a damaged
// record, not a damaged file), never a panic; the other entries still
// answer; Unsuppress removes it and Suppress replaces it.
func TestSuppressionCorrupt(t *testing.T) {
	ctx := context.Background()
	good := queue.Suppression{Address: "good@x.example", Reason: queue.Manual, Created: t0}
	bad := queue.Suppression{Address: "bad@x.example", Scope: "news", Reason: queue.Manual, Created: t0}
	k := suppressKey(nil, bad.Address, bad.Scope)
	v := encodeSuppression(k, &bad)
	damage := map[string]func() (key, val []byte){
		"flipped byte":    func() ([]byte, []byte) { w := append([]byte(nil), v...); w[5] ^= 1; return k, w },
		"truncated":       func() ([]byte, []byte) { return k, v[:len(v)-7] },
		"empty":           func() ([]byte, []byte) { return k, []byte{} },
		"newer version":   func() ([]byte, []byte) { return k, resum(k, v, func(w []byte) { w[0] = 2 }) },
		"unknown reason":  func() ([]byte, []byte) { return k, resum(k, v, func(w []byte) { w[1] = 9 }) },
		"bad nanoseconds": func() ([]byte, []byte) { return k, resum(k, v, func(w []byte) { w[10] = 0xff }) },
		"key without NUL": func() ([]byte, []byte) { return []byte("bad@x.example"), v },
		"key moved": func() ([]byte, []byte) {
			return suppressKey(nil, "bad@x.example", "newz"), v // checksum covers the key
		},
	}
	for name, fn := range damage {
		t.Run(name, func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "q.db"))
			if err := s.Suppress(ctx, good, bad); err != nil {
				t.Fatal(err)
			}
			dk, dv := fn()
			if err := s.db.Update(func(btx *bolt.Tx) error {
				b := btx.Bucket(bSuppress)
				if err := b.Delete(k); err != nil {
					return err
				}
				return b.Put(dk, dv)
			}); err != nil {
				t.Fatal(err)
			}
			address, scope, kerr := splitSuppressKey(dk)
			isCorrupt := func(what string, err error) {
				t.Helper()
				var ce *queue.CorruptSuppressionError
				if !errors.As(err, &ce) || !errors.Is(err, queue.ErrCorrupt) || errors.Is(err, ErrCorrupt) ||
					ce.Address != address || ce.Scope != scope {
					t.Fatalf("%s: %v, want a CorruptSuppressionError for %q/%q", what, err, address, scope)
				}
			}
			_, err := s.Suppressions(ctx, queue.SuppressionFilter{})
			isCorrupt("Suppressions", err)
			if kerr == nil { // a key a lookup can reach
				_, err = s.Suppressed(ctx, scope, []string{good.Address, bad.Address}, t0)
				isCorrupt("Suppressed", err)
			}
			if got, err := s.Suppressed(ctx, "news", []string{good.Address}, t0); err != nil || len(got) != 1 {
				t.Fatalf("Suppressed of the good entry: %v, %v", got, err)
			}
			if ok, err := s.Unsuppress(ctx, address, scope); !ok || err != nil {
				t.Fatalf("Unsuppress of the damaged entry: %v, %v", ok, err)
			}
			if got, err := s.Suppressions(ctx, queue.SuppressionFilter{}); err != nil || len(got) != 1 {
				t.Fatalf("Suppressions after Unsuppress: %v, %v", got, err)
			}
			if err := s.Suppress(ctx, bad); err != nil {
				t.Fatal(err)
			}
			if got, err := s.Suppressions(ctx, queue.SuppressionFilter{}); err != nil || len(got) != 2 {
				t.Fatalf("Suppressions after storing it again: %v, %v", got, err)
			}
		})
	}
}

// resum changes a copy of value v with fn and gives it a valid checksum.
func resum(k, v []byte, fn func(w []byte)) []byte {
	w := append([]byte(nil), v[:len(v)-4]...)
	fn(w)
	return appendSum(k, w)
}

// FuzzDecodeSuppression feeds arbitrary keys and values to the
// suppression decoder: it must return an entry or a
// *queue.CorruptSuppressionError, never panic, and an entry it accepts
// must encode to the same bytes.
func FuzzDecodeSuppression(f *testing.F) {
	e := queue.Suppression{Address: "a@x.example", Scope: "news", Reason: queue.HardBounced, Source: "550 5.1.1",
		Created: time.Unix(1e9, 5), Expires: time.Unix(2e9, 0)}
	k := suppressKey(nil, e.Address, e.Scope)
	f.Add(k, encodeSuppression(k, &e))
	f.Add(k, []byte{})
	f.Add([]byte("no-nul"), encodeSuppression(k, &e))
	f.Add([]byte{0}, make([]byte, 30))
	f.Fuzz(func(t *testing.T, k, v []byte) {
		got, err := decodeSuppression(k, v)
		if err != nil {
			var ce *queue.CorruptSuppressionError
			if !errors.As(err, &ce) || !errors.Is(err, queue.ErrCorrupt) {
				t.Fatalf("decode error %v is not a CorruptSuppressionError", err)
			}
			return
		}
		if w := encodeSuppression(k, &got); string(w) != string(v) {
			t.Fatalf("an accepted record encodes to other bytes:\n%x\n%x", v, w)
		}
	})
}
