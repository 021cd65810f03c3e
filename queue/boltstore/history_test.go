package boltstore

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/queuetest"
	bolt "go.etcd.io/bbolt"
)

func TestHistory(t *testing.T) {
	queuetest.TestHistory(t, func(t *testing.T) queue.HistoryStore {
		return open(t, filepath.Join(t.TempDir(), "q.db"))
	}, queuetest.HistoryOptions{
		Reopen: func(t *testing.T, old queue.HistoryStore) queue.HistoryStore {
			s := old.(*Store)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, s.Path())
		},
	})
}

func TestHistoryBoltBatch(t *testing.T) {
	queuetest.TestHistory(t, func(t *testing.T) queue.HistoryStore {
		return openWith(t, filepath.Join(t.TempDir(), "q.db"), Options{NoSync: true, useBoltBatch: true})
	})
}

// histRec returns a record with one entry for each of addrs.
func histRec(id string, updated time.Time, addrs ...string) queue.Record {
	r := queue.Record{ID: id, Subject: "s " + id, Created: t0, Updated: updated}
	for _, a := range addrs {
		r.Recipients = append(r.Recipients, queue.RecipientRecord{Addr: a, Status: "delivered", Time: t0})
	}
	return r
}

// TestHistoryBesideJobs: the history shares the file with the queue and
// the suppression list, and all survive a reopening with the file's
// checks.
func TestHistoryBesideJobs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "q.db")
	s := open(t, path)
	if err := s.Put(ctx, newJob("j1", "x.example")); err != nil {
		t.Fatal(err)
	}
	if err := s.Suppress(ctx, queue.Suppression{Address: "a@x.example", Reason: queue.Manual, Created: t0}); err != nil {
		t.Fatal(err)
	}
	if err := s.Keep(ctx, histRec("j1", t0, "a@x.example")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, path)
	if _, err := s.Get(ctx, "j1"); err != nil {
		t.Fatalf("Get after reopening: %v", err)
	}
	if r, err := s.Record(ctx, "j1"); err != nil || r.Subject != "s j1" {
		t.Fatalf("Record after reopening: %+v, %v", r, err)
	}
}

// TestHistoryNoBucket: a file that never kept a record answers every
// call but Keep without creating the buckets.
func TestHistoryNoBucket(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	if _, err := s.Record(ctx, "x"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Record: %v", err)
	}
	for _, f := range []queue.RecordFilter{{}, {Recipient: "a@x.example"}, {Before: "x"}} {
		if got, next, err := s.Records(ctx, f); err != nil || len(got) != 0 || next != "" {
			t.Fatalf("Records(%+v): %v, %q, %v", f, got, next, err)
		}
	}
	if err := s.Note(ctx, "x", "a@x.example", queue.Note{Type: "opened"}); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Note: %v", err)
	}
	if n, err := s.Expire(ctx, t0, 10); n != 0 || err != nil {
		t.Fatalf("Expire: %d, %v", n, err)
	}
	if got, err := s.Forget(ctx, "a@x.example"); len(got) != 0 || err != nil {
		t.Fatalf("Forget: %v, %v", got, err)
	}
	s.db.View(func(btx *bolt.Tx) error {
		for _, name := range [][]byte{bHistory, bHistRcpt, bHistUpdated} {
			if btx.Bucket(name) != nil {
				t.Errorf("the bucket %s was created by calls other than Keep", name)
			}
		}
		return nil
	})
}

// TestHistoryTooLong: an ID or address that would make an index key
// longer than bbolt allows is refused with queue.ErrInvalid, and nothing
// is stored.
func TestHistoryTooLong(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "q.db"))
	long := strings.Repeat("x", bolt.MaxKeySize)
	for _, r := range []queue.Record{
		histRec(long, t0, "a@x.example"),
		histRec("id", t0, long+"@x.example"),
		histRec(long[:bolt.MaxKeySize/2], t0, long[:bolt.MaxKeySize/2]),
	} {
		if err := s.Keep(ctx, histRec("good", t0, "g@x.example"), r); !errors.Is(err, queue.ErrInvalid) {
			t.Fatalf("Keep of a record with an ID of %d bytes and an address of %d: %v, want ErrInvalid",
				len(r.ID), len(r.Recipients[0].Addr), err)
		}
	}
	if _, err := s.Record(ctx, "good"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Record of a record refused with others: %v", err)
	}
}

// damageRecord replaces the stored value of record id with fn's.
func damageRecord(t *testing.T, s *Store, id string, fn func(v []byte) []byte) {
	t.Helper()
	err := s.db.Update(func(btx *bolt.Tx) error {
		b := btx.Bucket(bHistory)
		return b.Put([]byte(id), fn(append([]byte(nil), b.Get([]byte(id))...)))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// isCorruptRecord fails the test unless err is a *queue.CorruptError for
// id: a damaged record, not a damaged file.
func isCorruptRecord(t *testing.T, what string, err error, id string) {
	t.Helper()
	var ce *queue.CorruptError
	if !errors.As(err, &ce) || ce.ID != id || !errors.Is(err, queue.ErrCorrupt) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s: %v, want a *queue.CorruptError for %q", what, err, id)
	}
}

// TestHistoryCorrupt: a damaged record is reported by Record, Records
// and Note as a *queue.CorruptError naming it, never a panic and never
// passed over in silence; a page that starts before it goes on; Keep
// replaces it, Expire and Forget remove it, and the other records still
// answer.
func TestHistoryCorrupt(t *testing.T) {
	ctx := context.Background()
	good1, good3 := histRec("r1", t0, "ann@x.example"), histRec("r3", t0.Add(3*time.Hour), "ann@x.example")
	bad := histRec("r2", t0.Add(time.Hour), "ann@x.example", "bob@x.example")
	damage := map[string]func(v []byte) []byte{
		"flipped byte":  func(v []byte) []byte { v[3] ^= 1; return v },
		"truncated":     func(v []byte) []byte { return v[:len(v)-9] },
		"empty":         func([]byte) []byte { return []byte{} },
		"newer version": func(v []byte) []byte { return resum([]byte("r2"), v, func(w []byte) { w[0] = 2 }) },
		"trailing byte": func(v []byte) []byte { return appendSum([]byte("r2"), append(v[:len(v)-4:len(v)-4], 0)) },
		"moved":         func([]byte) []byte { r := histRec("r9", t0, "ann@x.example"); return encodeRecord(&r) },
	}
	for name, fn := range damage {
		t.Run(name, func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "q.db"))
			if err := s.Keep(ctx, good1, bad, good3); err != nil {
				t.Fatal(err)
			}
			damageRecord(t, s, "r2", fn)
			_, err := s.Record(ctx, "r2")
			isCorruptRecord(t, "Record", err, "r2")
			_, _, err = s.Records(ctx, queue.RecordFilter{})
			isCorruptRecord(t, "Records", err, "r2")
			_, _, err = s.Records(ctx, queue.RecordFilter{Recipient: "bob@x.example"})
			isCorruptRecord(t, "Records of bob@", err, "r2")
			isCorruptRecord(t, "Note", s.Note(ctx, "r2", "ann@x.example", queue.Note{Type: "opened"}), "r2")
			if got, _, err := s.Records(ctx, queue.RecordFilter{Recipient: "ann@x.example", Before: "r2"}); err != nil || len(got) != 1 || got[0].ID != "r1" {
				t.Fatalf("Records of ann@ before the damaged record: %v, %v", got, err)
			}
			if got, _, err := s.Records(ctx, queue.RecordFilter{Limit: 1}); err != nil || len(got) != 1 || got[0].ID != "r3" {
				t.Fatalf("a page of the newest record: %v, %v", got, err)
			}

			// Keep replaces the damaged record.
			if err := s.Keep(ctx, histRec("r2", t0.Add(2*time.Hour), "carl@x.example")); err != nil {
				t.Fatal(err)
			}
			r, err := s.Record(ctx, "r2")
			if err != nil || len(r.Recipients) != 1 || r.Recipients[0].Addr != "carl@x.example" {
				t.Fatalf("Record after Keep replaced the damaged record: %+v, %v", r, err)
			}
			got, _, err := s.Records(ctx, queue.RecordFilter{Recipient: "bob@x.example"})
			if err != nil || len(got) != 0 {
				t.Fatalf("Records of bob@ after the replacement (a stale index key): %v, %v", got, err)
			}

			// Expire removes a damaged record when its key comes up.
			damageRecord(t, s, "r2", fn)
			if n, err := s.Expire(ctx, t0.Add(150*time.Minute), 10); n != 2 || err != nil {
				t.Fatalf("Expire over a damaged record: %d, %v; want 2 (r1 and the damaged r2)", n, err)
			}
			if _, err := s.Record(ctx, "r2"); !errors.Is(err, queue.ErrNotFound) {
				t.Fatalf("Record after Expire removed the damaged record: %v", err)
			}

			// Forget removes a damaged record of the address whole.
			if err := s.Keep(ctx, histRec("r4", t0.Add(4*time.Hour), "ann@x.example", "dave@x.example")); err != nil {
				t.Fatal(err)
			}
			damageRecord(t, s, "r4", fn)
			erased, err := s.Forget(ctx, "ann@x.example")
			if err != nil || len(erased) != 1 || erased[0].ID != "r3" {
				t.Fatalf("Forget over a damaged record: %v, %v; want r3 only", erased, err)
			}
			if _, err := s.Record(ctx, "r4"); !errors.Is(err, queue.ErrNotFound) {
				t.Fatalf("Record of the damaged record Forget removed: %v", err)
			}
			if got, _, err := s.Records(ctx, queue.RecordFilter{}); err != nil || len(got) != 0 {
				t.Fatalf("Records at the end: %v, %v; want none", got, err)
			}

			// The index keys the damaged records left are passed over,
			// and removed by Expire and Forget.
			if got, _, err := s.Records(ctx, queue.RecordFilter{Recipient: "dave@x.example"}); err != nil || len(got) != 0 {
				t.Fatalf("Records of dave@, whose record was removed damaged: %v, %v", got, err)
			}
			if n, err := s.Expire(ctx, t0.Add(100*time.Hour), 10); n != 0 || err != nil {
				t.Fatalf("Expire at the end: %d, %v; want 0", n, err)
			}
			if got, err := s.Forget(ctx, "dave@x.example"); err != nil || len(got) != 0 {
				t.Fatalf("Forget of dave@: %v, %v", got, err)
			}
			s.db.View(func(btx *bolt.Tx) error {
				for _, name := range [][]byte{bHistory, bHistUpdated} {
					if n := btx.Bucket(name).Stats().KeyN; n != 0 {
						t.Errorf("%d keys left in %s", n, name)
					}
				}
				// Those of addresses not forgotten stay, harmless.
				var left []string
				btx.Bucket(bHistRcpt).ForEach(func(k, _ []byte) error { left = append(left, string(k)); return nil })
				if want := []string{"bob@x.example\x00r2", "carl@x.example\x00r2"}; !slices.Equal(left, want) {
					t.Errorf("recipient index keys left: %q, want %q", left, want)
				}
				return nil
			})
		})
	}
}

// FuzzDecodeRecord feeds arbitrary values to the history record decoder,
// most of them with a valid checksum so that the fields are read: it
// must return a record or a *queue.CorruptError naming it, never panic,
// and a record it accepts must encode and decode to the same record.
func FuzzDecodeRecord(f *testing.F) {
	full := queue.Record{ID: "id1", MessageID: "m@x", From: "f@x", Subject: "s", Campaign: "c", List: "l",
		Metadata: map[string]string{"a": "1", "b": ""}, Created: time.Unix(1e9, 5), Updated: time.Unix(2e9, 0),
		Recipients: []queue.RecipientRecord{
			{Addr: "a@x", Status: "bounced", Code: 550, Enhanced: "5.1.1", Category: "bad-mailbox", Reply: "no",
				MX: "mx", Source: "192.0.2.1", TLSVersion: "TLS 1.3", TLSVerified: true, TLSPolicy: "dane",
				Time: time.Unix(1e9, 999), Attempts: 3, Notes: []queue.Note{
					{Type: "opened", Time: time.Unix(1e9+5, 0), Machine: true, UserAgent: "ua", Client: "c"},
					{Type: "clicked", Detail: "https://x/"},
				}},
			{Addr: "b@x"},
		}}
	bare := queue.Record{ID: "id1"}
	body := func(r *queue.Record) []byte { v := encodeRecord(r); return v[:len(v)-4] }
	f.Add(body(&full), true)
	f.Add(body(&bare), true)
	f.Add(encodeRecord(&full), false)
	f.Add([]byte{}, false)
	f.Add([]byte{1}, true)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, true) // a count too large
	f.Fuzz(func(t *testing.T, v []byte, sum bool) {
		if sum {
			v = appendSum([]byte("id1"), v)
		}
		r, err := decodeRecord("id1", v)
		if err != nil {
			var ce *queue.CorruptError
			if !errors.As(err, &ce) || ce.ID != "id1" || !errors.Is(err, queue.ErrCorrupt) || errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error %v is not a CorruptError for id1", err)
			}
			return
		}
		w := encodeRecord(&r)
		r2, err := decodeRecord("id1", w)
		if err != nil {
			t.Fatalf("re-decoding an accepted record: %v", err)
		}
		if w2 := encodeRecord(&r2); string(w) != string(w2) {
			t.Fatalf("round trip changed the record: %+v → %+v", r, r2)
		}
	})
}
