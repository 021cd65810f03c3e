package queue

import "fmt"

// DefaultSuppressionLimit is the page size of SuppressionStore.Suppressions
// when SuppressionFilter.Limit is 0.
const DefaultSuppressionLimit = 100

// CheckSuppressionFilter validates a filter as Suppressions must: a
// negative Limit, or a Reason set to an unknown value, gives ErrInvalid.
func CheckSuppressionFilter(f *SuppressionFilter) error {
	if f.Limit < 0 {
		return fmt.Errorf("%w: suppression filter with limit %d", ErrInvalid, f.Limit)
	}
	if f.Reason != 0 && !f.Reason.Valid() {
		return fmt.Errorf("%w: suppression filter with reason %d", ErrInvalid, int(f.Reason))
	}
	return nil
}

// Match reports whether s passes the filters of f: Address, Scope or
// AllMail, and Reason. The cursor and the limit are left to the caller.
func (f *SuppressionFilter) Match(s *Suppression) bool {
	switch {
	case f.Address != "" && s.Address != f.Address:
		return false
	case f.AllMail && s.Scope != "":
		return false
	case !f.AllMail && f.Scope != "" && s.Scope != f.Scope:
		return false
	case f.Reason != 0 && s.Reason != f.Reason:
		return false
	}
	return true
}

// After reports whether s comes after the cursor of f in the listing
// order, (Address, Scope) compared byte by byte.
func (f *SuppressionFilter) After(s *Suppression) bool {
	if s.Address != f.AfterAddress {
		return s.Address > f.AfterAddress
	}
	return s.Scope > f.AfterScope
}
