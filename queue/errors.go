package queue

import (
	"errors"
	"fmt"
)

// Errors a Queue or a Store returns; match them with errors.Is.
var (
	// ErrNotFound: no job has the given id (never existed, finished, or
	// cancelled).
	ErrNotFound = errors.New("queue: job not found")
	// ErrLeaseLost: Finish was given a lease that is no longer the job's
	// current one — the lease expired and another claim took the job. The
	// stale worker's outcome is discarded.
	ErrLeaseLost = errors.New("queue: lease lost")
	// ErrClosed: the store (or queue) was closed.
	ErrClosed = errors.New("queue: store closed")
	// ErrNoMessage: a job without message bytes.
	ErrNoMessage = errors.New("queue: empty message")
	// ErrNoRecipients: a job without recipients.
	ErrNoRecipients = errors.New("queue: no recipients")
	// ErrDuplicateRecipient: the same recipient twice in one job.
	ErrDuplicateRecipient = errors.New("queue: duplicate recipient")
	// ErrInvalid: a malformed job field (an address with CR, LF, NUL, <, >
	// or a space; an empty id given to Put).
	ErrInvalid = errors.New("queue: invalid job")
	// ErrExists: Put was given an id that is already stored.
	ErrExists = errors.New("queue: job id already exists")
	// ErrRunning: Run was called while another Run of the same Queue is
	// still going. One Run uses all of Workers; run more workers by
	// raising Workers, or more processes over a shared store.
	ErrRunning = errors.New("queue: already running")
	// ErrCorrupt: a stored record cannot be decoded. Errors that match it
	// are *CorruptError values that name the job.
	ErrCorrupt = errors.New("queue: corrupt record")
)

// CorruptError reports a stored job that cannot be read back. The rest of
// the queue keeps working; the record stays out of Claim and can be removed
// with Cancel.
type CorruptError struct {
	ID  string // the job's id
	Err error  // what decoding said
}

// Error names the job and says what decoding reported.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("queue: corrupt record for job %s: %v", e.ID, e.Err)
}

// Unwrap returns the decoding error.
func (e *CorruptError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }
