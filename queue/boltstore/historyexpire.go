package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// Expire implements queue.HistoryStore: a walk from the oldest key of the
// Updated index, in one write transaction. A record that cannot be
// decoded is removed whole when its key comes up, and logged; keys of the
// recipient index it leaves are passed over by Records and removed by
// Forget.
func (s *Store) Expire(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, fmt.Errorf("%w: expiring at most %d history records", queue.ErrInvalid, limit)
	}
	cut := appendIndexTime(nil, cutoff)
	removed := 0
	err := s.update(ctx, func(t tx) error {
		removed = 0
		recs, rcpt, updated, err := s.histBuckets(t)
		if recs == nil || err != nil {
			return err
		}
		type victim struct {
			key []byte        // in the Updated index
			rec *queue.Record // nil: damaged, or the key is stale
			raw bool          // the record is there, damaged
		}
		var vs []victim
		damaged := map[string]bool{} // of vs
		c := updated.Cursor()
		for k, _ := c.First(); k != nil && removed < limit; k, _ = c.Next() {
			if len(k) < histTimeLen {
				continue // no such key is written
			}
			if bytes.Compare(k[:histTimeLen], cut) >= 0 {
				break
			}
			vk := victim{key: bytes.Clone(k)}
			id := k[histTimeLen:]
			if v := recs.Get(id); v != nil {
				r, err := decodeRecord(string(id), v)
				switch {
				case err != nil && damaged[string(id)]:
					// A key left by an older version of it.
				case err != nil:
					s.log(slog.LevelWarn, "boltstore: expiring a damaged history record", "id", string(id), "err", err)
					damaged[string(id)] = true
					vk.raw = true
					removed++
				case bytes.Equal(updatedKey(r.Updated, r.ID), k):
					vk.rec = &r
					removed++
				}
			}
			vs = append(vs, vk)
		}
		for _, v := range vs {
			if err := updated.Delete(v.key); err != nil {
				return err
			}
			id := v.key[histTimeLen:]
			if v.raw {
				if err := recs.Delete(id); err != nil {
					return err
				}
			}
			if v.rec == nil {
				continue
			}
			for _, o := range v.rec.Recipients {
				if err := rcpt.Delete(rcptKey(queue.FoldAddr(o.Addr), v.rec.ID)); err != nil {
					return err
				}
			}
			if err := recs.Delete(id); err != nil {
				return err
			}
		}
		return nil
	})
	return removed, err
}

// Forget implements queue.HistoryStore, in one write transaction. It
// returns the records newest first. A record of the address that cannot
// be decoded is removed whole, since what it holds cannot be erased in
// part, and logged; it is not among the records returned.
func (s *Store) Forget(ctx context.Context, addr string) ([]queue.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a := queue.FoldAddr(addr)
	var out []queue.Record
	err := s.update(ctx, func(t tx) error {
		out = nil
		recs, rcpt, updated, err := s.histBuckets(t)
		if recs == nil || err != nil || strings.IndexByte(a, 0) >= 0 {
			return err
		}
		prefix := append([]byte(a), 0)
		var keys [][]byte
		c := rcpt.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for i := len(keys) - 1; i >= 0; i-- {
			if err := rcpt.Delete(keys[i]); err != nil {
				return err
			}
			id := keys[i][len(prefix):]
			v := recs.Get(id)
			if v == nil {
				continue
			}
			r, err := decodeRecord(string(id), v)
			if err != nil {
				s.log(slog.LevelWarn, "boltstore: removing a damaged history record of a forgotten address", "id", string(id), "err", err)
				if err := recs.Delete(id); err != nil {
					return err
				}
				continue
			}
			erased := r
			erased.Recipients = nil
			kept := r.Recipients[:0:0]
			for _, o := range r.Recipients {
				if queue.FoldAddr(o.Addr) == a {
					erased.Recipients = append(erased.Recipients, o)
				} else {
					kept = append(kept, o)
				}
			}
			if len(erased.Recipients) == 0 {
				continue // an index key left by a damaged record
			}
			out = append(out, erased)
			if len(kept) == 0 {
				if err := updated.Delete(updatedKey(r.Updated, r.ID)); err != nil {
					return err
				}
				if err := recs.Delete(id); err != nil {
					return err
				}
				continue
			}
			r.Recipients = kept
			if err := recs.Put(id, encodeRecord(&r)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
