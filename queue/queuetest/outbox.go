package queuetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// OutboxOptions tune TestOutbox.
type OutboxOptions struct {
	// Reopen, when set, closes old and returns a store on the same data,
	// as a restarted process would open it. The suite then checks that
	// every item, its Seq, the attempts, last errors and next attempts,
	// the leases and the Seq counters survive; without it, that subtest
	// is skipped. Leave it nil for a store that keeps nothing once
	// closed, such as queue.MemoryStore.
	Reopen func(t *testing.T, old queue.OutboxStore) queue.OutboxStore

	// ReopenEndsLeases says that the store ends every outbox lease when
	// it is opened, as queue.OutboxStore allows for a store whose storage
	// no other process can open at the same time (queue/boltstore): an
	// endpoint leased before is then due at once, with its attempts as
	// they were, and the old token is stale. Without it, Reopen must keep
	// each lease's owner, token and end.
	ReopenEndsLeases bool
}

// TestOutbox runs the conformance suite for queue.OutboxStore against
// stores made by newStore, one new empty store per subtest. Give at most
// one OutboxOptions.
//
// The suite's times are whole microseconds, which every store must keep,
// and are compared as instants, so a store may read them back in any time
// zone. A nil and an empty Data are taken as equal. The suite passes the
// time explicitly (OutboxClaim.Now), so it never sleeps; a lease ends when
// a claim's Now passes its Until.
func TestOutbox(t *testing.T, newStore func(t *testing.T) queue.OutboxStore, opts ...OutboxOptions) {
	var o OutboxOptions
	if len(opts) > 0 {
		o = opts[len(opts)-1]
	}
	tests := []struct {
		name string
		fn   func(t testing.TB, s queue.OutboxStore)
	}{
		{"RoundTrip", testOutboxRoundTrip},
		{"Order", testOutboxOrder},
		{"Endpoints", testOutboxEndpoints},
		{"AppendAllOrNone", testOutboxAppendAllOrNone},
		{"ClaimLimits", testOutboxClaimLimits},
		{"ClaimInvalid", testOutboxClaimInvalid},
		{"OneSender", testOutboxOneSender},
		{"LeaseEnd", testOutboxLeaseEnd},
		{"Ack", testOutboxAck},
		{"AppendDuringLease", testOutboxAppendDuringLease},
		{"Retry", testOutboxRetry},
		{"Outboxes", testOutboxStates},
		{"Copies", testOutboxCopies},
		{"CanceledContext", testOutboxCanceled},
		{"Concurrent", testOutboxConcurrent},
		{"Seq", testOutboxSeq},
		{"Reopen", func(t testing.TB, s queue.OutboxStore) {
			if o.Reopen == nil {
				t.Skip("no OutboxOptions.Reopen: durability across close and reopen is not checked")
			}
			tt := t.(*testing.T)
			testOutboxReopen(t, s, func(old queue.OutboxStore) queue.OutboxStore { return o.Reopen(tt, old) }, o.ReopenEndsLeases)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

// oT0 is the outbox tests' clock origin: whole microseconds.
var oT0 = time.Date(2031, 5, 6, 7, 8, 9, 10_011_000, time.UTC)

// oAt returns oT0 plus d.
func oAt(d time.Duration) time.Time { return oT0.Add(d) }

// oEntry returns entry i of endpoint ep: it happened at oT0 plus i
// seconds, and its Data names it.
func oEntry(ep string, i int) queue.OutboxEntry {
	return queue.OutboxEntry{Endpoint: ep, Time: oAt(time.Duration(i) * time.Second), Data: []byte(fmt.Sprintf("%s #%d", ep, i))}
}

// oEntries returns entries from to to-1 of endpoint ep.
func oEntries(ep string, from, to int) []queue.OutboxEntry {
	var out []queue.OutboxEntry
	for i := from; i < to; i++ {
		out = append(out, oEntry(ep, i))
	}
	return out
}

func oAppend(t testing.TB, s queue.OutboxStore, entries ...queue.OutboxEntry) {
	t.Helper()
	if err := s.AppendOutbox(context.Background(), entries...); err != nil {
		t.Fatalf("AppendOutbox(%d entries): %v", len(entries), err)
	}
}

// oReq returns a claim of up to max items of ep at now, leased for a
// minute by "sender".
func oReq(ep string, max int, now time.Time) queue.OutboxClaim {
	return queue.OutboxClaim{Endpoint: ep, Owner: "sender", Max: max, Now: now, Lease: time.Minute}
}

// oClaim claims r and checks the batch's form: nil, or the endpoint's,
// with one to r.Max items in increasing Seq, a token, and the lease's end.
func oClaim(t testing.TB, s queue.OutboxStore, r queue.OutboxClaim) *queue.OutboxBatch {
	t.Helper()
	b, err := s.ClaimOutbox(context.Background(), r)
	if err != nil {
		t.Fatalf("ClaimOutbox(%q at %s): %v", r.Endpoint, oWhen(r.Now), err)
	}
	if b == nil {
		return nil
	}
	switch {
	case b.Endpoint != r.Endpoint:
		t.Fatalf("ClaimOutbox(%q): a batch of endpoint %q", r.Endpoint, b.Endpoint)
	case len(b.Items) == 0:
		t.Fatalf("ClaimOutbox(%q): a batch without items (want nil for nothing)", r.Endpoint)
	case len(b.Items) > r.Max:
		t.Fatalf("ClaimOutbox(%q, Max %d): %d items", r.Endpoint, r.Max, len(b.Items))
	case b.Token == "":
		t.Fatalf("ClaimOutbox(%q): a batch without a token", r.Endpoint)
	case !b.Until.Equal(r.Now.Add(r.Lease)):
		t.Fatalf("ClaimOutbox(%q at %s for %v): lease until %s, want %s", r.Endpoint, oWhen(r.Now), r.Lease,
			oWhen(b.Until), oWhen(r.Now.Add(r.Lease)))
	}
	for i := 1; i < len(b.Items); i++ {
		if b.Items[i].Seq <= b.Items[i-1].Seq {
			t.Fatalf("ClaimOutbox(%q): Seq %d after %d in one batch: not increasing", r.Endpoint, b.Items[i].Seq, b.Items[i-1].Seq)
		}
	}
	return b
}

// oClaimSome claims r and fails the test if nothing is claimed.
func oClaimSome(t testing.TB, s queue.OutboxStore, r queue.OutboxClaim) *queue.OutboxBatch {
	t.Helper()
	b := oClaim(t, s, r)
	if b == nil {
		t.Fatalf("ClaimOutbox(%q at %s): nothing, want a batch", r.Endpoint, oWhen(r.Now))
	}
	return b
}

// oClaimNone claims r and fails the test if anything is claimed.
func oClaimNone(t testing.TB, s queue.OutboxStore, r queue.OutboxClaim, why string) {
	t.Helper()
	if b := oClaim(t, s, r); b != nil {
		t.Fatalf("ClaimOutbox(%q at %s) %s: %d items from Seq %d, want nothing", r.Endpoint, oWhen(r.Now), why,
			len(b.Items), b.Items[0].Seq)
	}
}

func oAck(t testing.TB, s queue.OutboxStore, b *queue.OutboxBatch) {
	t.Helper()
	if err := s.AckOutbox(context.Background(), b); err != nil {
		t.Fatalf("AckOutbox(%q, %d items): %v", b.Endpoint, len(b.Items), err)
	}
}

func oRetry(t testing.TB, s queue.OutboxStore, b *queue.OutboxBatch, next time.Time, reason string) {
	t.Helper()
	if err := s.RetryOutbox(context.Background(), b, next, reason); err != nil {
		t.Fatalf("RetryOutbox(%q, %d items): %v", b.Endpoint, len(b.Items), err)
	}
}

// oLost fails the test unless err, from what, is ErrLeaseLost.
func oLost(t testing.TB, what string, err error) {
	t.Helper()
	if !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("%s: %v, want ErrLeaseLost", what, err)
	}
}

func oStates(t testing.TB, s queue.OutboxStore) []queue.OutboxState {
	t.Helper()
	st, err := s.Outboxes(context.Background())
	if err != nil {
		t.Fatalf("Outboxes: %v", err)
	}
	return st
}

// oState returns the state of ep, failing the test if Outboxes does not
// list it.
func oState(t testing.TB, s queue.OutboxStore, ep string) queue.OutboxState {
	t.Helper()
	for _, st := range oStates(t, s) {
		if st.Endpoint == ep {
			return st
		}
	}
	t.Fatalf("Outboxes does not list %q", ep)
	return queue.OutboxState{}
}

// oWhen names a time relative to oT0.
func oWhen(at time.Time) string {
	if at.IsZero() {
		return "the zero time"
	}
	return "oT0" + fmt.Sprintf("%+v", at.Sub(oT0))
}

// oCheckItems fails the test unless items hold want's times and data, in
// order.
func oCheckItems(t testing.TB, what string, items []queue.OutboxItem, want []queue.OutboxEntry) {
	t.Helper()
	if d := oItemsDiff(items, want); d != "" {
		t.Fatalf("%s: %s", what, d)
	}
}

// oItemsDiff describes the first difference between items and want, or
// returns "" if they hold the same times and data in the same order.
func oItemsDiff(items []queue.OutboxItem, want []queue.OutboxEntry) string {
	for i := range max(len(items), len(want)) {
		switch {
		case i >= len(items):
			return fmt.Sprintf("%d items, want %d: missing %q", len(items), len(want), oShort(want[i].Data))
		case i >= len(want):
			return fmt.Sprintf("%d items, want %d: %q too many", len(items), len(want), oShort(items[i].Data))
		case !bytes.Equal(items[i].Data, want[i].Data):
			return fmt.Sprintf("item %d (Seq %d): Data %q, want %q", i, items[i].Seq, oShort(items[i].Data), oShort(want[i].Data))
		case !items[i].Time.Equal(want[i].Time):
			return fmt.Sprintf("item %d (Seq %d, %q): Time %s, want %s", i, items[i].Seq, oShort(items[i].Data),
				items[i].Time.Format(time.RFC3339Nano), want[i].Time.Format(time.RFC3339Nano))
		}
	}
	return ""
}

// oShort returns the start of data, for messages.
func oShort(data []byte) string {
	if len(data) > 40 {
		return string(data[:40]) + "…"
	}
	return string(data)
}

// oSeqs returns the Seq of each item.
func oSeqs(items []queue.OutboxItem) []int64 {
	out := make([]int64, len(items))
	for i := range items {
		out[i] = items[i].Seq
	}
	return out
}

// oDrain claims ep at now, in batches of up to max, acking each, until
// nothing is left, and returns the items in the order claimed.
func oDrain(t testing.TB, s queue.OutboxStore, ep string, max int, now time.Time) []queue.OutboxItem {
	t.Helper()
	var all []queue.OutboxItem
	for range 100_000 {
		b := oClaim(t, s, oReq(ep, max, now))
		if b == nil {
			return all
		}
		all = append(all, b.Items...)
		oAck(t, s, b)
	}
	t.Fatalf("claiming %q does not end", ep)
	return nil
}

// oCheckState fails the test unless got equals want, times compared as
// instants.
func oCheckState(t testing.TB, what string, got, want queue.OutboxState) {
	t.Helper()
	if d := oStateDiff(got, want); d != "" {
		t.Fatalf("%s: the state of %q differs:%s", what, want.Endpoint, d)
	}
}

// oStateDiff returns the differences between two states, one a line, or
// "" if they are equal.
func oStateDiff(got, want queue.OutboxState) string {
	var b bytes.Buffer
	if got.Endpoint != want.Endpoint {
		fmt.Fprintf(&b, "\n\tEndpoint %q, want %q", got.Endpoint, want.Endpoint)
	}
	if got.Pending != want.Pending {
		fmt.Fprintf(&b, "\n\tPending %d, want %d", got.Pending, want.Pending)
	}
	if !got.Oldest.Equal(want.Oldest) {
		fmt.Fprintf(&b, "\n\tOldest %s, want %s", oWhen(got.Oldest), oWhen(want.Oldest))
	}
	if got.Attempts != want.Attempts {
		fmt.Fprintf(&b, "\n\tAttempts %d, want %d", got.Attempts, want.Attempts)
	}
	if !got.NextAttempt.Equal(want.NextAttempt) {
		fmt.Fprintf(&b, "\n\tNextAttempt %s, want %s", oWhen(got.NextAttempt), oWhen(want.NextAttempt))
	}
	if got.LastError != want.LastError {
		fmt.Fprintf(&b, "\n\tLastError %q, want %q", got.LastError, want.LastError)
	}
	if got.Owner != want.Owner {
		fmt.Fprintf(&b, "\n\tOwner %q, want %q", got.Owner, want.Owner)
	}
	return b.String()
}

// oCheckStates fails the test unless Outboxes lists exactly want, in
// order.
func oCheckStates(t testing.TB, what string, s queue.OutboxStore, want ...queue.OutboxState) {
	t.Helper()
	got := oStates(t, s)
	names := func(sts []queue.OutboxState) []string {
		out := make([]string, len(sts))
		for i := range sts {
			out[i] = sts[i].Endpoint
		}
		return out
	}
	if g, w := names(got), names(want); !slices.Equal(g, w) {
		t.Fatalf("%s: Outboxes lists %q, want %q", what, g, w)
	}
	for i := range got {
		oCheckState(t, what, got[i], want[i])
	}
}
