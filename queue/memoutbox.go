package queue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// memOutbox is one endpoint's outbox in a MemoryStore.
type memOutbox struct {
	items     []OutboxItem
	next      int64 // Seq of the next item appended
	attempts  int
	due       time.Time
	lastError string
	owner     string
	token     string
	until     time.Time
}

var _ OutboxStore = (*MemoryStore)(nil)

// AppendOutbox implements OutboxStore. The items are copied in; like the jobs,
// they are lost when the process exits.
func (s *MemoryStore) AppendOutbox(ctx context.Context, entries ...OutboxEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range entries {
		if err := CheckOutboxEntry(&entries[i]); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	if s.outbox == nil {
		s.outbox = make(map[string]*memOutbox)
	}
	for _, e := range entries {
		o := s.outbox[e.Endpoint]
		if o == nil {
			o = &memOutbox{next: 1}
			s.outbox[e.Endpoint] = o
		}
		o.items = append(o.items, OutboxItem{Seq: o.next, Time: e.Time.Round(0), Data: slices.Clone(e.Data)})
		o.next++
	}
	return nil
}

// ClaimOutbox implements OutboxStore.
func (s *MemoryStore) ClaimOutbox(ctx context.Context, r OutboxClaim) (*OutboxBatch, error) {
	if r.Max < 1 || r.Lease <= 0 {
		return nil, fmt.Errorf("%w: outbox claim of %d items for %v", ErrInvalid, r.Max, r.Lease)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	o := s.outbox[r.Endpoint]
	if o == nil || len(o.items) == 0 || o.due.After(r.Now) || (o.token != "" && o.until.After(r.Now)) {
		return nil, nil
	}
	n, size := 0, 0
	for n < len(o.items) && n < r.Max {
		size += len(o.items[n].Data)
		if n > 0 && r.MaxBytes > 0 && size > r.MaxBytes {
			break
		}
		n++
	}
	s.seq++
	o.owner, o.token, o.until = r.Owner, fmt.Sprintf("o%d", s.seq), r.Now.Add(r.Lease)
	b := &OutboxBatch{Endpoint: r.Endpoint, Attempts: o.attempts, Token: o.token, Until: o.until}
	for _, it := range o.items[:n] {
		b.Items = append(b.Items, OutboxItem{Seq: it.Seq, Time: it.Time, Data: slices.Clone(it.Data)})
	}
	return b, nil
}

// lease returns b's outbox when b holds its current lease.
func (s *MemoryStore) lease(b *OutboxBatch) (*memOutbox, error) {
	o := s.outbox[b.Endpoint]
	if o == nil || o.token == "" || o.token != b.Token {
		return nil, ErrLeaseLost
	}
	return o, nil
}

// AckOutbox implements OutboxStore.
func (s *MemoryStore) AckOutbox(ctx context.Context, b *OutboxBatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	o, err := s.lease(b)
	if err != nil {
		return err
	}
	if len(b.Items) > 0 {
		last := b.Items[len(b.Items)-1].Seq
		o.items = slices.DeleteFunc(o.items, func(it OutboxItem) bool { return it.Seq <= last })
	}
	o.owner, o.token, o.until = "", "", time.Time{}
	o.attempts, o.lastError, o.due = 0, "", time.Time{}
	if len(o.items) == 0 {
		delete(s.outbox, b.Endpoint)
		s.outbox[b.Endpoint] = &memOutbox{next: o.next} // Seq keeps increasing
	}
	return nil
}

// RetryOutbox implements OutboxStore.
func (s *MemoryStore) RetryOutbox(ctx context.Context, b *OutboxBatch, next time.Time, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	o, err := s.lease(b)
	if err != nil {
		return err
	}
	o.owner, o.token, o.until = "", "", time.Time{}
	o.attempts++
	o.due, o.lastError = next.Round(0), reason
	return nil
}

// Outboxes implements OutboxStore.
func (s *MemoryStore) Outboxes(ctx context.Context) ([]OutboxState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var out []OutboxState
	for name, o := range s.outbox {
		if len(o.items) == 0 && o.attempts == 0 {
			continue
		}
		st := OutboxState{Endpoint: name, Pending: len(o.items), Attempts: o.attempts, NextAttempt: o.due, LastError: o.lastError}
		if len(o.items) > 0 {
			st.Oldest = o.items[0].Time
		}
		if o.token != "" {
			st.Owner = o.owner
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b OutboxState) int { return strings.Compare(a.Endpoint, b.Endpoint) })
	return out, nil
}
