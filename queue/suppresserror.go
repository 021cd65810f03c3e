package queue

import "fmt"

// CorruptSuppressionError reports a stored suppression entry that cannot
// be read back. It matches ErrCorrupt. A store returns it from Suppressed
// and Suppressions rather than skip the entry, so that mail is not sent to
// an address that may have opted out; Unsuppress removes the entry and
// Suppress replaces it.
type CorruptSuppressionError struct {
	Address string // the entry's address, as far as it could be read
	Scope   string // the entry's scope, as far as it could be read
	Err     error  // what decoding said
}

// Error names the entry and says what is wrong with it.
func (e *CorruptSuppressionError) Error() string {
	return fmt.Sprintf("queue: corrupt suppression record for %q in scope %q: %v", e.Address, e.Scope, e.Err)
}

// Unwrap returns the decoding error.
func (e *CorruptSuppressionError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptSuppressionError) Is(target error) bool { return target == ErrCorrupt }
