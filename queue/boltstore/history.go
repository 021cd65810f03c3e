package boltstore

import (
	"time"

	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/mxrelay/mxrelay/queue"
	bolt "go.etcd.io/bbolt"
)

var _ queue.HistoryStore = (*Store)(nil)

// histFill is the fill percent of the record and Updated buckets, whose
// keys mostly arrive in order (IDs and times grow), so that their pages
// are filled rather than split in half.
const histFill = 0.9

// Keep implements queue.HistoryStore. The records are merged and written
// in one transaction (shared with other writers, as a Put is) and are
// durable on return. An ID and address so long that an index key would
// pass bbolt's limit gives queue.ErrInvalid. A stored record that cannot
// be decoded is replaced by the merge of rec into nothing, and the
// replacement logged.
func (s *Store) Keep(ctx context.Context, recs ...queue.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range recs {
		r := &recs[i]
		if err := queue.CheckRecord(r); err != nil {
			return err
		}
		if len(r.ID)+histTimeLen > bolt.MaxKeySize {
			return fmt.Errorf("%w: history record ID of %d bytes, at most %d", queue.ErrInvalid, len(r.ID), bolt.MaxKeySize-histTimeLen)
		}
		for _, o := range r.Recipients {
			if len(o.Addr)+1+len(r.ID) > bolt.MaxKeySize {
				return fmt.Errorf("%w: history record %.40q…: address and ID of %d bytes, at most %d",
					queue.ErrInvalid, r.ID, len(o.Addr)+len(r.ID), bolt.MaxKeySize-1)
			}
		}
	}
	if len(recs) == 0 {
		return nil
	}
	return s.update(ctx, func(t tx) error {
		var hb [3]*bolt.Bucket
		for i, name := range [][]byte{bHistory, bHistRcpt, bHistUpdated} {
			b, err := t.CreateBucketIfNotExists(name)
			if err != nil {
				return fmt.Errorf("boltstore: history bucket %s: %w", name, err)
			}
			hb[i] = b
		}
		hb[0].FillPercent, hb[2].FillPercent = histFill, histFill
		return s.keep(hb[0], hb[1], hb[2], recs)
	})
}

// keep merges recs into the buckets: first every merge, in order, then
// the writes, each bucket's in key order, so that a large call fills
// pages one after another instead of inserting into the middle of a node
// over and over.
func (s *Store) keep(records, rcpt, updated *bolt.Bucket, recs []queue.Record) error {
	type kept struct {
		rec    queue.Record
		oldKey []byte // its key in the Updated index before this call; nil: none
	}
	merged := make(map[string]*kept, len(recs))
	ids := make([]string, 0, len(recs))
	var rcptKeys [][]byte
	for i := range recs {
		rec := &recs[i]
		k := merged[rec.ID]
		if k == nil {
			k = &kept{}
			var old *queue.Record
			if v := records.Get([]byte(rec.ID)); v != nil {
				r, err := decodeRecord(rec.ID, v)
				if err != nil {
					s.log(slog.LevelWarn, "boltstore: replacing a damaged history record", "id", rec.ID, "err", err)
				} else {
					old, k.oldKey = &r, updatedKey(r.Updated, r.ID)
				}
			}
			k.rec = queue.MergeRecord(old, rec)
			merged[rec.ID] = k
			ids = append(ids, rec.ID)
		} else {
			k.rec = queue.MergeRecord(&k.rec, rec)
		}
		// A merge never drops an entry: only rec's may be new to the index.
		for _, o := range rec.Recipients {
			rcptKeys = append(rcptKeys, rcptKey(queue.FoldAddr(o.Addr), rec.ID))
		}
	}
	slices.Sort(ids)
	var drop, add [][]byte
	for _, id := range ids {
		k := merged[id]
		if err := records.Put([]byte(id), encodeRecord(&k.rec)); err != nil {
			return err
		}
		uk := updatedKey(k.rec.Updated, id)
		if k.oldKey != nil && !bytes.Equal(k.oldKey, uk) {
			drop = append(drop, k.oldKey)
		}
		add = append(add, uk)
	}
	for _, b := range [][][]byte{drop, add, rcptKeys} {
		slices.SortFunc(b, bytes.Compare)
	}
	for _, k := range drop {
		if err := updated.Delete(k); err != nil {
			return err
		}
	}
	for _, k := range add {
		if err := updated.Put(k, nil); err != nil {
			return err
		}
	}
	for i, k := range rcptKeys {
		if i > 0 && bytes.Equal(k, rcptKeys[i-1]) {
			continue
		}
		if err := rcpt.Put(k, nil); err != nil {
			return err
		}
	}
	return nil
}

// histBuckets returns the history's buckets, or nils if the file has
// none yet. A name that is not a bucket, or one bucket without the
// others, means a damaged file.
func (s *Store) histBuckets(t tx) (recs, rcpt, updated *bolt.Bucket, err error) {
	var bs [3]*bolt.Bucket
	for i, name := range [][]byte{bHistory, bHistRcpt, bHistUpdated} {
		if bs[i] = t.Bucket(name); bs[i] == nil {
			if k, _ := t.Cursor().Seek(name); bytes.Equal(k, name) {
				return nil, nil, nil, corrupt(s.path, "%s is not a bucket", name)
			}
		}
	}
	switch {
	case bs[0] == nil && bs[1] == nil && bs[2] == nil:
		return nil, nil, nil, nil
	case bs[0] == nil || bs[1] == nil || bs[2] == nil:
		return nil, nil, nil, corrupt(s.path, "the history buckets are not all there")
	}
	return bs[0], bs[1], bs[2], nil
}

// notFound is the error of a missing record.
func notFound(id string) error {
	return fmt.Errorf("boltstore: history record %q: %w", id, queue.ErrNotFound)
}

// Record implements queue.HistoryStore. A record that cannot be decoded
// gives a *queue.CorruptError naming it.
func (s *Store) Record(ctx context.Context, id string) (*queue.Record, error) {
	var out *queue.Record
	err := s.view(ctx, func(t tx) error {
		recs, _, _, err := s.histBuckets(t)
		if err != nil {
			return err
		}
		var v []byte
		if recs != nil {
			v = recs.Get([]byte(id))
		}
		if v == nil {
			return notFound(id)
		}
		r, err := decodeRecord(id, v)
		if err != nil {
			return err
		}
		out = &r
		return nil
	})
	return out, err
}

// idSlack is how far a record's Created may lie from the time in its id
// for Records' time bounds: the id of a Send's record is made when the
// send starts, that of a job when it is enqueued.
const idSlack = time.Hour

// Records implements queue.HistoryStore: a walk backwards from the
// cursor, over the records or, with f.Recipient, over that address's
// keys of the index, so that a page costs time in proportion to the
// records it passes, not to the history. Campaign, Since and Until are
// applied on the way, so a page of a rare campaign may pass many records;
// for ids made by queue.NewID, Since and Until also bound the walk (to
// within idSlack of the time in the id), so that a day of a long history
// costs the day's records.
// A record that cannot be decoded gives a *queue.CorruptError naming it
// from the page it would be on; a page with Before set to its ID goes on
// past it.
func (s *Store) Records(ctx context.Context, f queue.RecordFilter) ([]queue.Record, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if f.Limit < 0 {
		return nil, "", fmt.Errorf("%w: history page of %d records", queue.ErrInvalid, f.Limit)
	}
	limit := cmp.Or(f.Limit, queue.DefaultRecordLimit)
	var (
		out  []queue.Record
		next string
	)
	err := s.view(ctx, func(t tx) error {
		out, next = nil, ""
		recs, rcpt, _, err := s.histBuckets(t)
		if recs == nil || err != nil {
			return err
		}
		// The walk goes over keys prefix+ID, the IDs before f.Before.
		c, prefix, addr := recs.Cursor(), []byte(nil), ""
		if f.Recipient != "" {
			addr = queue.FoldAddr(f.Recipient)
			if strings.IndexByte(addr, 0) >= 0 {
				return nil // never stored
			}
			c, prefix = rcpt.Cursor(), append([]byte(addr), 0)
		}
		// Without filters, every record is on the list.
		plain := addr == "" && f.Campaign == "" && f.Since.IsZero() && f.Until.IsZero()
		var k []byte
		if f.Before != "" {
			k = seekBefore(c, append(slices.Clip(prefix), f.Before...))
		} else if prefix != nil {
			k = seekBefore(c, append([]byte(addr), 1)) // past every key of the address
		} else {
			k, _ = c.Last()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
			id := string(k[len(prefix):])
			// Ids made by NewID carry their creation time, and the walk
			// goes from the newest: past Since (with a margin for a
			// record created a little before its id was made) no
			// record can match, and after Until none is decoded.
			if at, ok := queue.IDTime(id); ok {
				if !f.Since.IsZero() && at.Before(f.Since.Add(-idSlack)) {
					break
				}
				if !f.Until.IsZero() && at.After(f.Until.Add(idSlack)) {
					continue
				}
			}
			v := recs.Get(k[len(prefix):])
			if v == nil {
				continue // an index key left by a damaged record
			}
			if len(out) == limit && plain {
				next = out[len(out)-1].ID // a record is left
				break
			}
			r, err := decodeRecord(id, v)
			if err != nil && len(out) == limit {
				next = out[len(out)-1].ID // the next page reports it
				break
			}
			if err != nil {
				return err
			}
			if !f.Match(&r) {
				continue
			}
			if addr != "" {
				r.Recipients = slices.DeleteFunc(r.Recipients, func(o queue.RecipientRecord) bool {
					return queue.FoldAddr(o.Addr) != addr
				})
				if len(r.Recipients) == 0 {
					continue // an index key left by a damaged record
				}
			}
			if len(out) == limit {
				next = out[len(out)-1].ID
				break
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// seekBefore moves c to the last key before key and returns it (nil if
// there is none).
func seekBefore(c *bolt.Cursor, key []byte) []byte {
	k, _ := c.Seek(key)
	if k == nil {
		k, _ = c.Last()
		return k
	}
	k, _ = c.Prev()
	return k
}

// Note implements queue.HistoryStore, in a write transaction shared with
// other writers. A record that cannot be decoded gives a
// *queue.CorruptError naming it.
func (s *Store) Note(ctx context.Context, id, addr string, n queue.Note) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	check := queue.Record{ID: "note", Recipients: []queue.RecipientRecord{{Addr: "note", Notes: []queue.Note{n}}}}
	if err := queue.CheckRecord(&check); err != nil {
		return err
	}
	a := queue.FoldAddr(addr)
	// find returns the record and the index of addr's entry.
	find := func(t tx) (*bolt.Bucket, queue.Record, int, error) {
		recs, _, _, err := s.histBuckets(t)
		if err != nil {
			return nil, queue.Record{}, 0, err
		}
		var v []byte
		if recs != nil {
			v = recs.Get([]byte(id))
		}
		if v == nil {
			return nil, queue.Record{}, 0, notFound(id)
		}
		r, err := decodeRecord(id, v)
		if err != nil {
			return nil, queue.Record{}, 0, err
		}
		i := slices.IndexFunc(r.Recipients, func(o queue.RecipientRecord) bool { return queue.FoldAddr(o.Addr) == a })
		if i < 0 {
			return nil, queue.Record{}, 0, fmt.Errorf("boltstore: history record %q has no entry for %q: %w", id, addr, queue.ErrNotFound)
		}
		return recs, r, i, nil
	}
	// Events often name records that are gone: a read finds those without
	// failing the shared write, which would run its batch again.
	if err := s.view(ctx, func(t tx) error { _, _, _, err := find(t); return err }); err != nil {
		return err
	}
	return s.update(ctx, func(t tx) error {
		recs, r, i, err := find(t)
		if err != nil {
			return err
		}
		r.Recipients[i].Notes = append(r.Recipients[i].Notes, n)
		return recs.Put([]byte(id), encodeRecord(&r))
	})
}
