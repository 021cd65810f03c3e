package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	bolt "go.etcd.io/bbolt"
)

var _ queue.SuppressionStore = (*Store)(nil)

// Suppress implements queue.SuppressionStore. The entries are written in
// one transaction (shared with other writers, as a Put is) and are durable
// on return. An address with a NUL byte, or a key (address and scope)
// longer than bbolt allows, gives queue.ErrInvalid. Times keep their
// nanoseconds.
func (s *Store) Suppress(ctx context.Context, entries ...queue.Suppression) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	type kv struct{ k, v []byte }
	recs := make([]kv, 0, len(entries))
	for i := range entries {
		e := &entries[i]
		if err := queue.CheckSuppression(e); err != nil {
			return err
		}
		if strings.IndexByte(e.Address, 0) >= 0 {
			return fmt.Errorf("%w: suppression of %q: NUL in the address", queue.ErrInvalid, e.Address)
		}
		k := suppressKey(nil, e.Address, e.Scope)
		if len(k) > bolt.MaxKeySize {
			return fmt.Errorf("%w: suppression of %.40q…: address and scope of %d bytes, at most %d",
				queue.ErrInvalid, e.Address, len(k)-1, bolt.MaxKeySize-1)
		}
		recs = append(recs, kv{k, encodeSuppression(k, e)})
	}
	if len(recs) == 0 {
		return nil
	}
	// In key order, a large batch is written page by page. Of two entries
	// with one key, the later one wins.
	slices.SortStableFunc(recs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	uniq := recs[:0]
	for i, r := range recs {
		if i+1 < len(recs) && bytes.Equal(recs[i+1].k, r.k) {
			continue
		}
		uniq = append(uniq, r)
	}
	return s.update(ctx, func(t tx) error {
		b, err := t.CreateBucketIfNotExists(bSuppress)
		if err != nil {
			return fmt.Errorf("boltstore: suppression bucket: %w", err)
		}
		for _, r := range uniq {
			if err := b.Put(r.k, r.v); err != nil {
				return err
			}
		}
		return nil
	})
}

// Unsuppress implements queue.SuppressionStore. It removes a damaged entry
// too, given the Address and Scope its *queue.CorruptSuppressionError
// names.
func (s *Store) Unsuppress(ctx context.Context, address, scope string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if address == "" {
		return false, fmt.Errorf("%w: suppression without an address", queue.ErrInvalid)
	}
	if strings.IndexByte(address, 0) >= 0 {
		return false, nil // never stored
	}
	k := suppressKey(nil, address, scope)
	var found bool
	err := s.update(ctx, func(t tx) error {
		found = false
		b, err := s.suppressBucket(t)
		if b == nil || err != nil {
			return err
		}
		if scope == "" && b.Get([]byte(address)) != nil {
			// A damaged key that lost its NUL, reported with this
			// address and scope "".
			found = true
			if err := b.Delete([]byte(address)); err != nil {
				return err
			}
		}
		if b.Get(k) == nil {
			return nil
		}
		found = true
		return b.Delete(k)
	})
	return found, err
}

// Suppressed implements queue.SuppressionStore: one read transaction, and
// one or two point lookups per distinct address. A damaged entry among
// them gives a *queue.CorruptSuppressionError.
func (s *Store) Suppressed(ctx context.Context, scope string, addresses []string, now time.Time) ([]queue.Suppression, error) {
	var out []queue.Suppression
	err := s.view(ctx, func(t tx) error {
		b, err := s.suppressBucket(t)
		if b == nil || err != nil {
			return err
		}
		var seen map[string]bool
		if len(addresses) > 1 {
			seen = make(map[string]bool, len(addresses))
		}
		var key []byte
		for _, a := range addresses {
			if a == "" || strings.IndexByte(a, 0) >= 0 || seen[a] {
				continue // never stored, or looked up already
			}
			if seen != nil {
				seen[a] = true
			}
			key = suppressKey(key[:0], a, "")
			if err := lookup(b, key, now, &out); err != nil {
				return err
			}
			if scope != "" {
				key = append(key, scope...)
				if err := lookup(b, key, now, &out); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lookup appends the entry under key to out if there is one and it is
// active at now.
func lookup(b *bolt.Bucket, key []byte, now time.Time, out *[]queue.Suppression) error {
	v := b.Get(key)
	if v == nil {
		return nil
	}
	e, err := decodeSuppression(key, v)
	if err != nil {
		return err
	}
	if e.Active(now) {
		*out = append(*out, e)
	}
	return nil
}

// Suppressions implements queue.SuppressionStore: a cursor walk in key
// order from the cursor of f. With f.Address set it visits that address's
// entries only; the Scope, AllMail and Reason filters are applied on the
// way, so a page of a rare scope or reason may walk much of the list. A
// damaged entry on the way gives a *queue.CorruptSuppressionError.
func (s *Store) Suppressions(ctx context.Context, f queue.SuppressionFilter) ([]queue.Suppression, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := queue.CheckSuppressionFilter(&f); err != nil {
		return nil, err
	}
	limit := f.Limit
	if limit == 0 {
		limit = queue.DefaultSuppressionLimit
	}
	if strings.IndexByte(f.Address, 0) >= 0 {
		return nil, s.view(ctx, func(tx) error { return nil }) // never stored
	}
	var out []queue.Suppression
	err := s.view(ctx, func(t tx) error {
		b, err := s.suppressBucket(t)
		if b == nil || err != nil {
			return err
		}
		var prefix []byte
		if f.Address != "" {
			prefix = suppressKey(nil, f.Address, "")
		}
		from, after := suppressSeek(f.AfterAddress, f.AfterScope)
		if bytes.Compare(from, prefix) < 0 {
			from, after = prefix, nil
		}
		c := b.Cursor()
		for k, v := c.Seek(from); k != nil && len(out) < limit; k, v = c.Next() {
			if prefix != nil && !bytes.HasPrefix(k, prefix) {
				break
			}
			if after != nil && bytes.Equal(k, after) {
				continue
			}
			if i := bytes.IndexByte(k, 0); i > 0 && !scopeMatch(&f, k[i+1:]) {
				continue
			}
			if v == nil {
				a, sc, _ := splitSuppressKey(k)
				return &queue.CorruptSuppressionError{Address: a, Scope: sc, Err: fmt.Errorf("a bucket, not an entry")}
			}
			e, err := decodeSuppression(k, v)
			if err != nil {
				return err
			}
			if f.Match(&e) {
				out = append(out, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// suppressSeek returns where a walk after the cursor (address, scope)
// starts, and the key to pass over if the walk lands on it (nil: none).
func suppressSeek(address, scope string) (from, after []byte) {
	if i := strings.IndexByte(address, 0); i >= 0 {
		// No stored address holds a NUL: those after this one are past
		// every address that starts with address[:i].
		return append([]byte(address[:i]), 1), nil
	}
	k := suppressKey(nil, address, scope)
	return k, k
}

// scopeMatch reports whether scope passes the Scope and AllMail filters
// of f.
func scopeMatch(f *queue.SuppressionFilter, scope []byte) bool {
	switch {
	case f.AllMail:
		return len(scope) == 0
	case f.Scope != "":
		return string(scope) == f.Scope
	}
	return true
}

// suppressBucket returns the suppression bucket, or nil if there is none
// yet. A key of that name that is not a bucket means a damaged file.
func (s *Store) suppressBucket(t tx) (*bolt.Bucket, error) {
	if b := t.Bucket(bSuppress); b != nil {
		return b, nil
	}
	if k, _ := t.Cursor().Seek(bSuppress); bytes.Equal(k, bSuppress) {
		return nil, corrupt(s.path, "%s is not a bucket", bSuppress)
	}
	return nil, nil
}
