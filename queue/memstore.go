package queue

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryStore is a Store that keeps jobs in the process's memory: for tests,
// and for applications that accept losing the queue when the process exits.
// Its "durable on return" means only "visible to every later call". The zero
// value is ready to use.
type MemoryStore struct {
	mu     sync.Mutex
	jobs   map[string]*memEntry
	keys   map[string]*memKey
	seq    uint64
	closed bool
	sup    map[suppressionKey]Suppression // the suppression list, by (Address, Scope)
	hist   *memHistory                    // the message history; nil until the first Keep
	outbox map[string]*memOutbox          // the webhook outboxes, by endpoint
}

type memEntry struct {
	job   *Job
	due   time.Time // position in its key's heap
	index int       // in the heap; -1 when not there (held)
}

// memKey holds one routing key's due jobs (a heap by due time) and its
// leased jobs.
type memKey struct {
	due    memHeap
	leased map[string]*memEntry
}

type memHeap []*memEntry

func (h memHeap) Len() int { return len(h) }
func (h memHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].job.ID < h[j].job.ID
}
func (h memHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *memHeap) Push(x any) { e := x.(*memEntry); e.index = len(*h); *h = append(*h, e) }
func (h *memHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}

var (
	_ Store         = (*MemoryStore)(nil)
	_ PutLeaser     = (*MemoryStore)(nil)
	_ FinishClaimer = (*MemoryStore)(nil)
)

func (s *MemoryStore) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed {
		return ErrClosed
	}
	if s.jobs == nil {
		s.jobs = make(map[string]*memEntry)
		s.keys = make(map[string]*memKey)
	}
	return nil
}

func (s *MemoryStore) key(k string) *memKey {
	mk := s.keys[k]
	if mk == nil {
		mk = &memKey{leased: make(map[string]*memEntry)}
		s.keys[k] = mk
	}
	return mk
}

func (s *MemoryStore) schedule(e *memEntry, at time.Time) {
	mk := s.key(e.job.RoutingKey)
	e.due = at
	if e.index >= 0 {
		heap.Fix(&mk.due, e.index)
		return
	}
	heap.Push(&mk.due, e)
}

func (s *MemoryStore) unschedule(e *memEntry) {
	if e.index >= 0 {
		heap.Remove(&s.keys[e.job.RoutingKey].due, e.index)
	}
}

func (s *MemoryStore) dropKeyIfEmpty(k string) {
	if mk := s.keys[k]; mk != nil && len(mk.due) == 0 && len(mk.leased) == 0 {
		delete(s.keys, k)
	}
}

// Put implements Store.
func (s *MemoryStore) Put(ctx context.Context, job *Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.put(ctx, job)
	return err
}

// put stores a copy of job and returns its entry; s.mu is held.
func (s *MemoryStore) put(ctx context.Context, job *Job) (*memEntry, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if job == nil || job.ID == "" {
		return nil, fmt.Errorf("%w: no id", ErrInvalid)
	}
	if _, ok := s.jobs[job.ID]; ok {
		return nil, fmt.Errorf("%w: %s", ErrExists, job.ID)
	}
	e := &memEntry{job: job.Clone(), index: -1}
	e.job.Lease = Lease{}
	s.jobs[job.ID] = e
	if !e.job.Held {
		s.schedule(e, e.job.NextAttempt)
	}
	return e, nil
}

// PutLeased implements PutLeaser.
func (s *MemoryStore) PutLeased(ctx context.Context, job *Job, r ClaimRequest) (*Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.put(ctx, job)
	if err != nil {
		return nil, err
	}
	if e.job.Held || e.job.NextAttempt.After(r.Now) {
		return nil, nil
	}
	mk := s.keys[e.job.RoutingKey]
	if r.PerKey > 0 && mk.activeLeases(r.Now) >= r.PerKey {
		return nil, nil
	}
	s.seq++
	e.job.Lease = Lease{Owner: r.Owner, Token: fmt.Sprintf("m%d", s.seq), Until: r.Now.Add(r.Lease)}
	mk.leased[e.job.ID] = e
	s.schedule(e, e.job.Lease.Until) // an expired lease makes it due again
	return e.job.Clone(), nil
}

// activeLeases counts the key's leases that end after now.
func (mk *memKey) activeLeases(now time.Time) int {
	n := 0
	for _, e := range mk.leased {
		if e.job.Lease.Until.After(now) {
			n++
		}
	}
	return n
}

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, id string) (*Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	e, ok := s.jobs[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return e.job.Clone(), nil
}

// Claim implements Store.
func (s *MemoryStore) Claim(ctx context.Context, r ClaimRequest) ([]*Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	return s.claim(r), nil
}

// claim leases up to r.Max due jobs; s.mu is held.
func (s *MemoryStore) claim(r ClaimRequest) []*Job {
	if r.Max <= 0 {
		return nil
	}
	// Keys whose earliest job is due, earliest first; each key's budget
	// under the per-key limit.
	type cand struct {
		k      string
		mk     *memKey
		budget int
	}
	var cands []cand
	for k, mk := range s.keys {
		if len(mk.due) == 0 || mk.due[0].due.After(r.Now) {
			continue
		}
		budget := r.Max
		if r.PerKey > 0 {
			budget = min(budget, r.PerKey-mk.activeLeases(r.Now))
		}
		if budget > 0 {
			cands = append(cands, cand{k, mk, budget})
		}
	}
	var out []*Job
	for len(out) < r.Max && len(cands) > 0 {
		// The key with the earliest due job goes next.
		best := 0
		for i := range cands {
			if (memHeap{cands[i].mk.due[0], cands[best].mk.due[0]}).Less(0, 1) {
				best = i
			}
		}
		c := &cands[best]
		e := c.mk.due[0]
		s.seq++
		e.job.Lease = Lease{Owner: r.Owner, Token: fmt.Sprintf("m%d", s.seq), Until: r.Now.Add(r.Lease)}
		c.mk.leased[e.job.ID] = e
		s.schedule(e, e.job.Lease.Until) // an expired lease makes it due again
		out = append(out, e.job.Clone())
		c.budget--
		if c.budget == 0 || c.mk.due[0].due.After(r.Now) {
			cands = slices.Delete(cands, best, best+1)
		}
	}
	return out
}

// Finish implements Store.
func (s *MemoryStore) Finish(ctx context.Context, job *Job) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	return s.finish(job)
}

// FinishClaim implements FinishClaimer.
func (s *MemoryStore) FinishClaim(ctx context.Context, job *Job, r ClaimRequest) ([]*Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := s.finish(job); err != nil {
		return nil, err
	}
	return s.claim(r), nil
}

// finish records an attempt; s.mu is held.
func (s *MemoryStore) finish(job *Job) error {
	e, ok := s.jobs[job.ID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, job.ID)
	}
	if e.job.Lease.Token == "" || e.job.Lease.Token != job.Lease.Token {
		return fmt.Errorf("%w: job %s", ErrLeaseLost, job.ID)
	}
	k := e.job.RoutingKey
	delete(s.keys[k].leased, job.ID)
	if job.Done() {
		s.unschedule(e)
		delete(s.jobs, job.ID)
		s.dropKeyIfEmpty(k)
		return nil
	}
	e.job.Recipients = append([]Recipient(nil), job.Recipients...)
	e.job.Attempts = job.Attempts
	e.job.NextAttempt = job.NextAttempt
	e.job.LastError = job.LastError
	e.job.Lease = Lease{}
	if e.job.Held {
		s.unschedule(e)
		s.dropKeyIfEmpty(k)
	} else {
		s.schedule(e, e.job.NextAttempt)
	}
	return nil
}

// Set implements Store.
func (s *MemoryStore) Set(ctx context.Context, id string, a Action) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	e, ok := s.jobs[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	k := e.job.RoutingKey
	switch a {
	case ActionHold:
		e.job.Held = true
		s.unschedule(e)
	case ActionRelease:
		if e.job.Held {
			e.job.Held = false
			at := e.job.NextAttempt
			if e.job.Lease.Token != "" {
				at = e.job.Lease.Until
			}
			s.schedule(e, at)
		}
	case ActionRetry:
		e.job.NextAttempt = time.Time{}
		if !e.job.Held && e.job.Lease.Token == "" {
			s.schedule(e, e.job.NextAttempt)
		}
		// A held job is scheduled at its NextAttempt when released; a
		// leased one stays due at its lease's end.
	case ActionCancel:
		s.unschedule(e)
		delete(s.key(k).leased, id)
		delete(s.jobs, id)
	default:
		return fmt.Errorf("%w: unknown action %d", ErrInvalid, a)
	}
	s.dropKeyIfEmpty(k)
	return nil
}

// List implements Store.
func (s *MemoryStore) List(ctx context.Context, r ListRequest) ([]*Job, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, "", err
	}
	limit := r.Limit
	if limit <= 0 {
		limit = 100
	}
	ids := make([]string, 0, len(s.jobs))
	for id, e := range s.jobs {
		if id > r.After && (r.State == StateAny || StateOf(e.job) == r.State) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	next := ""
	if len(ids) > limit {
		ids = ids[:limit]
		next = ids[limit-1]
	}
	out := make([]*Job, len(ids))
	for i, id := range ids {
		j := *s.jobs[id].job
		j.Message = nil
		out[i] = j.Clone()
	}
	return out, next, nil
}

// Stats implements Store.
func (s *MemoryStore) Stats(ctx context.Context) (Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st Stats
	if err := s.check(ctx); err != nil {
		return st, err
	}
	for _, e := range s.jobs {
		switch StateOf(e.job) {
		case StateQueued:
			st.Queued++
		case StateActive:
			st.Active++
		case StateHeld:
			st.Held++
		}
	}
	return st, nil
}

// Close makes every later call fail with ErrClosed and drops the jobs.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.jobs, s.keys = nil, nil
	return nil
}
