package boltstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	bolt "go.etcd.io/bbolt"
)

var _ queue.OutboxStore = (*Store)(nil)

// AppendOutbox implements queue.OutboxStore. The entries are written in
// one transaction (shared with other writers, as a Put is) and are durable
// on return. Times are kept to the microsecond.
func (s *Store) AppendOutbox(ctx context.Context, entries ...queue.OutboxEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range entries {
		if err := queue.CheckOutboxEntry(&entries[i]); err != nil {
			return err
		}
	}
	if len(entries) == 0 {
		return s.view(ctx, func(tx) error { return nil }) // queue.ErrClosed once closed
	}
	return s.update(ctx, func(t tx) error {
		ob, err := t.CreateBucketIfNotExists(bOutbox)
		if err != nil {
			return fmt.Errorf("boltstore: outbox bucket: %w", err)
		}
		type outbox struct {
			b *bolt.Bucket
			h *outboxHead
		}
		outs := map[string]outbox{}
		var eps []string // in the order first appended to
		for i := range entries {
			e := &entries[i]
			o, ok := outs[e.Endpoint]
			if !ok {
				if o.b, o.h, err = outboxOf(ob, e.Endpoint); err != nil {
					return err
				}
				if o.b == nil {
					if o.b, err = ob.CreateBucket([]byte(e.Endpoint)); err != nil {
						return fmt.Errorf("boltstore: outbox %q: %w", e.Endpoint, err)
					}
					o.h = &outboxHead{next: 1}
				}
				o.b.FillPercent = histFill // keys arrive in order, as in the history's buckets
				outs[e.Endpoint] = o
				eps = append(eps, e.Endpoint)
			}
			seq := o.h.next
			val := encodeOutboxItem(e.Endpoint, seq, e.Time.Truncate(outboxTimeUnit), e.Data)
			if err := o.b.Put(outboxKey(seq), val); err != nil {
				return err
			}
			o.h.next++
			o.h.pending++
		}
		for _, ep := range eps {
			o := outs[ep]
			if err := o.b.Put(outboxHeadKey, encodeOutboxHead(ep, o.h)); err != nil {
				return err
			}
		}
		return nil
	})
}

// ClaimOutbox implements queue.OutboxStore. A claim that gets nothing (an
// empty, retried or leased outbox, as most of a sender's polls are) is
// answered by a read, without a commit. Tokens are random. A damaged
// record at the head of the outbox gives an error that matches
// queue.ErrCorrupt, and the outbox stays as it is.
func (s *Store) ClaimOutbox(ctx context.Context, r queue.OutboxClaim) (*queue.OutboxBatch, error) {
	if r.Max < 1 || r.Lease <= 0 {
		return nil, fmt.Errorf("%w: outbox claim of %d items for %v", queue.ErrInvalid, r.Max, r.Lease)
	}
	ready := false
	err := s.view(ctx, func(t tx) error {
		_, h, err := s.outbox(t, r.Endpoint)
		ready = h != nil && h.ready(r.Now)
		return err
	})
	if err != nil || !ready {
		return nil, err
	}
	token := rand.Text()
	until := r.Now.Add(r.Lease).Truncate(outboxTimeUnit)
	var b *queue.OutboxBatch
	err = s.update(ctx, func(t tx) error {
		b = nil
		eb, h, err := s.outbox(t, r.Endpoint)
		if h == nil || err != nil || !h.ready(r.Now) {
			return err // taken or emptied since the read
		}
		var items []queue.OutboxItem
		size := 0
		c := eb.Cursor()
		for k, v := c.First(); len(k) == outboxSeqLen && len(items) < r.Max; k, v = c.Next() {
			it, err := decodeOutboxItem(r.Endpoint, k, v)
			if err != nil {
				return err
			}
			size += len(it.Data)
			if len(items) > 0 && r.MaxBytes > 0 && size > r.MaxBytes {
				break
			}
			items = append(items, it)
		}
		if len(items) == 0 {
			return outboxCorrupt(r.Endpoint, "head record", fmt.Errorf("%d items counted, none stored", h.pending))
		}
		h.owner, h.token, h.until = r.Owner, token, until
		if err := eb.Put(outboxHeadKey, encodeOutboxHead(r.Endpoint, h)); err != nil {
			return err
		}
		b = &queue.OutboxBatch{Endpoint: r.Endpoint, Items: items, Attempts: h.attempts, Token: token, Until: until}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AckOutbox implements queue.OutboxStore.
func (s *Store) AckOutbox(ctx context.Context, b *queue.OutboxBatch) error {
	var last int64 // the last Seq to remove
	if n := len(b.Items); n > 0 {
		last = b.Items[n-1].Seq
	}
	return s.endOutboxLease(ctx, b, func(eb *bolt.Bucket, h *outboxHead) error {
		var done [][]byte
		c := eb.Cursor()
		for k, _ := c.First(); len(k) == outboxSeqLen && int64(binary.BigEndian.Uint64(k)) <= last; k, _ = c.Next() {
			done = append(done, bytes.Clone(k))
		}
		for _, k := range done {
			if err := eb.Delete(k); err != nil {
				return err
			}
		}
		h.pending -= len(done)
		h.attempts, h.due, h.lastError = 0, time.Time{}, ""
		return nil
	})
}

// RetryOutbox implements queue.OutboxStore.
func (s *Store) RetryOutbox(ctx context.Context, b *queue.OutboxBatch, next time.Time, reason string) error {
	return s.endOutboxLease(ctx, b, func(_ *bolt.Bucket, h *outboxHead) error {
		h.attempts++
		h.due, h.lastError = next.Truncate(outboxTimeUnit), reason
		return nil
	})
}

// endOutboxLease runs fn on the outbox of b and its head, if b holds its
// current lease, then ends the lease and writes the head, all in one
// shared write. A stale lease gives queue.ErrLeaseLost without failing
// the other writes of the commit: nothing is written.
func (s *Store) endOutboxLease(ctx context.Context, b *queue.OutboxBatch, fn func(eb *bolt.Bucket, h *outboxHead) error) error {
	lost := false
	err := s.update(ctx, func(t tx) error {
		eb, h, err := s.outbox(t, b.Endpoint)
		if err != nil {
			return err
		}
		if lost = h == nil || h.token == "" || h.token != b.Token; lost {
			return nil
		}
		if err := fn(eb, h); err != nil {
			return err
		}
		h.endLease()
		return eb.Put(outboxHeadKey, encodeOutboxHead(b.Endpoint, h))
	})
	if err == nil && lost {
		err = fmt.Errorf("%w: outbox %q", queue.ErrLeaseLost, b.Endpoint)
	}
	return err
}

// Outboxes implements queue.OutboxStore: a walk over every endpoint's
// head record and first item. The owner of a lease is listed until the
// lease is acked, retried or taken over, or the store is opened again. A
// damaged record gives an error that matches queue.ErrCorrupt.
func (s *Store) Outboxes(ctx context.Context) ([]queue.OutboxState, error) {
	var out []queue.OutboxState
	err := s.view(ctx, func(t tx) error {
		out = nil
		ob, err := s.outboxBucket(t)
		if ob == nil || err != nil {
			return err
		}
		c := ob.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			ep := string(k)
			eb, h, err := outboxOf(ob, ep)
			if err != nil {
				return err
			}
			if eb == nil {
				return corrupt(s.path, "%s: %q is not a bucket", bOutbox, k)
			}
			if h.pending == 0 && h.attempts == 0 {
				continue
			}
			st := queue.OutboxState{Endpoint: ep, Pending: h.pending, Attempts: h.attempts,
				NextAttempt: h.due, LastError: h.lastError}
			if h.token != "" {
				st.Owner = h.owner
			}
			if k, v := eb.Cursor().First(); len(k) == outboxSeqLen {
				it, err := decodeOutboxItem(ep, k, v)
				if err != nil {
					return err
				}
				st.Oldest = it.Time
			}
			out = append(out, st)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// outbox returns the bucket and head record of endpoint ep's outbox, or
// nils if it has none.
func (s *Store) outbox(t tx, ep string) (*bolt.Bucket, *outboxHead, error) {
	ob, err := s.outboxBucket(t)
	if err != nil {
		return nil, nil, err
	}
	return outboxOf(ob, ep)
}

// outboxOf returns the bucket and head record of endpoint ep in the
// outbox bucket ob (nil: none yet), or nils if ep has none.
func outboxOf(ob *bolt.Bucket, ep string) (*bolt.Bucket, *outboxHead, error) {
	if ob == nil {
		return nil, nil, nil
	}
	eb := ob.Bucket([]byte(ep))
	if eb == nil {
		return nil, nil, nil
	}
	h, err := decodeOutboxHead(ep, eb.Get(outboxHeadKey))
	if err != nil {
		return nil, nil, err
	}
	return eb, &h, nil
}

// outboxBucket returns the outbox bucket, or nil if there is none yet. A
// key of that name that is not a bucket means a damaged file.
func (s *Store) outboxBucket(t tx) (*bolt.Bucket, error) {
	if b := t.Bucket(bOutbox); b != nil {
		return b, nil
	}
	if k, _ := t.Cursor().Seek(bOutbox); bytes.Equal(k, bOutbox) {
		return nil, corrupt(s.path, "%s is not a bucket", bOutbox)
	}
	return nil, nil
}

// endOutboxLeases ends every outbox lease of a previous process, when the
// file is opened: no other process can hold one, so their endpoints are
// due at once (after a retry, at its next attempt), with their attempts
// kept, and the old tokens are stale. A damaged outbox is left for the
// calls that read it to report.
func (s *Store) endOutboxLeases(t tx) error {
	ob := t.Bucket(bOutbox)
	if ob == nil {
		return nil
	}
	type leased struct {
		ep string
		eb *bolt.Bucket
		h  outboxHead
	}
	var ls []leased
	c := ob.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil {
			continue // not a bucket
		}
		eb, h, err := outboxOf(ob, string(k))
		if err != nil || h == nil || h.token == "" {
			continue
		}
		ls = append(ls, leased{string(k), eb, *h})
	}
	for _, l := range ls {
		l.h.endLease()
		if err := l.eb.Put(outboxHeadKey, encodeOutboxHead(l.ep, &l.h)); err != nil {
			return err
		}
	}
	if len(ls) > 0 {
		s.log(slog.LevelInfo, "boltstore: ended outbox leases of a previous process", "endpoints", len(ls))
	}
	return nil
}
