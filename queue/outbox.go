package queue

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"
)

// Limits of the outbox that CheckOutboxEntry applies.
const (
	MaxEndpointLen    = 2048    // octets of an endpoint's name
	MaxOutboxItemSize = 1 << 20 // octets of one item's Data
)

// OutboxStore keeps what is to be handed to webhook endpoints until the
// endpoint has taken it: one first-in, first-out outbox per endpoint, each
// read from its head by one sender at a time under a lease. It is an
// add-on interface found by type assertion on a Store; MemoryStore,
// boltstore and pgstore implement it (queuetest.TestOutbox checks them),
// so an application keeps its webhook deliveries in the database of its
// queue, and one accepted survives a restart.
//
// The rules:
//
//   - Order: an endpoint's items are claimed in the order they were
//     appended, never an item before one appended earlier to the same
//     endpoint while that one is still there. Endpoints are independent.
//   - Durability: when AppendOutbox returns nil, the items survive a crash of the
//     process (MemoryStore: they are visible to every later call).
//   - One sender: ClaimOutbox leases the head of an endpoint's outbox; while that
//     lease has not ended, no other ClaimOutbox of the endpoint gets anything,
//     from this process or another. A batch is therefore delivered by one
//     sender at a time, in order.
//   - Due: an endpoint is due when its NextAttempt (set by RetryOutbox) is not
//     after the claim's Now and it has no unexpired lease.
//   - Fencing: AckOutbox and RetryOutbox succeed only with the token of the endpoint's
//     current lease; a lease that has ended and been taken by another ClaimOutbox
//     gives ErrLeaseLost. (An ended lease not yet taken is still current.)
//   - Context: a method called with an ended context changes nothing and
//     returns an error wrapping ctx.Err().
type OutboxStore interface {
	// AppendOutbox adds the entries at the end of their endpoints' outboxes, in
	// one transaction: all or none. Entries for the same endpoint keep
	// their order. Every entry must pass CheckOutboxEntry, or AppendOutbox gives
	// ErrInvalid and stores nothing.
	AppendOutbox(ctx context.Context, entries ...OutboxEntry) error

	// ClaimOutbox leases the head of r.Endpoint's outbox to r.Owner until
	// r.Now+r.Lease: up to r.Max items, oldest first, and, when
	// r.MaxBytes > 0, no more than r.MaxBytes octets of Data in all,
	// except that the first item is always included. It returns nil and
	// no error when the outbox is empty, not due, or leased by someone
	// else. r.Max < 1 or r.Lease <= 0 gives ErrInvalid.
	ClaimOutbox(ctx context.Context, r OutboxClaim) (*OutboxBatch, error)

	// AckOutbox removes the items of b from the outbox, ends the lease, and
	// clears the endpoint's attempts and last error: the next batch is due
	// at once.
	AckOutbox(ctx context.Context, b *OutboxBatch) error

	// RetryOutbox ends the lease of b and keeps its items at the head of the
	// outbox; it counts a failed attempt, records reason as the last
	// error, and makes the endpoint due at next.
	RetryOutbox(ctx context.Context, b *OutboxBatch, next time.Time, reason string) error

	// Outboxes describes every endpoint that has items or a recorded
	// failure, in endpoint order.
	Outboxes(ctx context.Context) ([]OutboxState, error)
}

// OutboxEntry is one item to append to an endpoint's outbox.
type OutboxEntry struct {
	Endpoint string    // the endpoint's name: not empty, at most MaxEndpointLen octets
	Time     time.Time // when it happened; kept with the item (senders give up on old items)
	Data     []byte    // the payload, opaque to the store; at most MaxOutboxItemSize octets
}

// OutboxItem is an item as stored.
type OutboxItem struct {
	Seq  int64     // its position: increasing within an endpoint's outbox, set by AppendOutbox
	Time time.Time // OutboxEntry.Time
	Data []byte    // OutboxEntry.Data
}

// OutboxClaim says what ClaimOutbox may take.
type OutboxClaim struct {
	Endpoint string        // the outbox to read
	Owner    string        // who holds the lease, for Outboxes and logs
	Max      int           // at most this many items; at least 1
	MaxBytes int           // at most this many octets of Data (the first item always); 0: no limit
	Now      time.Time     // the caller's clock: whether the endpoint is due, when the lease ends
	Lease    time.Duration // lease length
}

// OutboxBatch is the head of an endpoint's outbox, leased by ClaimOutbox.
type OutboxBatch struct {
	Endpoint string       // the outbox it was read from
	Items    []OutboxItem // in order; at least one
	// Attempts is the number of failed attempts (RetryOutbox) since the last AckOutbox.
	Attempts int
	// Token names the lease, for AckOutbox and RetryOutbox.
	Token string
	// Until is when the lease ends.
	Until time.Time
}

// OutboxState describes one endpoint's outbox.
type OutboxState struct {
	Endpoint    string    // the outbox's name
	Pending     int       // items waiting, those of a leased batch included
	Oldest      time.Time // Time of the oldest item; zero when none
	Attempts    int       // failed attempts since the last AckOutbox
	NextAttempt time.Time // when the endpoint is due again after a failure; zero when due
	LastError   string    // the reason of the last RetryOutbox, until an AckOutbox
	// Owner is the holder of the lease last taken, until an AckOutbox,
	// a RetryOutbox or another claim ends it: Outboxes has no clock, so
	// a lease whose end has passed is still listed. "" when none.
	Owner string
}

// CheckOutboxEntry reports whether e can be appended: ErrInvalid for an
// empty or over-long endpoint name, one that is not UTF-8 or has control
// characters, a zero Time, or Data over MaxOutboxItemSize.
func CheckOutboxEntry(e *OutboxEntry) error {
	switch {
	case e.Endpoint == "":
		return fmt.Errorf("%w: outbox entry without an endpoint", ErrInvalid)
	case len(e.Endpoint) > MaxEndpointLen:
		return fmt.Errorf("%w: outbox endpoint name of %d octets, over %d", ErrInvalid, len(e.Endpoint), MaxEndpointLen)
	case e.Time.IsZero():
		return fmt.Errorf("%w: outbox entry without a time", ErrInvalid)
	case len(e.Data) > MaxOutboxItemSize:
		return fmt.Errorf("%w: outbox item of %d octets, over %d", ErrInvalid, len(e.Data), MaxOutboxItemSize)
	}
	if !utf8.ValidString(e.Endpoint) {
		return fmt.Errorf("%w: outbox endpoint name %q is not UTF-8", ErrInvalid, e.Endpoint)
	}
	for i := 0; i < len(e.Endpoint); i++ {
		if c := e.Endpoint[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: outbox endpoint name %q has a control character", ErrInvalid, e.Endpoint)
		}
	}
	return nil
}
