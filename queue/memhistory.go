package queue

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// memHistory is MemoryStore's history: the records by ID, and an index of
// the records that hold an entry for each folded address.
type memHistory struct {
	recs map[string]*Record
	rcpt map[string]map[string]struct{} // FoldAddr(addr) → IDs
}

var _ HistoryStore = (*MemoryStore)(nil)

// Keep implements HistoryStore. Records are copied in, times to the
// nanosecond without their monotonic clock reading. Like the jobs, they
// are lost when the process exits.
func (s *MemoryStore) Keep(ctx context.Context, recs ...Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range recs {
		if err := CheckRecord(&recs[i]); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	if s.hist == nil {
		s.hist = &memHistory{recs: make(map[string]*Record), rcpt: make(map[string]map[string]struct{})}
	}
	h := s.hist
	for i := range recs {
		merged := MergeRecord(h.recs[recs[i].ID], &recs[i])
		r := cloneRecord(&merged)
		h.recs[r.ID] = r
		// A merge never drops an entry, so the index only grows here.
		for _, o := range r.Recipients {
			a := FoldAddr(o.Addr)
			ids := h.rcpt[a]
			if ids == nil {
				ids = make(map[string]struct{})
				h.rcpt[a] = ids
			}
			ids[r.ID] = struct{}{}
		}
	}
	return nil
}

// Record implements HistoryStore.
func (s *MemoryStore) Record(ctx context.Context, id string) (*Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	r := s.histRecord(id)
	if r == nil {
		return nil, fmt.Errorf("queue: history record %q: %w", id, ErrNotFound)
	}
	return cloneRecord(r), nil
}

// histRecord returns the stored record with id, or nil.
func (s *MemoryStore) histRecord(id string) *Record {
	if s.hist == nil {
		return nil
	}
	return s.hist.recs[id]
}

// Records implements HistoryStore. With f.Recipient it looks at that
// address's records only; without, at every record, so a page costs time
// in proportion to the whole history: this store is for tests and small
// histories.
func (s *MemoryStore) Records(ctx context.Context, f RecordFilter) ([]Record, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if f.Limit < 0 {
		return nil, "", fmt.Errorf("%w: history page of %d records", ErrInvalid, f.Limit)
	}
	limit := cmp.Or(f.Limit, DefaultRecordLimit)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, "", err
	}
	if s.hist == nil {
		return nil, "", nil
	}
	var ids []string
	addr := FoldAddr(f.Recipient)
	if f.Recipient != "" {
		ids = slices.Collect(maps.Keys(s.hist.rcpt[addr]))
	} else {
		ids = slices.Collect(maps.Keys(s.hist.recs))
	}
	slices.SortFunc(ids, func(a, b string) int { return strings.Compare(b, a) })
	var out []Record
	next := ""
	for _, id := range ids {
		if f.Before != "" && id >= f.Before {
			continue
		}
		r := s.hist.recs[id]
		if !f.Match(r) {
			continue
		}
		if len(out) == limit {
			next = out[len(out)-1].ID
			break
		}
		c := cloneRecord(r)
		if f.Recipient != "" {
			c.Recipients = slices.DeleteFunc(c.Recipients, func(o RecipientRecord) bool { return FoldAddr(o.Addr) != addr })
		}
		out = append(out, *c)
	}
	return out, next, nil
}

// Note implements HistoryStore.
func (s *MemoryStore) Note(ctx context.Context, id, addr string, n Note) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkNote(&n); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	r := s.histRecord(id)
	if r == nil {
		return fmt.Errorf("queue: history record %q: %w", id, ErrNotFound)
	}
	a := FoldAddr(addr)
	for i := range r.Recipients {
		if o := &r.Recipients[i]; FoldAddr(o.Addr) == a {
			n.Time = n.Time.Round(0)
			o.Notes = append(o.Notes, n)
			return nil
		}
	}
	return fmt.Errorf("queue: history record %q has no entry for %q: %w", id, addr, ErrNotFound)
}

// checkNote validates a note as CheckRecord validates the notes of a
// record.
func checkNote(n *Note) error {
	return CheckRecord(&Record{ID: "note", Recipients: []RecipientRecord{{Addr: "note", Notes: []Note{*n}}}})
}

// Expire implements HistoryStore. It looks at every record.
func (s *MemoryStore) Expire(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, fmt.Errorf("%w: expiring at most %d history records", ErrInvalid, limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if s.hist == nil {
		return 0, nil
	}
	var old []*Record
	for _, r := range s.hist.recs {
		if r.Updated.Before(cutoff) {
			old = append(old, r)
		}
	}
	slices.SortFunc(old, func(a, b *Record) int {
		return cmp.Or(a.Updated.Compare(b.Updated), strings.Compare(a.ID, b.ID))
	})
	old = old[:min(len(old), limit)]
	for _, r := range old {
		s.hist.remove(r)
	}
	return len(old), nil
}

// remove removes r and its index entries.
func (h *memHistory) remove(r *Record) {
	delete(h.recs, r.ID)
	for _, o := range r.Recipients {
		a := FoldAddr(o.Addr)
		delete(h.rcpt[a], r.ID)
		if len(h.rcpt[a]) == 0 {
			delete(h.rcpt, a)
		}
	}
}

// Forget implements HistoryStore. It returns the records newest first.
func (s *MemoryStore) Forget(ctx context.Context, addr string) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if s.hist == nil {
		return nil, nil
	}
	a := FoldAddr(addr)
	ids := slices.Collect(maps.Keys(s.hist.rcpt[a]))
	slices.SortFunc(ids, func(x, y string) int { return strings.Compare(y, x) })
	var out []Record
	for _, id := range ids {
		r := s.hist.recs[id]
		c := cloneRecord(r)
		c.Recipients = slices.DeleteFunc(c.Recipients, func(o RecipientRecord) bool { return FoldAddr(o.Addr) != a })
		out = append(out, *c)
		r.Recipients = slices.DeleteFunc(r.Recipients, func(o RecipientRecord) bool { return FoldAddr(o.Addr) == a })
		if len(r.Recipients) == 0 {
			delete(s.hist.recs, id)
		}
	}
	delete(s.hist.rcpt, a)
	return out, nil
}

// cloneRecord returns a copy of r that shares no slice or map with it,
// its times without their monotonic clock reading.
func cloneRecord(r *Record) *Record {
	c := *r
	c.Metadata = maps.Clone(r.Metadata)
	c.Created, c.Updated = r.Created.Round(0), r.Updated.Round(0)
	c.Recipients = slices.Clone(r.Recipients)
	for i := range c.Recipients {
		o := &c.Recipients[i]
		o.Time = o.Time.Round(0)
		o.Notes = slices.Clone(o.Notes)
		for j := range o.Notes {
			o.Notes[j].Time = o.Notes[j].Time.Round(0)
		}
	}
	return &c
}
