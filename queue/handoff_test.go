package queue_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mxrelay/mxrelay/queue"
)

// countingStore counts the calls of the runner's paths through a store.
type countingStore struct {
	*queue.MemoryStore
	puts, putLeased, leasedAtPut, claimed, finishClaimed atomic.Int64
}

func (s *countingStore) Put(ctx context.Context, j *queue.Job) error {
	s.puts.Add(1)
	return s.MemoryStore.Put(ctx, j)
}

func (s *countingStore) PutLeased(ctx context.Context, j *queue.Job, r queue.ClaimRequest) (*queue.Job, error) {
	s.putLeased.Add(1)
	got, err := s.MemoryStore.PutLeased(ctx, j, r)
	if got != nil {
		s.leasedAtPut.Add(1)
	}
	return got, err
}

func (s *countingStore) Claim(ctx context.Context, r queue.ClaimRequest) ([]*queue.Job, error) {
	jobs, err := s.MemoryStore.Claim(ctx, r)
	s.claimed.Add(int64(len(jobs)))
	return jobs, err
}

func (s *countingStore) FinishClaim(ctx context.Context, j *queue.Job, r queue.ClaimRequest) ([]*queue.Job, error) {
	jobs, err := s.MemoryStore.FinishClaim(ctx, j, r)
	s.finishClaimed.Add(int64(len(jobs)))
	return jobs, err
}

// TestEnqueueLeasesAtPut: with an idle worker, Enqueue leases the job in
// its Put and that worker delivers it, once, with no Claim; the Enqueued
// hook runs before the attempt.
func TestEnqueueLeasesAtPut(t *testing.T) {
	s := &countingStore{MemoryStore: &queue.MemoryStore{}}
	var mu sync.Mutex
	var events []string
	delivered := make(chan string, 10)
	q := &queue.Queue{Store: s, Workers: 2,
		Deliverer: queue.DelivererFunc(func(ctx context.Context, j *queue.Job) []queue.Outcome {
			mu.Lock()
			events = append(events, "attempt "+j.ID)
			mu.Unlock()
			return queue.Outcomes(j, queue.Delivered, "250 ok")
		}),
		Hooks: queue.Hooks{
			Enqueued: func(j *queue.Job) {
				mu.Lock()
				events = append(events, "enqueued "+j.ID)
				mu.Unlock()
			},
			Delivered: func(j *queue.Job, r queue.Recipient) { delivered <- j.ID },
		},
	}
	// A first job, stored before Run starts, is claimed: Run is then
	// running, with a worker idle.
	warm := enqueue(t, q, "", "w@example.com")
	start(t, q)
	if got := <-delivered; got != warm {
		t.Fatalf("delivered %s, want %s", got, warm)
	}
	waitFor(t, "empty queue", func() bool { return stats(t, q) == queue.Stats{} })
	puts, claimed := s.puts.Load(), s.claimed.Load()
	mu.Lock()
	events = nil
	mu.Unlock()

	id := enqueue(t, q, "", "r@example.com")
	if got := <-delivered; got != id {
		t.Fatalf("delivered %s, want %s", got, id)
	}
	waitFor(t, "empty queue", func() bool { return stats(t, q) == queue.Stats{} })
	if s.leasedAtPut.Load() != 1 || s.puts.Load() != puts || s.claimed.Load() != claimed {
		t.Fatalf("leased at Put %d, Puts %d more, jobs claimed %d more; want 1, 0, 0",
			s.leasedAtPut.Load(), s.puts.Load()-puts, s.claimed.Load()-claimed)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"enqueued " + id, "attempt " + id}; fmt.Sprint(events) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", events, want)
	}
	select {
	case again := <-delivered:
		t.Fatalf("%s delivered twice", again)
	default:
	}
}

// TestEnqueueLeaseAtPutKeepsCaps: jobs leased at Put count against
// PerKey and Workers like claimed ones; held and later jobs are not
// leased at Put; the others wait and are all delivered, each once.
func TestEnqueueLeaseAtPutKeepsCaps(t *testing.T) {
	s := &countingStore{MemoryStore: &queue.MemoryStore{}}
	release := make(chan struct{})
	started := make(chan string, 100)
	var mu sync.Mutex
	count := map[string]int{}
	q := &queue.Queue{Store: s, Workers: 3, PerKey: 2,
		Deliverer: queue.DelivererFunc(func(ctx context.Context, j *queue.Job) []queue.Outcome {
			if j.RoutingKey == "warm.example" {
				return queue.Outcomes(j, queue.Delivered, "250 ok")
			}
			started <- j.RoutingKey
			<-release
			mu.Lock()
			count[j.ID]++
			mu.Unlock()
			return queue.Outcomes(j, queue.Delivered, "250 ok")
		}),
	}
	enqueue(t, q, "", "w@warm.example") // claimed once Run runs
	start(t, q)
	waitFor(t, "Run to deliver the first job", func() bool { return stats(t, q) == queue.Stats{} })
	ctx := context.Background()
	held := queue.NewJob("", []string{"h@busy.example"}, []byte("x"))
	held.Held = true
	if _, err := q.Enqueue(ctx, held); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 5 {
		ids = append(ids, enqueue(t, q, "", fmt.Sprintf("r%d@busy.example", i)))
	}
	ids = append(ids, enqueue(t, q, "", "r@quiet.example"))
	// Two of busy.example and the quiet one start: the per-key cap and the
	// worker cap are both reached.
	seen := map[string]int{}
	for range 3 {
		seen[<-started]++
	}
	if seen["busy.example"] != 2 || seen["quiet.example"] != 1 {
		t.Fatalf("in flight %v, want 2 of busy.example and 1 of quiet.example", seen)
	}
	if st := stats(t, q); st.Active != 3 || st.Queued != 3 || st.Held != 1 {
		t.Fatalf("stats %+v with every worker busy, want 3 active, 3 queued, 1 held", st)
	}
	if s.leasedAtPut.Load() == 0 {
		t.Fatal("no job leased at Put")
	}
	select {
	case k := <-started:
		t.Fatalf("a fourth attempt (%s) started with 3 workers", k)
	default:
	}
	close(release)
	waitFor(t, "every job but the held one delivered", func() bool { return stats(t, q) == queue.Stats{Held: 1} })
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		if count[id] != 1 {
			t.Errorf("job %s delivered %d times, want once", id, count[id])
		}
	}
	if len(count) != len(ids) {
		t.Errorf("%d jobs delivered, want %d (the held one not)", len(count), len(ids))
	}
}
