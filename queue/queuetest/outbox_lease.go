package queuetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// oPast is a claim time before any clock a store might consult: a store
// that decides by its own clock rather than the claim's Now would take
// leases at oPast as long over.
var oPast = time.Date(2001, 2, 3, 4, 5, 6, 7_000, time.UTC)

// testOutboxOneSender: while a lease has not ended, no other claim of
// the endpoint gets anything, at any Now before the lease's end; once it
// is acked, the next sender gets the rest.
func testOutboxOneSender(t testing.TB, s queue.OutboxStore) {
	oAppend(t, s, oEntries("ep", 0, 5)...)
	b1 := oClaimSome(t, s, queue.OutboxClaim{Endpoint: "ep", Owner: "one", Max: 2, Now: oT0, Lease: time.Minute})
	oCheckItems(t, "the first claim", b1.Items, oEntries("ep", 0, 2))
	for _, at := range []time.Duration{0, time.Microsecond, 30 * time.Second, time.Minute - time.Microsecond, -time.Hour} {
		r := queue.OutboxClaim{Endpoint: "ep", Owner: "two", Max: 5, Now: oAt(at), Lease: time.Minute}
		oClaimNone(t, s, r, "while another sender's lease (until oT0+1m0s) has not ended")
	}
	oCheckState(t, "Outboxes while leased", oState(t, s, "ep"), queue.OutboxState{Endpoint: "ep", Pending: 5, Oldest: oT0, Owner: "one"})
	oAck(t, s, b1)
	b2 := oClaimSome(t, s, queue.OutboxClaim{Endpoint: "ep", Owner: "two", Max: 5, Now: oAt(time.Second), Lease: time.Minute})
	oCheckItems(t, "the claim after AckOutbox", b2.Items, oEntries("ep", 2, 5))
	if b2.Token == b1.Token {
		t.Fatalf("two leases of one endpoint have the token %q", b1.Token)
	}
	oClaimNone(t, s, oReq("ep", 5, oAt(2*time.Second)), "while the second sender's lease has not ended")
}

// testOutboxLeaseEnd: once a lease has ended, a claim gets the same head
// again under a new token, and the old token gives ErrLeaseLost; an
// ended lease that no claim has taken is still current and acks or
// retries (by the claim's clock, not the store's).
func testOutboxLeaseEnd(t testing.TB, s queue.OutboxStore) {
	ctx := context.Background()
	oAppend(t, s, oEntries("ep", 0, 4)...)
	b1 := oClaimSome(t, s, queue.OutboxClaim{Endpoint: "ep", Owner: "one", Max: 2, Now: oT0, Lease: time.Minute})
	b2 := oClaimSome(t, s, queue.OutboxClaim{Endpoint: "ep", Owner: "two", Max: 3, Now: oAt(time.Minute + time.Microsecond), Lease: time.Minute})
	oCheckItems(t, "a claim after the first lease ended", b2.Items, oEntries("ep", 0, 3))
	if !slices.Equal(oSeqs(b2.Items[:2]), oSeqs(b1.Items)) {
		t.Fatalf("a claim after the lease ended: Seq %v, want the first lease's %v first", oSeqs(b2.Items), oSeqs(b1.Items))
	}
	if b2.Token == b1.Token {
		t.Fatalf("a claim after the lease ended has the old token %q", b1.Token)
	}
	if b2.Attempts != 0 {
		t.Fatalf("a claim after a lease ended: Attempts %d, want 0 (an ended lease is not a failed attempt)", b2.Attempts)
	}
	oLost(t, "AckOutbox with the token of a lease taken by another claim", s.AckOutbox(ctx, b1))
	oLost(t, "RetryOutbox with the token of a lease taken by another claim", s.RetryOutbox(ctx, b1, oAt(time.Hour), "stale"))
	oCheckState(t, "Outboxes after the stale calls", oState(t, s, "ep"), queue.OutboxState{Endpoint: "ep", Pending: 4, Oldest: oT0, Owner: "two"})
	oAck(t, s, b2)
	oCheckState(t, "Outboxes after AckOutbox of the second batch", oState(t, s, "ep"),
		queue.OutboxState{Endpoint: "ep", Pending: 1, Oldest: oEntry("ep", 3).Time})

	// Ended, by the claims' clock and by any other, and not taken again.
	oAppend(t, s, oEntries("ep", 4, 6)...)
	b3 := oClaimSome(t, s, queue.OutboxClaim{Endpoint: "ep", Owner: "three", Max: 1, Now: oPast, Lease: time.Minute})
	oCheckItems(t, "a claim at an early Now", b3.Items, oEntries("ep", 3, 4))
	oRetry(t, s, b3, oPast, "retried after its lease ended")
	b4 := oClaimSome(t, s, queue.OutboxClaim{Endpoint: "ep", Owner: "four", Max: 1, Now: oPast, Lease: time.Minute})
	if b4.Attempts != 1 {
		t.Fatalf("a claim after RetryOutbox of an ended lease: Attempts %d, want 1", b4.Attempts)
	}
	oAck(t, s, b4)
	oCheckItems(t, "the items left", oDrain(t, s, "ep", 10, oT0), oEntries("ep", 4, 6))
}

// testOutboxAck: AckOutbox removes exactly the batch, clears the attempts,
// last error and next attempt so that the next batch is due at once, and
// works once: the token is then stale, as is a forged one.
func testOutboxAck(t testing.TB, s queue.OutboxStore) {
	ctx := context.Background()
	oAppend(t, s, oEntries("ep", 0, 6)...)
	oAppend(t, s, oEntries("other", 0, 2)...)
	b := oClaimSome(t, s, oReq("ep", 2, oT0))
	oRetry(t, s, b, oAt(time.Minute), "500 oops")
	b = oClaimSome(t, s, oReq("ep", 3, oAt(time.Minute)))
	oCheckItems(t, "a claim after RetryOutbox", b.Items, oEntries("ep", 0, 3))
	oAck(t, s, b)
	oCheckState(t, "Outboxes after AckOutbox", oState(t, s, "ep"), queue.OutboxState{Endpoint: "ep", Pending: 3, Oldest: oEntry("ep", 3).Time})
	oLost(t, "a second AckOutbox of one batch", s.AckOutbox(ctx, b))
	oLost(t, "RetryOutbox after AckOutbox", s.RetryOutbox(ctx, b, oAt(time.Hour), "late"))
	b2 := oClaimSome(t, s, oReq("ep", 10, oAt(time.Minute)))
	oCheckItems(t, "the claim after AckOutbox, at once", b2.Items, oEntries("ep", 3, 6))
	if b2.Attempts != 0 {
		t.Fatalf("the claim after AckOutbox: Attempts %d, want 0", b2.Attempts)
	}
	oLost(t, "AckOutbox of an acked batch while the next one is leased", s.AckOutbox(ctx, b))
	forged := *b2
	forged.Token = b2.Token + "x"
	oLost(t, "AckOutbox with a forged token", s.AckOutbox(ctx, &forged))
	forged.Token = ""
	oLost(t, "AckOutbox with no token", s.AckOutbox(ctx, &forged))
	forged = *b2
	forged.Endpoint = "unknown"
	oLost(t, "AckOutbox of an endpoint never appended to", s.AckOutbox(ctx, &forged))
	oAck(t, s, b2)
	oLost(t, "a second AckOutbox of the last batch", s.AckOutbox(ctx, b2))
	oClaimNone(t, s, oReq("ep", 10, oAt(time.Hour)), "after AckOutbox of every item")
	oCheckStates(t, "Outboxes after AckOutbox of every item of one endpoint", s,
		queue.OutboxState{Endpoint: "other", Pending: 2, Oldest: oT0})
	oCheckItems(t, "the other endpoint's items", oDrain(t, s, "other", 10, oT0), oEntries("other", 0, 2))
}

// testOutboxAppendDuringLease: items appended while a batch is leased
// are kept by its AckOutbox and RetryOutbox, and come after it.
func testOutboxAppendDuringLease(t testing.TB, s queue.OutboxStore) {
	oAppend(t, s, oEntries("ep", 0, 3)...)
	b := oClaimSome(t, s, oReq("ep", 10, oT0))
	oCheckItems(t, "the claim of every item", b.Items, oEntries("ep", 0, 3))
	oAppend(t, s, oEntries("ep", 3, 5)...)
	oClaimNone(t, s, oReq("ep", 10, oT0), "while leased, after an AppendOutbox")
	oAck(t, s, b)
	oCheckState(t, "Outboxes after AckOutbox", oState(t, s, "ep"), queue.OutboxState{Endpoint: "ep", Pending: 2, Oldest: oEntry("ep", 3).Time})
	b = oClaimSome(t, s, oReq("ep", 1, oT0))
	oCheckItems(t, "the claim after AckOutbox", b.Items, oEntries("ep", 3, 4))
	oAppend(t, s, oEntry("ep", 5))
	oRetry(t, s, b, oT0, "again")
	oCheckItems(t, "the items after RetryOutbox", oDrain(t, s, "ep", 10, oT0), oEntries("ep", 3, 6))
}

// testOutboxRetry: RetryOutbox keeps the batch at the head, counts an
// attempt, records its reason, and makes the endpoint due at next, not
// before; other endpoints are not held up.
func testOutboxRetry(t testing.TB, s queue.OutboxStore) {
	oAppend(t, s, oEntries("ep", 0, 3)...)
	oAppend(t, s, oEntry("other", 0))
	b := oClaimSome(t, s, oReq("ep", 2, oT0))
	seqs := oSeqs(b.Items)
	oRetry(t, s, b, oAt(10*time.Minute), "503 5.0.0 busy")
	oCheckState(t, "Outboxes after RetryOutbox", oState(t, s, "ep"), queue.OutboxState{Endpoint: "ep", Pending: 3, Oldest: oT0,
		Attempts: 1, NextAttempt: oAt(10 * time.Minute), LastError: "503 5.0.0 busy"})
	for _, at := range []time.Duration{0, time.Minute, 10*time.Minute - time.Microsecond} {
		oClaimNone(t, s, oReq("ep", 10, oAt(at)), "before its NextAttempt, oT0+10m0s")
	}
	ob := oClaimSome(t, s, oReq("other", 10, oT0))
	oCheckItems(t, "another endpoint's claim", ob.Items, oEntries("other", 0, 1))
	oAck(t, s, ob)
	b = oClaimSome(t, s, oReq("ep", 2, oAt(10*time.Minute)))
	oCheckItems(t, "the claim at NextAttempt", b.Items, oEntries("ep", 0, 2))
	if !slices.Equal(oSeqs(b.Items), seqs) {
		t.Fatalf("the claim at NextAttempt: Seq %v, want %v as before", oSeqs(b.Items), seqs)
	}
	if b.Attempts != 1 {
		t.Fatalf("the claim at NextAttempt: Attempts %d, want 1", b.Attempts)
	}
	oRetry(t, s, b, oAt(30*time.Minute), "timeout")
	oClaimNone(t, s, oReq("ep", 10, oAt(30*time.Minute-time.Microsecond)), "before its second NextAttempt, oT0+30m0s")
	b = oClaimSome(t, s, oReq("ep", 1, oAt(time.Hour)))
	if b.Attempts != 2 {
		t.Fatalf("the claim after two failed attempts: Attempts %d, want 2", b.Attempts)
	}
	st := oState(t, s, "ep")
	if st.Attempts != 2 || st.LastError != "timeout" || st.Owner != "sender" {
		t.Fatalf("Outboxes after two failed attempts, while leased: Attempts %d, LastError %q, Owner %q; want 2, \"timeout\", \"sender\"",
			st.Attempts, st.LastError, st.Owner)
	}
	// A next attempt in the past: due at once.
	oRetry(t, s, b, oAt(-time.Hour), "")
	b = oClaimSome(t, s, oReq("ep", 10, oAt(time.Hour)))
	if b.Attempts != 3 {
		t.Fatalf("the claim after three failed attempts: Attempts %d, want 3", b.Attempts)
	}
	oCheckItems(t, "the claim after three failed attempts", b.Items, oEntries("ep", 0, 3))
	oAck(t, s, b)
	oCheckStates(t, "Outboxes after AckOutbox of everything", s)
}
