package queuetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// These tests check the outbox checks: each runs a check against a
// MemoryStore with a known fault and expects it to fail, and against one
// without and expects it to pass.

// outboxFault is a way of getting the outbox wrong.
type outboxFault int

const (
	noOutboxFault   outboxFault = iota
	claimTakesLease             // ClaimOutbox takes over an unexpired lease
	ackRemovesAll               // AckOutbox empties the whole outbox
	ackIgnoresToken             // AckOutbox of a stale batch removes the head anyway
	retryNotCounted             // RetryOutbox counts no attempt
	retryDueAtOnce              // RetryOutbox ignores next
	maxBytesIgnored             // ClaimOutbox ignores MaxBytes
	reversedPerCall             // AppendOutbox to several endpoints stores each one's entries reversed
	appendNotAtomic             // AppendOutbox stores the entries before an invalid one
	sharedData                  // ClaimOutbox gives the same Data slices each time
	seqPerBatch                 // Seq counts from 1 in each batch
	unsorted                    // Outboxes lists endpoints in reverse order
	noOwner                     // Outboxes leaves out the lease's owner
	claimIgnoresCtx             // ClaimOutbox goes ahead with an ended context
	ackIgnoresCtx               // AckOutbox goes ahead with an ended context
	forgetsAttempts             // Outboxes and ClaimOutbox report no attempts or last error
)

// farFuture is a Now past every lease and next attempt the checks make.
var farFuture = time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC)

// faultyOutbox is a MemoryStore's outbox with one fault.
type faultyOutbox struct {
	queue.OutboxStore
	fault outboxFault

	mu      sync.Mutex
	retries map[string]int                // retryNotCounted: RetryOutbox calls since the last AckOutbox
	data    map[int64][]byte              // sharedData: the Data returned, by Seq
	orig    map[string]*queue.OutboxBatch // seqPerBatch: the batches as claimed, by token
}

func newFaultyOutbox(f outboxFault) *faultyOutbox {
	return wrapOutbox(&queue.MemoryStore{}, f)
}

func wrapOutbox(s queue.OutboxStore, f outboxFault) *faultyOutbox {
	return &faultyOutbox{OutboxStore: s, fault: f, retries: map[string]int{}, data: map[int64][]byte{},
		orig: map[string]*queue.OutboxBatch{}}
}

func (s *faultyOutbox) AppendOutbox(ctx context.Context, entries ...queue.OutboxEntry) error {
	switch s.fault {
	case reversedPerCall:
		var eps []string
		by := map[string][]queue.OutboxEntry{}
		for _, e := range entries {
			if by[e.Endpoint] == nil {
				eps = append(eps, e.Endpoint)
			}
			by[e.Endpoint] = append(by[e.Endpoint], e)
		}
		if len(eps) > 1 {
			entries = nil
			for _, ep := range eps {
				slices.Reverse(by[ep])
				entries = append(entries, by[ep]...)
			}
		}
	case appendNotAtomic:
		for _, e := range entries {
			if err := s.OutboxStore.AppendOutbox(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}
	return s.OutboxStore.AppendOutbox(ctx, entries...)
}

func (s *faultyOutbox) ClaimOutbox(ctx context.Context, r queue.OutboxClaim) (*queue.OutboxBatch, error) {
	switch s.fault {
	case maxBytesIgnored:
		r.MaxBytes = 0
	case claimIgnoresCtx:
		ctx = context.Background()
	}
	b, err := s.OutboxStore.ClaimOutbox(ctx, r)
	if s.fault == claimTakesLease && b == nil && err == nil {
		if st := s.state(r.Endpoint); st.Owner != "" && !st.NextAttempt.After(r.Now) {
			far := r
			far.Now = farFuture
			if b, err = s.OutboxStore.ClaimOutbox(ctx, far); b != nil {
				b.Until = r.Now.Add(r.Lease)
			}
		}
	}
	if b == nil || err != nil {
		return b, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.fault {
	case retryNotCounted:
		b.Attempts -= s.retries[b.Endpoint]
	case forgetsAttempts:
		b.Attempts = 0
	case sharedData:
		for i := range b.Items {
			if d, ok := s.data[b.Items[i].Seq]; ok {
				b.Items[i].Data = d
			}
			s.data[b.Items[i].Seq] = b.Items[i].Data
		}
	case seqPerBatch:
		c := *b
		c.Items = slices.Clone(b.Items)
		s.orig[b.Token] = &c
		for i := range b.Items {
			b.Items[i].Seq = int64(i + 1)
		}
	}
	return b, nil
}

// state returns the inner store's state of ep.
func (s *faultyOutbox) state(ep string) queue.OutboxState {
	sts, _ := s.OutboxStore.Outboxes(context.Background())
	for _, st := range sts {
		if st.Endpoint == ep {
			return st
		}
	}
	return queue.OutboxState{}
}

// original returns b as it was claimed.
func (s *faultyOutbox) original(b *queue.OutboxBatch) *queue.OutboxBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.orig[b.Token]; o != nil && s.fault == seqPerBatch {
		return o
	}
	return b
}

func (s *faultyOutbox) AckOutbox(ctx context.Context, b *queue.OutboxBatch) error {
	if s.fault == ackIgnoresCtx {
		ctx = context.Background()
	}
	err := s.OutboxStore.AckOutbox(ctx, s.original(b))
	if s.fault == ackIgnoresToken && errors.Is(err, queue.ErrLeaseLost) {
		// Take the head from whoever holds it, and remove it.
		nb, cerr := s.OutboxStore.ClaimOutbox(ctx, queue.OutboxClaim{Endpoint: b.Endpoint, Owner: "x", Max: len(b.Items), Now: farFuture, Lease: time.Nanosecond})
		if cerr != nil || nb == nil {
			return err
		}
		return s.OutboxStore.AckOutbox(ctx, nb)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.retries, b.Endpoint)
	s.mu.Unlock()
	if s.fault == ackRemovesAll {
		for {
			nb, err := s.OutboxStore.ClaimOutbox(ctx, queue.OutboxClaim{Endpoint: b.Endpoint, Owner: "x", Max: 1 << 20, Now: farFuture, Lease: time.Nanosecond})
			if err != nil || nb == nil {
				return err
			}
			if err := s.OutboxStore.AckOutbox(ctx, nb); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *faultyOutbox) RetryOutbox(ctx context.Context, b *queue.OutboxBatch, next time.Time, reason string) error {
	if s.fault == retryDueAtOnce {
		next = time.Time{}
	}
	if err := s.OutboxStore.RetryOutbox(ctx, s.original(b), next, reason); err != nil {
		return err
	}
	s.mu.Lock()
	s.retries[b.Endpoint]++
	s.mu.Unlock()
	return nil
}

func (s *faultyOutbox) Outboxes(ctx context.Context) ([]queue.OutboxState, error) {
	sts, err := s.OutboxStore.Outboxes(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range sts {
		switch s.fault {
		case retryNotCounted:
			sts[i].Attempts -= s.retries[sts[i].Endpoint]
		case forgetsAttempts:
			sts[i].Attempts, sts[i].LastError = 0, ""
		case noOwner:
			sts[i].Owner = ""
		}
	}
	if s.fault == unsorted {
		slices.Reverse(sts)
	}
	return sts, err
}

// outboxChecks are the suite's checks by name, but Reopen.
var outboxChecks = map[string]func(t testing.TB, s queue.OutboxStore){
	"RoundTrip": testOutboxRoundTrip, "Order": testOutboxOrder, "Endpoints": testOutboxEndpoints,
	"AppendAllOrNone": testOutboxAppendAllOrNone, "ClaimLimits": testOutboxClaimLimits, "ClaimInvalid": testOutboxClaimInvalid,
	"OneSender": testOutboxOneSender, "LeaseEnd": testOutboxLeaseEnd, "Ack": testOutboxAck,
	"AppendDuringLease": testOutboxAppendDuringLease, "Retry": testOutboxRetry, "Outboxes": testOutboxStates,
	"Copies": testOutboxCopies, "CanceledContext": testOutboxCanceled, "Concurrent": testOutboxConcurrent, "Seq": testOutboxSeq,
}

func TestOutboxChecks(t *testing.T) {
	for name, check := range outboxChecks {
		expect(t, "queue.MemoryStore, "+name, runCheck(func(t testing.TB) { check(t, newFaultyOutbox(noOutboxFault)) }), false)
	}
	for _, c := range []struct {
		what  string
		fault outboxFault
		check string
	}{
		{"a store whose claim takes an unexpired lease", claimTakesLease, "OneSender"},
		{"a store whose claim takes an unexpired lease", claimTakesLease, "Concurrent"},
		{"a store whose AckOutbox empties the outbox", ackRemovesAll, "AppendDuringLease"},
		{"a store whose AckOutbox empties the outbox", ackRemovesAll, "Ack"},
		{"a store whose AckOutbox takes no notice of the token", ackIgnoresToken, "LeaseEnd"},
		{"a store whose RetryOutbox counts no attempt", retryNotCounted, "Retry"},
		{"a store whose RetryOutbox counts no attempt", retryNotCounted, "Outboxes"},
		{"a store whose RetryOutbox makes the endpoint due at once", retryDueAtOnce, "Retry"},
		{"a store whose claim ignores MaxBytes", maxBytesIgnored, "ClaimLimits"},
		{"a store that reverses each endpoint's entries of a call to several", reversedPerCall, "Order"},
		{"a store that reverses each endpoint's entries of a call to several", reversedPerCall, "Endpoints"},
		{"a store that reverses each endpoint's entries of a call to several", reversedPerCall, "Concurrent"},
		{"a store whose AppendOutbox is not all or none", appendNotAtomic, "AppendAllOrNone"},
		{"a store whose claims share Data", sharedData, "Copies"},
		{"a store whose Seq starts again in each batch", seqPerBatch, "Order"},
		{"a store whose Seq starts again in each batch", seqPerBatch, "Seq"},
		{"a store whose Outboxes is not sorted", unsorted, "Outboxes"},
		{"a store whose Outboxes leaves out the owner", noOwner, "Outboxes"},
		{"a store whose claim ignores an ended context", claimIgnoresCtx, "CanceledContext"},
		{"a store whose AckOutbox ignores an ended context", ackIgnoresCtx, "CanceledContext"},
	} {
		s := newFaultyOutbox(c.fault)
		expect(t, c.what+", "+c.check, runCheck(func(t testing.TB) { outboxChecks[c.check](t, s) }), true)
	}
}

func TestOutboxReopenCheck(t *testing.T) {
	same := func(old queue.OutboxStore) queue.OutboxStore { return old }
	for _, c := range []struct {
		what       string
		reopen     func(old queue.OutboxStore) queue.OutboxStore
		endsLeases bool
		wantFail   bool
	}{
		{"a store that keeps everything", same, false, false},
		{"a store that loses everything", func(queue.OutboxStore) queue.OutboxStore { return &queue.MemoryStore{} }, false, true},
		{"a store that forgets attempts", func(old queue.OutboxStore) queue.OutboxStore { return wrapOutbox(old, forgetsAttempts) }, false, true},
		{"a store that loses the owners", func(old queue.OutboxStore) queue.OutboxStore { return wrapOutbox(old, noOwner) }, false, true},
		{"a store that keeps the leases it says it ends", same, true, true},
	} {
		expect(t, c.what, runCheck(func(t testing.TB) {
			testOutboxReopen(t, &queue.MemoryStore{}, c.reopen, c.endsLeases)
		}), c.wantFail)
	}
}
