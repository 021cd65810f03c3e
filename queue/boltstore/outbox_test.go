package boltstore

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/queuetest"
	bolt "go.etcd.io/bbolt"
)

// outboxOptions make the suite close a store and open its file again,
// which ends the leases of the process that had it.
var outboxOptions = queuetest.OutboxOptions{
	Reopen: func(t *testing.T, old queue.OutboxStore) queue.OutboxStore {
		s := old.(*Store)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return openWith(t, s.Path(), s.opts)
	},
	ReopenEndsLeases: true,
}

func TestOutbox(t *testing.T) {
	queuetest.TestOutbox(t, func(t *testing.T) queue.OutboxStore {
		return open(t, filepath.Join(t.TempDir(), "q.db"))
	}, outboxOptions)
}

func TestOutboxBoltBatch(t *testing.T) {
	queuetest.TestOutbox(t, func(t *testing.T) queue.OutboxStore {
		return openWith(t, filepath.Join(t.TempDir(), "q.db"), Options{NoSync: true, useBoltBatch: true})
	}, outboxOptions)
}

// oEntry returns an outbox entry of ep at t0.
func oEntry(ep, data string) queue.OutboxEntry {
	return queue.OutboxEntry{Endpoint: ep, Time: t0, Data: []byte(data)}
}

func oClaim(ep string, now time.Time) queue.OutboxClaim {
	return queue.OutboxClaim{Endpoint: ep, Owner: "test", Max: 10, Now: now, Lease: time.Minute}
}

// TestOutboxBesideJobs: the outboxes share the file with the queue, the
// history and the suppression list, and Open ends the leases of both jobs
// and outboxes, without disturbing the rest.
func TestOutboxBesideJobs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	s := open(t, path)
	for _, id := range []string{"j1", "j2"} {
		if err := s.Put(ctx, newJob(id, "x.example")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Keep(ctx, histRec("j1", t0, "a@x.example")); err != nil {
		t.Fatal(err)
	}
	if err := s.Suppress(ctx, queue.Suppression{Address: "b@x.example", Reason: queue.Manual, Created: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendOutbox(ctx, oEntry("hook", "1"), oEntry("hook", "2"), oEntry("other", "x")); err != nil {
		t.Fatal(err)
	}
	jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "old", Max: 1, Now: t0, Lease: time.Hour})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Claim: %d jobs, %v", len(jobs), err)
	}
	old, err := s.ClaimOutbox(ctx, oClaim("hook", t0))
	if err != nil || old == nil {
		t.Fatalf("ClaimOutbox: %v, %v", old, err)
	}
	s.Close()

	s = open(t, path)
	for _, id := range []string{"j1", "j2"} {
		if j, err := s.Get(ctx, id); err != nil || j.Lease.Token != "" {
			t.Fatalf("Get(%s) after reopening: %+v, %v; want it there, not leased", id, j, err)
		}
	}
	if jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "new", Max: 5, Now: t0, Lease: time.Hour}); err != nil || len(jobs) != 2 {
		t.Fatalf("Claim after reopening: %d jobs, %v; want both", len(jobs), err)
	}
	if r, err := s.Record(ctx, "j1"); err != nil || r.Subject != "s j1" {
		t.Fatalf("Record after reopening: %+v, %v", r, err)
	}
	if got, err := s.Suppressed(ctx, "", []string{"b@x.example"}, t0); err != nil || len(got) != 1 {
		t.Fatalf("Suppressed after reopening: %+v, %v", got, err)
	}
	sts, err := s.Outboxes(ctx)
	if err != nil || len(sts) != 2 || sts[0].Endpoint != "hook" || sts[0].Pending != 2 || sts[0].Owner != "" || sts[1].Pending != 1 {
		t.Fatalf("Outboxes after reopening: %+v, %v; want hook with 2 items and no lease, and other", sts, err)
	}
	if err := s.AckOutbox(ctx, old); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("AckOutbox with a token from before reopening: %v, want ErrLeaseLost", err)
	}
	b, err := s.ClaimOutbox(ctx, oClaim("hook", t0))
	if err != nil || b == nil || len(b.Items) != 2 || b.Token == old.Token {
		t.Fatalf("ClaimOutbox after reopening: %+v, %v; want both items under a new token", b, err)
	}
	if err := s.AckOutbox(ctx, b); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Stats(ctx); err != nil || st.Active != 2 || st.Queued+st.Held+st.Corrupt != 0 {
		t.Fatalf("Stats after the outbox's changes: %+v, %v; want the 2 jobs active", st, err)
	}
}

// TestOutboxNoBucket: a file that never had an outbox answers every call
// but an AppendOutbox of entries without creating the bucket, and a claim
// that gets nothing commits nothing.
func TestOutboxNoBucket(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	txid := func() (id int) {
		s.db.View(func(btx *bolt.Tx) error { id = btx.ID(); return nil })
		return id
	}
	if sts, err := s.Outboxes(ctx); err != nil || sts != nil {
		t.Fatalf("Outboxes: %v, %v; want none", sts, err)
	}
	if b, err := s.ClaimOutbox(ctx, oClaim("hook", t0)); err != nil || b != nil {
		t.Fatalf("ClaimOutbox: %v, %v; want nil", b, err)
	}
	if err := s.AppendOutbox(ctx); err != nil {
		t.Fatalf("AppendOutbox of nothing: %v", err)
	}
	forged := &queue.OutboxBatch{Endpoint: "hook", Token: "t", Items: []queue.OutboxItem{{Seq: 1}}}
	if err := s.AckOutbox(ctx, forged); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("AckOutbox: %v, want ErrLeaseLost", err)
	}
	if err := s.RetryOutbox(ctx, forged, t0, "x"); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("RetryOutbox: %v, want ErrLeaseLost", err)
	}
	s.db.View(func(btx *bolt.Tx) error {
		if btx.Bucket(bOutbox) != nil {
			t.Errorf("the outbox bucket was created by calls other than AppendOutbox")
		}
		return nil
	})

	// A claim of an empty, leased or retried outbox is a read.
	if err := s.AppendOutbox(ctx, oEntry("leased", "a"), oEntry("retried", "b")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimOutbox(ctx, oClaim("leased", t0)); err != nil {
		t.Fatal(err)
	}
	b, err := s.ClaimOutbox(ctx, oClaim("retried", t0))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RetryOutbox(ctx, b, t0.Add(time.Hour), "503"); err != nil {
		t.Fatal(err)
	}
	before := txid()
	for _, ep := range []string{"leased", "retried", "none"} {
		if b, err := s.ClaimOutbox(ctx, oClaim(ep, t0)); err != nil || b != nil {
			t.Fatalf("ClaimOutbox(%q): %v, %v; want nil", ep, b, err)
		}
	}
	if after := txid(); after != before {
		t.Errorf("claims that got nothing committed %d transactions", after-before)
	}
}

// TestOutboxClosed: every method of a closed store gives queue.ErrClosed.
func TestOutboxClosed(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	if err := s.AppendOutbox(ctx, oEntry("hook", "1")); err != nil {
		t.Fatal(err)
	}
	b, err := s.ClaimOutbox(ctx, oClaim("hook", t0))
	if err != nil || b == nil {
		t.Fatalf("ClaimOutbox: %v, %v", b, err)
	}
	s.Close()
	for name, err := range map[string]error{
		"AppendOutbox":          s.AppendOutbox(ctx, oEntry("hook", "2")),
		"AppendOutbox, nothing": s.AppendOutbox(ctx),
		"ClaimOutbox":           func() error { _, err := s.ClaimOutbox(ctx, oClaim("hook", t0.Add(time.Hour))); return err }(),
		"AckOutbox":             s.AckOutbox(ctx, b),
		"RetryOutbox":           s.RetryOutbox(ctx, b, t0, "x"),
		"Outboxes":              func() error { _, err := s.Outboxes(ctx); return err }(),
	} {
		if !errors.Is(err, queue.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// TestOutboxCorrupt: a damaged item or head record gives an error that
// matches queue.ErrCorrupt (a damaged record, not ErrCorrupt, a damaged
// file) from the calls that read it, never a panic; Open still works, and
// the other outboxes answer.
func TestOutboxCorrupt(t *testing.T) {
	ctx := context.Background()
	for _, key := range [][]byte{outboxKey(1), outboxHeadKey} {
		t.Run(string(key), func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "q.db"))
			if err := s.AppendOutbox(ctx, oEntry("bad", "1"), oEntry("good", "2")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ClaimOutbox(ctx, oClaim("bad", t0)); err != nil {
				t.Fatal(err)
			}
			if err := s.db.Update(func(btx *bolt.Tx) error {
				b := btx.Bucket(bOutbox).Bucket([]byte("bad"))
				v := append([]byte(nil), b.Get(key)...)
				v[len(v)/2] ^= 1
				return b.Put(key, v)
			}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s = open(t, s.Path())
			isCorrupt := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, queue.ErrCorrupt) || errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: %v, want an error that matches queue.ErrCorrupt only", what, err)
				}
			}
			_, err := s.ClaimOutbox(ctx, oClaim("bad", t0.Add(time.Hour)))
			isCorrupt("ClaimOutbox", err)
			_, err = s.Outboxes(ctx)
			isCorrupt("Outboxes", err)
			if b, err := s.ClaimOutbox(ctx, oClaim("good", t0)); err != nil || b == nil {
				t.Fatalf("ClaimOutbox of the other endpoint: %v, %v", b, err)
			}
		})
	}
}

// FuzzDecodeOutbox feeds arbitrary values to the outbox decoders, as a
// damaged file would: they must give an error that matches
// queue.ErrCorrupt, never panic, and a record they accept must encode to
// the same bytes.
func FuzzDecodeOutbox(f *testing.F) {
	h := outboxHead{next: 7, pending: 3, attempts: 2, due: t0, lastError: "503", owner: "o", token: "t", until: t0.Add(time.Minute)}
	f.Add(encodeOutboxHead("ep", &h), int64(0))
	f.Add(encodeOutboxHead("ep", &outboxHead{next: 1}), int64(0))
	f.Add(encodeOutboxItem("ep", 3, t0, []byte("data")), int64(3))
	f.Add(encodeOutboxItem("ep", 1, t0, nil), int64(1))
	f.Add([]byte{}, int64(1))
	f.Add(make([]byte, 40), int64(0))
	f.Fuzz(func(t *testing.T, v []byte, seq int64) {
		if seq == 0 {
			h, err := decodeOutboxHead("ep", v)
			if err != nil {
				if !errors.Is(err, queue.ErrCorrupt) {
					t.Fatalf("decoding a head record: %v, which does not match queue.ErrCorrupt", err)
				}
				return
			}
			if w := encodeOutboxHead("ep", &h); string(w) != string(v) {
				t.Fatalf("an accepted head record encodes to other bytes:\n%x\n%x", v, w)
			}
			return
		}
		it, err := decodeOutboxItem("ep", outboxKey(seq), v)
		if err != nil {
			if !errors.Is(err, queue.ErrCorrupt) {
				t.Fatalf("decoding an item: %v, which does not match queue.ErrCorrupt", err)
			}
			return
		}
		if w := encodeOutboxItem("ep", it.Seq, it.Time, it.Data); string(w) != string(v) {
			t.Fatalf("an accepted item encodes to other bytes:\n%x\n%x", v, w)
		}
	})
}

// BenchmarkOutboxAppendClaimAck measures an item's whole life in the
// durable store, one endpoint for each of the parallel senders: append,
// claim, ack, three commits shared with the other senders'.
func BenchmarkOutboxAppendClaimAck(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "q.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	data := benchMsg[:512]
	var senders atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ep := "https://hooks.example/" + strconv.FormatInt(senders.Add(1), 10)
		for pb.Next() {
			if err := s.AppendOutbox(ctx, queue.OutboxEntry{Endpoint: ep, Time: t0, Data: data}); err != nil {
				b.Error(err)
				return
			}
			bt, err := s.ClaimOutbox(ctx, oClaim(ep, t0))
			if err == nil && bt == nil {
				err = errors.New("ClaimOutbox: nothing")
			}
			if err == nil {
				err = s.AckOutbox(ctx, bt)
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
