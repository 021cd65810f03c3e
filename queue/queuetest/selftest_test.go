package queuetest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// These tests check the checks: each runs one of the suite's checks
// against a store with a known fault and expects it to fail, and against a
// store without that fault and expects it to pass.

// fakeT records failures instead of failing the test that runs the check.
// It has the methods of testing.TB that the checks use; any other would
// panic on the nil embedded TB.
type fakeT struct {
	testing.TB
	mu     sync.Mutex
	failed bool
	log    []string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = true
	f.log = append(f.log, fmt.Sprintf(format, args...))
}

func (f *fakeT) Error(args ...any) { f.Errorf("%s", fmt.Sprint(args...)) }

func (f *fakeT) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

func (f *fakeT) Fatal(args ...any) {
	f.Error(args...)
	runtime.Goexit()
}

func (f *fakeT) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// runCheck runs check with a fakeT in a goroutine of its own (Fatal ends
// that goroutine) and returns what it recorded.
func runCheck(check func(t testing.TB)) *fakeT {
	f := &fakeT{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(f)
	}()
	<-done
	return f
}

// expect fails t unless the check's outcome is the one wanted.
func expect(t *testing.T, what string, f *fakeT, wantFail bool) {
	t.Helper()
	switch {
	case wantFail && !f.Failed():
		t.Errorf("%s: the check passed, want it to fail", what)
	case !wantFail && f.Failed():
		t.Errorf("%s: the check failed, want it to pass:\n%s", what, strings.Join(f.log, "\n"))
	}
}

// ---- Claim order ----

// listStore is a plain Store for the order check: a map searched in full
// by each Claim. With byNextAttempt it makes the mistake the check is
// there to catch: it orders claims by NextAttempt alone, ignoring that an
// expired lease is due at its end.
type listStore struct {
	byNextAttempt bool

	mu   sync.Mutex
	jobs map[string]*queue.Job
	seq  int
}

func (s *listStore) Put(ctx context.Context, j *queue.Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jobs == nil {
		s.jobs = map[string]*queue.Job{}
	}
	if _, ok := s.jobs[j.ID]; ok {
		return queue.ErrExists
	}
	c := j.Clone()
	c.Lease = queue.Lease{}
	s.jobs[j.ID] = c
	return nil
}

func (s *listStore) Get(ctx context.Context, id string) (*queue.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return nil, queue.ErrNotFound
	}
	return j.Clone(), nil
}

func (s *listStore) Claim(ctx context.Context, r queue.ClaimRequest) ([]*queue.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dueAt := func(j *queue.Job) time.Time {
		if j.Lease.Token != "" && !s.byNextAttempt {
			return j.Lease.Until
		}
		return j.NextAttempt
	}
	var due []*queue.Job
	active := map[string]int{}
	for _, j := range s.jobs {
		switch {
		case j.Lease.Token != "" && j.Lease.Until.After(r.Now):
			active[j.RoutingKey]++
		case !j.Held && !j.NextAttempt.After(r.Now):
			due = append(due, j)
		}
	}
	slices.SortFunc(due, func(a, b *queue.Job) int {
		if c := dueAt(a).Compare(dueAt(b)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	var out []*queue.Job
	for _, j := range due {
		if len(out) == r.Max {
			break
		}
		if r.PerKey > 0 && active[j.RoutingKey] >= r.PerKey {
			continue
		}
		active[j.RoutingKey]++
		s.seq++
		j.Lease = queue.Lease{Owner: r.Owner, Token: fmt.Sprint("t", s.seq), Until: r.Now.Add(r.Lease)}
		out = append(out, j.Clone())
	}
	return out, nil
}

func (s *listStore) Finish(ctx context.Context, j *queue.Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.jobs[j.ID]
	switch {
	case !ok:
		return queue.ErrNotFound
	case cur.Lease.Token == "" || cur.Lease.Token != j.Lease.Token:
		return queue.ErrLeaseLost
	case j.Done():
		delete(s.jobs, j.ID)
		return nil
	}
	cur.Recipients = slices.Clone(j.Recipients)
	cur.Attempts, cur.NextAttempt, cur.LastError = j.Attempts, j.NextAttempt, j.LastError
	cur.Lease = queue.Lease{}
	return nil
}

func (s *listStore) Set(ctx context.Context, id string, a queue.Action) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return queue.ErrNotFound
	}
	switch a {
	case queue.ActionHold:
		j.Held = true
	case queue.ActionRelease:
		j.Held = false
	case queue.ActionCancel:
		delete(s.jobs, id)
	case queue.ActionRetry:
		j.NextAttempt = time.Time{}
	}
	return nil
}

func (s *listStore) List(ctx context.Context, r queue.ListRequest) ([]*queue.Job, string, error) {
	return nil, "", errors.New("listStore: List is not implemented")
}

func (s *listStore) Stats(ctx context.Context) (queue.Stats, error) {
	return queue.Stats{}, errors.New("listStore: Stats is not implemented")
}

func TestExpiredLeaseOrderCheck(t *testing.T) {
	expect(t, "a store that orders by due time",
		runCheck(func(t testing.TB) { testExpiredLeaseOrder(t, &listStore{}) }), false)
	expect(t, "a store that orders by NextAttempt alone",
		runCheck(func(t testing.TB) { testExpiredLeaseOrder(t, &listStore{byNextAttempt: true}) }), true)
	expect(t, "queue.MemoryStore",
		runCheck(func(t testing.TB) { testExpiredLeaseOrder(t, &queue.MemoryStore{}) }), false)
}

// ---- Ended contexts ----

// ctxFault is a way of mishandling a context that has ended.
type ctxFault int

const (
	ignoreCtx   ctxFault = iota + 1 // run the operation as if ctx were alive
	wrongError                      // refuse, with an error that does not wrap ctx.Err()
	actThenFail                     // run the operation, then return ctx.Err()
)

// ctxStore is a MemoryStore whose method named faulty mishandles ended
// contexts in the way fault says.
type ctxStore struct {
	queue.MemoryStore
	faulty string
	fault  ctxFault
}

func (s *ctxStore) do(ctx context.Context, method string, op func(ctx context.Context) error) error {
	if method != s.faulty || ctx.Err() == nil {
		return op(ctx)
	}
	switch s.fault {
	case ignoreCtx:
		return op(context.Background())
	case wrongError:
		return errors.New("the context has ended")
	default:
		_ = op(context.Background())
		return ctx.Err()
	}
}

func (s *ctxStore) Put(ctx context.Context, j *queue.Job) error {
	return s.do(ctx, "Put", func(ctx context.Context) error { return s.MemoryStore.Put(ctx, j) })
}

func (s *ctxStore) Get(ctx context.Context, id string) (j *queue.Job, err error) {
	err = s.do(ctx, "Get", func(ctx context.Context) error { j, err = s.MemoryStore.Get(ctx, id); return err })
	return j, err
}

func (s *ctxStore) Claim(ctx context.Context, r queue.ClaimRequest) (jobs []*queue.Job, err error) {
	err = s.do(ctx, "Claim", func(ctx context.Context) error { jobs, err = s.MemoryStore.Claim(ctx, r); return err })
	return jobs, err
}

func (s *ctxStore) Finish(ctx context.Context, j *queue.Job) error {
	return s.do(ctx, "Finish", func(ctx context.Context) error { return s.MemoryStore.Finish(ctx, j) })
}

func (s *ctxStore) Set(ctx context.Context, id string, a queue.Action) error {
	return s.do(ctx, "Set", func(ctx context.Context) error { return s.MemoryStore.Set(ctx, id, a) })
}

func (s *ctxStore) List(ctx context.Context, r queue.ListRequest) (jobs []*queue.Job, next string, err error) {
	err = s.do(ctx, "List", func(ctx context.Context) error { jobs, next, err = s.MemoryStore.List(ctx, r); return err })
	return jobs, next, err
}

func (s *ctxStore) Stats(ctx context.Context) (st queue.Stats, err error) {
	err = s.do(ctx, "Stats", func(ctx context.Context) error { st, err = s.MemoryStore.Stats(ctx); return err })
	return st, err
}

func TestCanceledContextCheck(t *testing.T) {
	expect(t, "queue.MemoryStore",
		runCheck(func(t testing.TB) { testCanceledContext(t, &ctxStore{}) }), false)
	names := map[ctxFault]string{ignoreCtx: "ignores", wrongError: "hides", actThenFail: "acts on"}
	for _, method := range []string{"Put", "Get", "Claim", "Finish", "Set", "List", "Stats"} {
		faults := []ctxFault{ignoreCtx, wrongError, actThenFail}
		if method == "Get" || method == "List" || method == "Stats" {
			faults = faults[:2] // acting changes nothing: there is no fault to see
		}
		for _, fault := range faults {
			s := &ctxStore{faulty: method, fault: fault}
			name := names[fault]
			expect(t, fmt.Sprintf("a store whose %s %s an ended context", method, name),
				runCheck(func(t testing.TB) { testCanceledContext(t, s) }), true)
		}
	}
}

// ---- Reopening ----

// tokenStore adds a prefix to the lease tokens of the store it wraps, so
// that stores copied from one another never hand out the same token.
type tokenStore struct {
	queue.Store
	prefix string
}

func (s *tokenStore) mark(jobs ...*queue.Job) {
	for _, j := range jobs {
		if j != nil && j.Lease.Token != "" {
			j.Lease.Token = s.prefix + j.Lease.Token
		}
	}
}

func (s *tokenStore) Get(ctx context.Context, id string) (*queue.Job, error) {
	j, err := s.Store.Get(ctx, id)
	s.mark(j)
	return j, err
}

func (s *tokenStore) Claim(ctx context.Context, r queue.ClaimRequest) ([]*queue.Job, error) {
	jobs, err := s.Store.Claim(ctx, r)
	s.mark(jobs...)
	return jobs, err
}

func (s *tokenStore) List(ctx context.Context, r queue.ListRequest) ([]*queue.Job, string, error) {
	jobs, next, err := s.Store.List(ctx, r)
	s.mark(jobs...)
	return jobs, next, err
}

func (s *tokenStore) Finish(ctx context.Context, j *queue.Job) error {
	c := j.Clone()
	token, ok := strings.CutPrefix(c.Lease.Token, s.prefix)
	if !ok {
		token = "not issued by this store"
	}
	c.Lease.Token = token
	return s.Store.Finish(ctx, c)
}

// copyReopen returns a reopen function that copies every job into a new
// MemoryStore with Put, which drops leases: a store that ends its leases
// when it opens. change, if set, alters each job on the way.
func copyReopen(t testing.TB, change func(*queue.Job)) func(queue.Store) queue.Store {
	n := 0
	return func(old queue.Store) queue.Store {
		n++
		s := &tokenStore{Store: &queue.MemoryStore{}, prefix: fmt.Sprintf("open%d.", n)}
		list, _, err := old.List(context.Background(), queue.ListRequest{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range list {
			j := get(t, old, l.ID)
			if change != nil {
				change(j)
			}
			put(t, s, j)
		}
		return s
	}
}

func TestReopenCheck(t *testing.T) {
	same := func(old queue.Store) queue.Store { return old }
	empty := func(queue.Store) queue.Store { return &queue.MemoryStore{} }
	for _, tc := range []struct {
		what       string
		reopen     func(t testing.TB) func(queue.Store) queue.Store
		endsLeases bool
		wantFail   bool
	}{
		{"a store that keeps everything", func(testing.TB) func(queue.Store) queue.Store { return same }, false, false},
		{"a store that keeps its leases, checked as one that ends them",
			func(testing.TB) func(queue.Store) queue.Store { return same }, true, true},
		{"a store that ends its leases", func(t testing.TB) func(queue.Store) queue.Store { return copyReopen(t, nil) }, true, false},
		{"a store that ends its leases, checked as one that keeps them",
			func(t testing.TB) func(queue.Store) queue.Store { return copyReopen(t, nil) }, false, true},
		{"a store that loses attempts", func(t testing.TB) func(queue.Store) queue.Store {
			return copyReopen(t, func(j *queue.Job) { j.Attempts = 0 })
		}, true, true},
		{"a store that loses metadata", func(t testing.TB) func(queue.Store) queue.Store {
			return copyReopen(t, func(j *queue.Job) { j.Metadata = nil })
		}, true, true},
		{"a store that loses holds", func(t testing.TB) func(queue.Store) queue.Store {
			return copyReopen(t, func(j *queue.Job) { j.Held = false })
		}, true, true},
		{"a store that loses everything", func(testing.TB) func(queue.Store) queue.Store { return empty }, true, true},
		{"a store that reuses tokens", func(t testing.TB) func(queue.Store) queue.Store {
			return func(old queue.Store) queue.Store {
				r := copyReopen(t, nil)(old).(*tokenStore)
				r.prefix = "" // the MemoryStore counts from 1 again
				return r
			}
		}, true, true},
	} {
		f := runCheck(func(t testing.TB) {
			s := &tokenStore{Store: &queue.MemoryStore{}, prefix: ""}
			testReopen(t, s, tc.reopen(t), tc.endsLeases)
		})
		expect(t, tc.what, f, tc.wantFail)
	}
}

// ---- Retry now ----

// retryFault is a way of getting Set(ActionRetry), or an unknown action,
// wrong.
type retryFault int

const (
	retryIgnored        retryFault = iota + 1 // accept ActionRetry, change nothing
	retryReleases                             // release a held job too
	retryEndsLease                            // end the lease in flight
	retryResetsAttempts                       // forget Attempts and LastError
	unknownAccepted                           // accept an unknown action as a no-op
)

// retryStore is a MemoryStore whose Set makes the mistake fault names.
type retryStore struct {
	queue.MemoryStore
	fault retryFault
}

func (s *retryStore) Set(ctx context.Context, id string, a queue.Action) error {
	if a != queue.ActionRetry {
		if s.fault == unknownAccepted && (a < queue.ActionHold || a > queue.ActionRetry) {
			return nil
		}
		return s.MemoryStore.Set(ctx, id, a)
	}
	switch s.fault {
	case retryIgnored:
		_, err := s.MemoryStore.Get(ctx, id)
		return err
	case retryReleases:
		if err := s.MemoryStore.Set(ctx, id, queue.ActionRelease); err != nil {
			return err
		}
	case retryEndsLease:
		j, err := s.MemoryStore.Get(ctx, id)
		if err != nil {
			return err
		}
		if j.Lease.Token != "" {
			j.NextAttempt = time.Time{}
			return s.MemoryStore.Finish(ctx, j)
		}
	case retryResetsAttempts:
		j, err := s.MemoryStore.Get(ctx, id)
		if err != nil {
			return err
		}
		if j.Lease.Token == "" {
			if err := s.MemoryStore.Set(ctx, id, queue.ActionCancel); err != nil {
				return err
			}
			j.Attempts, j.LastError = 0, ""
			return s.MemoryStore.Put(ctx, j)
		}
	}
	return s.MemoryStore.Set(ctx, id, a)
}

func TestRetryChecks(t *testing.T) {
	checks := []struct {
		name  string
		check func(t testing.TB, s queue.Store)
	}{
		{"RetryDue", testRetryDue},
		{"RetryHeld", testRetryHeld},
		{"RetryActive", testRetryActive},
		{"UnknownAction", testUnknownAction},
	}
	for _, c := range checks {
		expect(t, c.name+" of queue.MemoryStore",
			runCheck(func(t testing.TB) { c.check(t, &retryStore{}) }), false)
	}
	for _, tc := range []struct {
		what  string
		fault retryFault
		check func(t testing.TB, s queue.Store)
	}{
		{"a store whose retry changes nothing", retryIgnored, testRetryDue},
		{"a store whose retry releases a held job", retryReleases, testRetryHeld},
		{"a store whose retry ends the lease in flight", retryEndsLease, testRetryActive},
		{"a store whose retry forgets the attempts", retryResetsAttempts, testRetryDue},
		{"a store that accepts an unknown action", unknownAccepted, testUnknownAction},
	} {
		s := &retryStore{fault: tc.fault}
		expect(t, tc.what, runCheck(func(t testing.TB) { tc.check(t, s) }), true)
	}
}
