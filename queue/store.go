package queue

import (
	"context"
	"time"
)

// Store keeps the queue's jobs. Implementations must be safe for
// concurrent use, and every method must honour ctx.
//
// Rules every Store follows (queuetest.TestStore checks them):
//
//   - Durability: when Put, Finish or Set returns nil, the change survives
//     a crash of the process (and, for a durable store, of the machine).
//     MemoryStore is the exception, documented as such.
//   - Reopening: a durable store opened again on the same storage, after
//     Close or a crash of the process, finds every job as the last change
//     left it: fields, message, attempts, holds, and leases with their
//     owner, token and end. A store whose storage no other process can
//     open at the same time (boltstore) may instead end every lease when
//     it opens, since the process that held them is gone; those jobs are
//     then due at once. A job is never given a token it had before.
//   - Context: a method called with a context that has already ended
//     changes nothing and returns an error that wraps ctx.Err().
//   - Ids: a missing id gives ErrNotFound, from Get, Set and Finish alike.
//   - Due: a job is due when it is not held, NextAttempt <= now, and it has
//     no lease or its lease expired (Lease.Until <= now).
//   - Claim: leases due jobs earliest first, where a job counts from its
//     NextAttempt, or from its Lease.Until once it has been leased (an
//     expired lease is due at its end, not at the older NextAttempt);
//     never the same job to two claims whose leases overlap, never a held
//     job.
//   - Per-key limit: when ClaimRequest.PerKey > 0, Claim leaves at most
//     PerKey unexpired leases per RoutingKey, counting those held by other
//     owners and processes. Jobs of a key at its limit are skipped, not
//     waited for: other keys are served (no starvation).
//   - Fencing: Finish succeeds only with the Lease.Token of the job's
//     current lease; any other token gives ErrLeaseLost. Claiming a job with
//     an expired lease makes the old token stale.
//   - Records: Get returns every field as Put stored it, with the changes
//     Finish and Set made; List leaves Message nil to stay light.
//   - Corrupt records: a record that cannot be decoded is reported as a
//     *CorruptError (ErrCorrupt) by Get, skipped by Claim and List, counted
//     by Stats, and removed by Set(ActionCancel).
//
// Optional capabilities are add-on interfaces found by type assertion:
// Waker (wake-ups from outside the process), PutLeaser and FinishClaimer
// (one write for a Put or a Finish and the lease that follows it) and
// io.Closer.
type Store interface {
	// Put stores a new job durably. The job has an ID (ErrInvalid if
	// empty; ErrExists if taken); it is due at job.NextAttempt unless
	// job.Held. The Lease field is ignored. The store keeps no reference
	// to job.
	Put(ctx context.Context, job *Job) error

	// Get returns a copy of the job with its message, or ErrNotFound.
	Get(ctx context.Context, id string) (*Job, error)

	// Claim leases up to r.Max due jobs to r.Owner until r.Now+r.Lease
	// and returns them with Lease set, each with a new Token.
	//
	// A job is due at r.Now when it is not held, its NextAttempt is not
	// after r.Now, and it has no lease or its lease has ended
	// (Lease.Until <= r.Now). Claim takes the due jobs earliest first and
	// returns them in that order, where a job that was never leased (or
	// was finished since) counts from its NextAttempt and a job whose
	// lease ended counts from its Lease.Until, not from its older
	// NextAttempt. It never gives a job to two claims whose leases
	// overlap, and never a held one. When r.PerKey > 0, it leaves at most
	// r.PerKey unexpired leases per RoutingKey, those of other owners and
	// processes included, and skips the jobs of a key at its limit instead
	// of waiting for them. It returns an empty slice, not an error, when
	// nothing is due.
	Claim(ctx context.Context, r ClaimRequest) ([]*Job, error)

	// Finish ends the lease job.Lease.Token names and records the attempt.
	// If job.Done(), the job is removed. Otherwise the store saves the
	// recipients' states and replies, Attempts, NextAttempt and LastError
	// (the other fields are fixed at Put and ignored here), and the job is
	// due again at NextAttempt unless it was held meanwhile. Giving back a
	// job unchanged with NextAttempt = now releases it. Errors:
	// ErrLeaseLost, ErrNotFound.
	Finish(ctx context.Context, job *Job) error

	// Set applies a review action to one job: hold it (never claimed
	// until released; an attempt in flight finishes), release it (due at
	// its NextAttempt), cancel it (removed at once; the lease of an
	// attempt in flight becomes stale), or retry it now.
	//
	// ActionRetry sets the job's NextAttempt to the zero time.Time, which
	// Get then reports until a Finish writes another (a store whose
	// storage cannot hold that instant keeps a marker for it and reads it
	// back as the zero time). A job that is not held and has no lease is
	// then due at the next Claim whatever its schedule, and, being the
	// earliest, is taken before the jobs that were due already (per-key
	// limits allowing). Attempts, LastError and the
	// recipients are left as they were. A held job stays held: it is due
	// at once when released. A leased job keeps its lease: the attempt in
	// flight is not disturbed, the job is not claimed again before the
	// lease ends (it is then due, at Lease.Until, like any job whose lease
	// ended), and when the attempt finishes, Finish records the
	// NextAttempt that attempt chose, which replaces the cleared one.
	//
	// ErrNotFound for a missing id. A record that cannot be decoded is
	// removed by ActionCancel; ActionHold, ActionRelease and ActionRetry
	// leave it as it is and give its *CorruptError, as Get does. An Action
	// that is none of these gives an error matching ErrInvalid, and
	// nothing changes.
	Set(ctx context.Context, id string, a Action) error

	// List returns up to r.Limit jobs in r.State, in id order, starting
	// after the id r.After, without their Message, and the id to pass as
	// After for the next page ("" at the end).
	List(ctx context.Context, r ListRequest) (jobs []*Job, next string, err error)

	// Stats counts the jobs by state.
	Stats(ctx context.Context) (Stats, error)
}

// ClaimRequest says what Claim may take.
type ClaimRequest struct {
	Owner  string        // written to each job's Lease.Owner
	Max    int           // at most this many jobs; <= 0 claims nothing
	PerKey int           // cap on unexpired leases per RoutingKey; 0: none
	Now    time.Time     // the caller's clock: what is due, when leases end
	Lease  time.Duration // lease length; the job may be re-claimed at Now+Lease
}

// Action is a review action for Store.Set.
type Action uint8

// Review actions.
const (
	ActionHold    Action = iota + 1 // hold: never claimed until released
	ActionRelease                   // release a held job
	ActionCancel                    // remove the job
	// ActionRetry makes the job due at once: its NextAttempt becomes the
	// zero time, so the next Claim takes it first, whatever its schedule.
	// Attempts, LastError and the recipients are unchanged. A held job
	// stays held (due at once when released); a leased job keeps its
	// lease, and Finish of that attempt writes the NextAttempt the attempt
	// chose.
	ActionRetry
)

// State classifies a stored job for List and Stats.
type State uint8

// Job states. Each stored job is in exactly one.
const (
	StateAny    State = iota // List: every state
	StateQueued              // waiting for its NextAttempt or a worker
	StateActive              // claimed and not finished (its lease may have expired)
	StateHeld                // held for review; Held wins over Active
)

var stateNames = [...]string{"any", "queued", "active", "held"}

// String returns "any", "queued", "active" or "held".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// StateOf returns the state a store reports for j.
func StateOf(j *Job) State {
	switch {
	case j.Held:
		return StateHeld
	case j.Lease.Token != "":
		return StateActive
	default:
		return StateQueued
	}
}

// ListRequest selects one page of List.
type ListRequest struct {
	State State  // StateAny for all
	After string // start after this id; "" from the beginning
	Limit int    // page size; <= 0 means 100
}

// Stats counts stored jobs by state.
type Stats struct {
	Queued  int // jobs in StateQueued: waiting for their NextAttempt or a worker
	Active  int // jobs in StateActive: claimed and not finished
	Held    int // jobs in StateHeld: held for review
	Corrupt int // records that cannot be decoded (not in the others)
}

// Waker is an optional Store capability: a store shared with other
// processes signals on the channel when jobs may have become due that this
// process did not enqueue (PostgreSQL LISTEN/NOTIFY, for one). Signals may
// be merged or lost; the queue keeps polling as a fallback.
type Waker interface {
	// Wake returns the channel on which the store signals.
	Wake() <-chan struct{}
}
