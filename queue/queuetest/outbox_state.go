package queuetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// testOutboxStates: Outboxes lists every endpoint with items or a
// recorded failure, in endpoint order, with its pending items (a leased
// batch's included), the Time of its oldest, its attempts, next attempt
// and last error, and the owner of its lease; not an endpoint that was
// only claimed, or whose items are all acked.
func testOutboxStates(t testing.TB, s queue.OutboxStore) {
	oCheckStates(t, "Outboxes of an empty store", s)
	oClaimNone(t, s, oReq("never", 5, oT0), "of an endpoint never appended to")
	oCheckStates(t, "Outboxes after a claim of an endpoint never appended to", s)
	oAppend(t, s, oEntries("b", 0, 3)...)
	oAppend(t, s, oEntries("a", 5, 7)...)
	oAppend(t, s, oEntries("c", 0, 2)...)
	oAck(t, s, oClaimSome(t, s, oReq("c", 10, oT0)))
	bb := oClaimSome(t, s, queue.OutboxClaim{Endpoint: "b", Owner: "sender-1", Max: 1, Now: oT0, Lease: time.Hour})
	ba := oClaimSome(t, s, oReq("a", 10, oT0))
	oRetry(t, s, ba, oAt(time.Minute), "first")
	ba = oClaimSome(t, s, oReq("a", 10, oAt(time.Minute)))
	oRetry(t, s, ba, oAt(time.Hour), "second")
	a := queue.OutboxState{Endpoint: "a", Pending: 2, Oldest: oEntry("a", 5).Time, Attempts: 2, NextAttempt: oAt(time.Hour), LastError: "second"}
	oCheckStates(t, "Outboxes", s, a,
		queue.OutboxState{Endpoint: "b", Pending: 3, Oldest: oT0, Owner: "sender-1"})
	oAck(t, s, bb)
	oCheckStates(t, "Outboxes after AckOutbox of b's first item", s, a,
		queue.OutboxState{Endpoint: "b", Pending: 2, Oldest: oEntry("b", 1).Time})
	bb = oClaimSome(t, s, queue.OutboxClaim{Endpoint: "b", Owner: "sender-2", Max: 10, Now: oT0, Lease: time.Hour})
	oCheckStates(t, "Outboxes after a second claim of b", s, a,
		queue.OutboxState{Endpoint: "b", Pending: 2, Oldest: oEntry("b", 1).Time, Owner: "sender-2"})
	oRetry(t, s, bb, oAt(2*time.Minute), "503")
	oCheckStates(t, "Outboxes after RetryOutbox of b", s, a,
		queue.OutboxState{Endpoint: "b", Pending: 2, Oldest: oEntry("b", 1).Time, Attempts: 1, NextAttempt: oAt(2 * time.Minute), LastError: "503"})
	oDrain(t, s, "a", 1, oAt(2*time.Hour))
	oCheckStates(t, "Outboxes after a is emptied", s,
		queue.OutboxState{Endpoint: "b", Pending: 2, Oldest: oEntry("b", 1).Time, Attempts: 1, NextAttempt: oAt(2 * time.Minute), LastError: "503"})
	oDrain(t, s, "b", 10, oAt(2*time.Hour))
	oCheckStates(t, "Outboxes after every endpoint is emptied", s)
}

// testOutboxCopies: the store keeps its own copy of what is appended, and
// gives a new one with each claim.
func testOutboxCopies(t testing.TB, s queue.OutboxStore) {
	entries := oEntries("ep", 0, 2)
	oAppend(t, s, entries...)
	entries[0].Data[0] = 'X'
	entries[1].Data = append(entries[1].Data[:0], "changed"...)
	entries[1].Time, entries[0].Endpoint = oAt(time.Hour), "other"
	want := oEntries("ep", 0, 2)
	b := oClaimSome(t, s, oReq("ep", 10, oT0))
	oCheckItems(t, "a claim after the appended entries changed", b.Items, want)
	b.Items[0].Data[0] = 'Y'
	b.Items[1].Time = oAt(time.Hour)
	oRetry(t, s, b, oT0, "")
	b = oClaimSome(t, s, oReq("ep", 10, oT0))
	oCheckItems(t, "a claim after a batch's data changed", b.Items, want)
	b.Items[1].Data[1] = 'Z'
	b = oClaimSome(t, s, oReq("ep", 10, oAt(time.Hour))) // the lease has ended
	oCheckItems(t, "a claim after a batch's data changed and its lease ended", b.Items, want)
	oCheckStates(t, "Outboxes", s, queue.OutboxState{Endpoint: "ep", Pending: 2, Oldest: oT0, Attempts: 1, NextAttempt: oT0, Owner: "sender"})
}

// testOutboxCanceled: every method called with an ended context (canceled,
// or past its deadline) returns an error wrapping ctx.Err() and changes
// nothing: no item, no lease, no attempt.
func testOutboxCanceled(t testing.TB, s queue.OutboxStore) {
	oAppend(t, s, oEntries("ep", 0, 3)...)
	b := oClaimSome(t, s, queue.OutboxClaim{Endpoint: "ep", Owner: "sender", Max: 1, Now: oT0, Lease: time.Minute})
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	for _, ctx := range []context.Context{canceled, expired} {
		calls := []struct {
			name string
			call func() error
		}{
			{"AppendOutbox", func() error { return s.AppendOutbox(ctx, oEntry("ep", 9), oEntry("new", 0)) }},
			{"ClaimOutbox after the lease's end", func() error {
				b, err := s.ClaimOutbox(ctx, queue.OutboxClaim{Endpoint: "ep", Owner: "late", Max: 5, Now: oAt(time.Hour), Lease: time.Minute})
				if b != nil {
					t.Fatalf("ClaimOutbox with an ended context returned a batch")
				}
				return err
			}},
			{"AckOutbox", func() error { return s.AckOutbox(ctx, b) }},
			{"RetryOutbox", func() error { return s.RetryOutbox(ctx, b, oAt(time.Hour), "canceled") }},
			{"Outboxes", func() error {
				st, err := s.Outboxes(ctx)
				if st != nil {
					t.Fatalf("Outboxes with an ended context listed %d endpoints", len(st))
				}
				return err
			}},
		}
		for _, c := range calls {
			if err := c.call(); err == nil || !errors.Is(err, ctx.Err()) {
				t.Fatalf("%s with an ended context (%v): %v, want an error wrapping it", c.name, ctx.Err(), err)
			}
		}
	}
	oCheckStates(t, "Outboxes after the calls with an ended context", s,
		queue.OutboxState{Endpoint: "ep", Pending: 3, Oldest: oT0, Owner: "sender"})
	oAck(t, s, b) // still the current lease
	oCheckItems(t, "the items left", oDrain(t, s, "ep", 10, oT0), oEntries("ep", 1, 3))
}

// testOutboxSeq: Seq increases within an endpoint's outbox, stays with an
// item that is retried or whose lease ends, and is never given again,
// even once the outbox has been emptied; every lease has a token of its
// own.
func testOutboxSeq(t testing.TB, s queue.OutboxStore) {
	tokens := map[string]bool{}
	var last int64
	took := func(what string, b *queue.OutboxBatch) {
		t.Helper()
		if tokens[b.Token] {
			t.Fatalf("%s: the token %q again", what, b.Token)
		}
		tokens[b.Token] = true
	}
	acked := func(what string, b *queue.OutboxBatch) {
		t.Helper()
		took(what, b)
		if b.Items[0].Seq <= last {
			t.Fatalf("%s: Seq %d after an item of Seq %d was acked: a Seq given again", what, b.Items[0].Seq, last)
		}
		last = b.Items[len(b.Items)-1].Seq
		oAck(t, s, b)
	}
	oAppend(t, s, oEntries("ep", 0, 3)...)
	acked("the first claim", oClaimSome(t, s, oReq("ep", 10, oT0)))
	oAppend(t, s, oEntries("ep", 3, 5)...)
	acked("the claim after the outbox was emptied", oClaimSome(t, s, oReq("ep", 10, oT0)))
	for i := range 20 {
		oAppend(t, s, oEntry("ep", 5+i), oEntry("other", i))
		acked("a claim after one more append", oClaimSome(t, s, oReq("ep", 10, oT0)))
		if i%2 == 0 {
			oAck(t, s, oClaimSome(t, s, oReq("other", 10, oT0)))
		}
	}
	oAppend(t, s, oEntries("ep", 30, 32)...)
	b := oClaimSome(t, s, oReq("ep", 10, oT0))
	took("a claim", b)
	seqs := oSeqs(b.Items)
	oRetry(t, s, b, oT0, "again")
	b = oClaimSome(t, s, oReq("ep", 10, oT0))
	took("the claim after RetryOutbox", b)
	if got := oSeqs(b.Items); len(got) != len(seqs) || got[0] != seqs[0] || got[1] != seqs[1] {
		t.Fatalf("the claim after RetryOutbox: Seq %v, want %v as before", got, seqs)
	}
	b = oClaimSome(t, s, oReq("ep", 10, oAt(2*time.Minute)))
	if got := oSeqs(b.Items); len(got) != len(seqs) || got[0] != seqs[0] || got[1] != seqs[1] {
		t.Fatalf("the claim after the lease ended: Seq %v, want %v as before", got, seqs)
	}
	acked("the claim after the lease ended", b)
}
