package queue

import (
	"context"
	"time"
)

// LimitStore keeps the limits of each destination (for package relay, an
// MX host) that several processes sending as one hold together: a cap on
// the connections open to it, a rate of messages, and the back-off it
// asked for. It is an add-on interface found by type assertion on a
// Store; pgstore implements it, so that every instance sharing a schema
// shares these limits too. Stores of one process (MemoryStore, boltstore)
// do not: that process's limits are in its memory already.
//
// The rules (queuetest.TestLimits checks them):
//
//   - Slots: AcquireSlot grants a slot of a key only while fewer than its
//     max slots of the key are held, counting every holder in every
//     process; and none while the key is paused or suspended (DestState).
//   - Liveness: a slot is held until ReleaseSlot, or until the store that
//     took it has not renewed it for its slot lifetime (pgstore renews the
//     slots of an open store by itself): the slots of a process that dies
//     end by themselves.
//   - Rate: over any interval of length t, TakeTurns grants at most
//     Burst + PerMinute×t/1min turns of a key, across processes (the
//     generic cell rate algorithm).
//   - State: NoteBackoff only makes a key's state stricter (a later pause
//     or suspension, fewer connections allowed); it relaxes by itself as
//     time passes (DestState.Allowed recovers at AllowedRecovery).
//   - Context: a method called with an ended context changes nothing and
//     returns an error wrapping ctx.Err().
type LimitStore interface {
	// AcquireSlot takes one of key's max slots if one is free and the key
	// is not paused, and returns the key's state either way: Slot.ID is
	// empty when none was taken. max < 1 gives ErrInvalid.
	AcquireSlot(ctx context.Context, key string, max int) (Slot, error)
	// ReleaseSlot gives a slot back and announces it to SlotReleased in
	// every process; a slot already ended is no error.
	ReleaseSlot(ctx context.Context, key, slot string) error
	// SlotReleased signals when some process released a slot (of any
	// key), so that a waiter tries AcquireSlot again. Signals are merged
	// and may be lost while the store is disconnected: waiters poll too.
	SlotReleased() <-chan struct{}
	// TakeTurns takes up to n turns of key's rate and returns how many it
	// got; with none, next is when the next turn comes. n < 1 or a rate
	// without PerMinute gives ErrInvalid.
	TakeTurns(ctx context.Context, key string, r Rate, n int) (granted int, next time.Time, err error)
	// NoteBackoff makes key's state at least as strict as s: the later
	// PausedUntil, the lower Allowed (recovering from now), the rule of
	// the later RuleUntil. It returns the state that results.
	NoteBackoff(ctx context.Context, key string, s DestState) (DestState, error)
	// DestState returns key's state now; the zero state for a key never
	// noted.
	DestState(ctx context.Context, key string) (DestState, error)
}

// Slot is what AcquireSlot returns: the slot taken (ID empty if none),
// how many slots of the key are held with it, and the key's state.
type Slot struct {
	ID    string    // the slot, for ReleaseSlot; "" when none was taken
	Held  int       // the key's slots held, this one included
	State DestState // the key's back-off state
}

// Rate is a rate of turns: PerMinute on average, up to Burst at once (at
// least 1).
type Rate struct {
	PerMinute float64 // turns a minute, on average
	Burst     int     // turns at once, at least 1 (0 is taken as 1)
}

// AllowedRecovery is how fast DestState.Allowed climbs back after a
// back-off lowered it: one connection every this long, until the cap.
const AllowedRecovery = 10 * time.Second

// DestState is the back-off state of a destination shared by the
// processes: no new connection before PausedUntil; at most Allowed
// connections (0: the cap), as of AllowedAt, one more every
// AllowedRecovery since; and the back-off rule Rule in force until
// RuleUntil (its name: each process applies its own rule of that name).
type DestState struct {
	PausedUntil time.Time // no new connection before; zero → none
	Allowed     float64   // connections allowed as of AllowedAt; 0 → the cap
	AllowedAt   time.Time // when Allowed was lowered
	Rule        string    // the back-off rule in force; "" → none
	RuleUntil   time.Time // when Rule ends
}

// AllowedNow returns the connections s allows at now under a cap of max:
// Allowed plus what it recovered since AllowedAt, within 1..max; max when
// no back-off lowered it.
func (s DestState) AllowedNow(now time.Time, max int) int {
	if s.Allowed <= 0 {
		return max
	}
	a := s.Allowed + float64(now.Sub(s.AllowedAt))/float64(AllowedRecovery)
	return min(max, int(max1(a)))
}

func max1(a float64) float64 {
	if a < 1 {
		return 1
	}
	return a
}
