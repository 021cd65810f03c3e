package queue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// suppressionKey identifies an entry of MemoryStore's suppression list.
type suppressionKey struct{ address, scope string }

var _ SuppressionStore = (*MemoryStore)(nil)

// Suppress implements SuppressionStore. Entries are kept as given: times
// to the nanosecond, without their monotonic clock reading. Like the jobs,
// they are lost when the process exits.
func (s *MemoryStore) Suppress(ctx context.Context, entries ...Suppression) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range entries {
		if err := CheckSuppression(&entries[i]); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	if s.sup == nil {
		s.sup = make(map[suppressionKey]Suppression)
	}
	for _, e := range entries {
		e.Created, e.Expires = e.Created.Round(0), e.Expires.Round(0)
		s.sup[suppressionKey{e.Address, e.Scope}] = e
	}
	return nil
}

// Unsuppress implements SuppressionStore.
func (s *MemoryStore) Unsuppress(ctx context.Context, address, scope string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if address == "" {
		return false, fmt.Errorf("%w: suppression without an address", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return false, err
	}
	k := suppressionKey{address, scope}
	_, ok := s.sup[k]
	delete(s.sup, k)
	return ok, nil
}

// Suppressed implements SuppressionStore.
func (s *MemoryStore) Suppressed(ctx context.Context, scope string, addresses []string, now time.Time) ([]Suppression, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var out []Suppression
	seen := make(map[string]bool, len(addresses))
	for _, a := range addresses {
		if seen[a] {
			continue
		}
		seen[a] = true
		if e, ok := s.sup[suppressionKey{a, ""}]; ok && e.Active(now) {
			out = append(out, e)
		}
		if scope == "" {
			continue
		}
		if e, ok := s.sup[suppressionKey{a, scope}]; ok && e.Active(now) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Suppressions implements SuppressionStore. It looks at every entry, so a
// page costs time in proportion to the whole list: this store is for tests
// and small lists.
func (s *MemoryStore) Suppressions(ctx context.Context, f SuppressionFilter) ([]Suppression, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := CheckSuppressionFilter(&f); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var out []Suppression
	for _, e := range s.sup {
		if f.After(&e) && f.Match(&e) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Suppression) int {
		if c := strings.Compare(a.Address, b.Address); c != 0 {
			return c
		}
		return strings.Compare(a.Scope, b.Scope)
	})
	limit := f.Limit
	if limit == 0 {
		limit = DefaultSuppressionLimit
	}
	if len(out) > limit {
		out = out[:limit:limit]
	}
	return out, nil
}
