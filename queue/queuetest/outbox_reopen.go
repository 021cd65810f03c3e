package queuetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// testOutboxReopen checks that a store opened again on the same storage
// finds the outboxes as the last change left them: every item with its
// Seq, Time and Data, the attempts, next attempts and last errors, the
// Seq counters of emptied outboxes, and the leases, which keep their
// owner, token and end or, with endsLeases, have all ended, so that their
// endpoints are due at once and their old tokens are stale. Tokens given
// after a reopening are new. The store is reopened twice, the second time
// after changes made by the reopened store.
func testOutboxReopen(t testing.TB, s queue.OutboxStore, reopen func(queue.OutboxStore) queue.OutboxStore, endsLeases bool) {
	ctx := context.Background()
	tokens := map[string]bool{}
	took := func(b *queue.OutboxBatch) *queue.OutboxBatch {
		t.Helper()
		if tokens[b.Token] {
			t.Fatalf("ClaimOutbox(%q) gave the token %q again", b.Endpoint, b.Token)
		}
		tokens[b.Token] = true
		return b
	}
	claimAt := func(ep, owner string, max int, now time.Time) *queue.OutboxBatch {
		t.Helper()
		return took(oClaimSome(t, s, queue.OutboxClaim{Endpoint: ep, Owner: owner, Max: max, Now: now, Lease: time.Hour}))
	}

	// kept: four items, the first acked.
	kept := []queue.OutboxEntry{
		oEntry("kept", 0),
		{Endpoint: "kept", Time: time.Date(1969, 12, 31, 23, 59, 59, 999_999_000, time.UTC), Data: []byte("\x00binary\xff\r\n")},
		{Endpoint: "kept", Time: oAt(time.Microsecond).In(time.FixedZone("UTC-3", -3*3600)), Data: nil},
		oEntry("kept", 3),
	}
	oAppend(t, s, kept...)
	b := claimAt("kept", "before", 1, oT0)
	ackedKept := b.Items[0].Seq
	oAck(t, s, b)
	// retried: two items, two failed attempts, due at oT0+1h.
	oAppend(t, s, oEntries("retried", 0, 2)...)
	b = claimAt("retried", "before", 10, oT0)
	oRetry(t, s, b, oAt(time.Minute), "first")
	b = claimAt("retried", "before", 10, oAt(time.Minute))
	retriedSeqs := oSeqs(b.Items)
	oRetry(t, s, b, oAt(time.Hour), "second")
	// leased: three items, two leased until oT0+1h.
	oAppend(t, s, oEntries("leased", 0, 3)...)
	lb := claimAt("leased", "before", 2, oT0)
	// drained: every item acked; its Seq goes on after reopening.
	oAppend(t, s, oEntries("drained", 0, 2)...)
	b = claimAt("drained", "before", 10, oT0)
	drained := b.Items[len(b.Items)-1].Seq
	oAck(t, s, b)

	// ended returns states with the owners gone if the store ends leases.
	ended := func(sts []queue.OutboxState) []queue.OutboxState {
		sts = slices.Clone(sts)
		for i := range sts {
			if endsLeases {
				sts[i].Owner = ""
			}
		}
		return sts
	}
	before := oStates(t, s)
	s = reopen(s)
	oCheckStates(t, "Outboxes after reopening", s, ended(before)...)

	// The lease taken before.
	if endsLeases {
		b = claimAt("leased", "after", 2, oAt(time.Minute))
		oCheckItems(t, "the claim of the endpoint leased before reopening", b.Items, oEntries("leased", 0, 2))
		if !slices.Equal(oSeqs(b.Items), oSeqs(lb.Items)) || b.Attempts != 0 {
			t.Fatalf("the claim of the endpoint leased before reopening: Seq %v and Attempts %d, want %v and 0",
				oSeqs(b.Items), b.Attempts, oSeqs(lb.Items))
		}
		oLost(t, "AckOutbox with a token from before reopening", s.AckOutbox(ctx, lb))
		oAck(t, s, b)
	} else {
		oClaimNone(t, s, oReq("leased", 10, oAt(time.Minute)), "after reopening, while the lease taken before has not ended")
		oAck(t, s, lb) // the token from before still holds the lease
	}
	// kept's items, with their times, data and Seq.
	b = claimAt("kept", "after", 10, oT0)
	oCheckItems(t, "the items kept", b.Items, kept[1:])
	if b.Items[0].Seq <= ackedKept {
		t.Fatalf("the items kept: Seq %v, want each after the acked %d", oSeqs(b.Items), ackedKept)
	}
	keptSeqs := oSeqs(b.Items)
	oRetry(t, s, b, oAt(3*time.Hour), "after")
	// retried: not due before its next attempt; its attempts kept.
	oClaimNone(t, s, oReq("retried", 10, oAt(time.Hour-time.Microsecond)), "after reopening, before its NextAttempt")
	b = claimAt("retried", "after", 10, oAt(time.Hour))
	if !slices.Equal(oSeqs(b.Items), retriedSeqs) || b.Attempts != 2 {
		t.Fatalf("the claim of the retried endpoint after reopening: Seq %v and Attempts %d, want %v and 2",
			oSeqs(b.Items), b.Attempts, retriedSeqs)
	}
	oCheckItems(t, "the retried items", b.Items, oEntries("retried", 0, 2))
	oRetry(t, s, b, oAt(2*time.Hour), "third")
	// drained: the Seq counter.
	oAppend(t, s, oEntry("drained", 2))
	// A lease taken by the reopened store.
	nb := claimAt("leased", "after", 10, oAt(time.Minute))
	oCheckItems(t, "the last item of the endpoint leased before", nb.Items, oEntries("leased", 2, 3))
	if nb.Items[0].Seq <= lb.Items[1].Seq {
		t.Fatalf("the last item of the endpoint leased before: Seq %d, want after %d", nb.Items[0].Seq, lb.Items[1].Seq)
	}

	before = oStates(t, s)
	s = reopen(s)
	oCheckStates(t, "Outboxes after a second reopening", s, ended(before)...)
	if endsLeases {
		oLost(t, "AckOutbox with a token from before the second reopening", s.AckOutbox(ctx, nb))
		b = claimAt("leased", "again", 10, oAt(2*time.Minute))
		if !slices.Equal(oSeqs(b.Items), oSeqs(nb.Items)) {
			t.Fatalf("the claim of the endpoint leased before the second reopening: Seq %v, want %v", oSeqs(b.Items), oSeqs(nb.Items))
		}
		oAck(t, s, b)
	} else {
		oClaimNone(t, s, oReq("leased", 10, oAt(2*time.Minute)), "after the second reopening, while the lease taken before has not ended")
		oAck(t, s, nb)
	}
	b = claimAt("drained", "again", 10, oT0)
	oCheckItems(t, "the item appended after reopening", b.Items, oEntries("drained", 2, 3))
	if b.Items[0].Seq <= drained {
		t.Fatalf("the item appended after the outbox was emptied and the store reopened: Seq %d, want after %d", b.Items[0].Seq, drained)
	}
	oAck(t, s, b)
	b = claimAt("retried", "again", 10, oAt(2*time.Hour))
	if b.Attempts != 3 || !slices.Equal(oSeqs(b.Items), retriedSeqs) {
		t.Fatalf("the retried endpoint after a second reopening: Seq %v and Attempts %d, want %v and 3", oSeqs(b.Items), b.Attempts, retriedSeqs)
	}
	oAck(t, s, b)
	b = claimAt("kept", "again", 10, oAt(3*time.Hour))
	if b.Attempts != 1 || !slices.Equal(oSeqs(b.Items), keptSeqs) {
		t.Fatalf("the kept endpoint after a second reopening: Seq %v and Attempts %d, want %v and 1", oSeqs(b.Items), b.Attempts, keptSeqs)
	}
	oCheckItems(t, "the items kept after a second reopening", b.Items, kept[1:])
	oAck(t, s, b)
	oCheckStates(t, "Outboxes at the end", s)
}
