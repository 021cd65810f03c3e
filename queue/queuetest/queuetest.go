package queuetest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// t0 is the suite's clock origin: millisecond precision, not local time.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 6_000_000, time.UTC)

// StoreOptions tune TestStore. The zero value runs every check that needs
// no help from the caller.
type StoreOptions struct {
	// Reopen, when set, closes old and returns a new store on the same
	// storage, as a restarted process would open it: the same file, the
	// same database schema. The suite then checks that jobs, their data,
	// attempts, holds and leases survive closing and opening again.
	// Without it, that subtest is skipped. Leave it nil for a store that
	// keeps nothing once closed, such as queue.MemoryStore.
	Reopen func(t *testing.T, old queue.Store) queue.Store

	// ReopenEndsLeases says that the store ends every lease when it is
	// opened, as queue.Store allows for a store whose storage no other
	// process can open at the same time (queue/boltstore): the jobs that
	// were leased are then due at once, and their old tokens are stale.
	// Without it, Reopen must keep each lease's owner, token and end.
	ReopenEndsLeases bool
}

// TestStore runs the conformance suite against stores made by newStore,
// one new empty store per subtest. Give at most one StoreOptions; with
// none, the suite runs as with the zero StoreOptions.
func TestStore(t *testing.T, newStore func(t *testing.T) queue.Store, opts ...StoreOptions) {
	var o StoreOptions
	if len(opts) > 0 {
		o = opts[len(opts)-1]
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s queue.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"PutErrors", testPutErrors},
		{"NotFound", testNotFound},
		{"ClaimOrder", testClaimOrder},
		{"NotDueYet", testNotDueYet},
		{"LeaseExpiry", testLeaseExpiry},
		{"Fencing", testFencing},
		{"FinishDone", testFinishDone},
		{"FinishReschedule", testFinishReschedule},
		{"HoldRelease", testHoldRelease},
		{"HoldActive", testHoldActive},
		{"Cancel", testCancel},
		{"RetryDue", func(t *testing.T, s queue.Store) { testRetryDue(t, s) }},
		{"RetryHeld", func(t *testing.T, s queue.Store) { testRetryHeld(t, s) }},
		{"RetryActive", func(t *testing.T, s queue.Store) { testRetryActive(t, s) }},
		{"UnknownAction", func(t *testing.T, s queue.Store) { testUnknownAction(t, s) }},
		{"ListPaging", testListPaging},
		{"Stats", testStats},
		{"PerKeyLimit", testPerKeyLimit},
		{"NoStarvation", testNoStarvation},
		{"ConcurrentClaim", testConcurrentClaim},
		{"ConcurrentPut", testConcurrentPut},
		{"CanceledContext", func(t *testing.T, s queue.Store) { testCanceledContext(t, s) }},
		{"ExpiredLeaseOrder", func(t *testing.T, s queue.Store) { testExpiredLeaseOrder(t, s) }},
		{"PutLeased", testPutLeased},
		{"PutLeasedExpiry", testPutLeasedExpiry},
		{"FinishClaim", testFinishClaim},
		{"PutLeasedReopen", func(t *testing.T, s queue.Store) {
			if o.Reopen == nil {
				t.Skip("no StoreOptions.Reopen: leases given at Put are not checked across reopening")
			}
			testPutLeasedReopen(t, s, func(old queue.Store) queue.Store { return o.Reopen(t, old) }, o.ReopenEndsLeases)
		}},
		{"Reopen", func(t *testing.T, s queue.Store) {
			if o.Reopen == nil {
				t.Skip("no StoreOptions.Reopen: durability across close and reopen is not checked")
			}
			testReopen(t, s, func(old queue.Store) queue.Store { return o.Reopen(t, old) }, o.ReopenEndsLeases)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t)) })
	}
}

// job returns a due job number i (ids sort by i) for key.
func job(i int, key string) *queue.Job {
	j := queue.NewJob("sender@example.org",
		[]string{fmt.Sprintf("r%d@%s", i, key), fmt.Sprintf("s%d@%s", i, key)},
		[]byte(fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i)))
	j.ID = fmt.Sprintf("job-%05d", i)
	j.Created = t0
	j.NextAttempt = t0
	j.RoutingKey = key
	return j
}

func put(t testing.TB, s queue.Store, jobs ...*queue.Job) {
	t.Helper()
	for _, j := range jobs {
		if err := s.Put(context.Background(), j); err != nil {
			t.Fatalf("Put(%s): %v", j.ID, err)
		}
	}
}

func claim(t testing.TB, s queue.Store, r queue.ClaimRequest) []*queue.Job {
	t.Helper()
	if r.Owner == "" {
		r.Owner = "w1"
	}
	if r.Lease == 0 {
		r.Lease = time.Minute
	}
	jobs, err := s.Claim(context.Background(), r)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	for _, j := range jobs {
		if j.Lease.Token == "" || j.Lease.Owner != r.Owner || !j.Lease.Until.Equal(r.Now.Add(r.Lease)) {
			t.Fatalf("Claim: job %s has lease %+v, want owner %q until %v", j.ID, j.Lease, r.Owner, r.Now.Add(r.Lease))
		}
	}
	return jobs
}

func ids(jobs []*queue.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func get(t testing.TB, s queue.Store, id string) *queue.Job {
	t.Helper()
	j, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return j
}

func finish(t testing.TB, s queue.Store, j *queue.Job) {
	t.Helper()
	if err := s.Finish(context.Background(), j); err != nil {
		t.Fatalf("Finish(%s): %v", j.ID, err)
	}
}

func set(t testing.TB, s queue.Store, id string, a queue.Action) {
	t.Helper()
	if err := s.Set(context.Background(), id, a); err != nil {
		t.Fatalf("Set(%s, %d): %v", id, a, err)
	}
}

func stats(t testing.TB, s queue.Store) queue.Stats {
	t.Helper()
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return st
}

// sameJob reports the first difference between two jobs, ignoring Lease
// and, if noMsg, Message.
func sameJob(got, want *queue.Job, noMsg bool) error {
	switch {
	case got.ID != want.ID:
		return fmt.Errorf("field ID %q, want %q", got.ID, want.ID)
	case got.From != want.From:
		return fmt.Errorf("field From %q, want %q", got.From, want.From)
	case !slices.Equal(got.Recipients, want.Recipients):
		return fmt.Errorf("field Recipients %+v, want %+v", got.Recipients, want.Recipients)
	case !noMsg && string(got.Message) != string(want.Message):
		return fmt.Errorf("field Message %q, want %q", got.Message, want.Message)
	case noMsg && got.Message != nil:
		return fmt.Errorf("field Message %q, want nil from List", got.Message)
	case !got.Created.Equal(want.Created):
		return fmt.Errorf("field Created %v, want %v", got.Created, want.Created)
	case got.Attempts != want.Attempts:
		return fmt.Errorf("field Attempts %d, want %d", got.Attempts, want.Attempts)
	case !got.NextAttempt.Equal(want.NextAttempt):
		return fmt.Errorf("field NextAttempt %v, want %v", got.NextAttempt, want.NextAttempt)
	case got.LastError != want.LastError:
		return fmt.Errorf("field LastError %q, want %q", got.LastError, want.LastError)
	case got.Held != want.Held:
		return fmt.Errorf("field Held %v, want %v", got.Held, want.Held)
	case got.RoutingKey != want.RoutingKey:
		return fmt.Errorf("field RoutingKey %q, want %q", got.RoutingKey, want.RoutingKey)
	case !maps.Equal(got.Metadata, want.Metadata):
		return fmt.Errorf("field Metadata %v, want %v", got.Metadata, want.Metadata)
	}
	return nil
}

// sameLease reports whether two leases are equal, times compared as
// instants.
func sameLease(a, b queue.Lease) bool {
	return a.Owner == b.Owner && a.Token == b.Token && a.Until.Equal(b.Until)
}
