package queue_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// waitFor polls cond for at most 10 s; the deadline only stops a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// start runs q until the test ends and returns a function that stops it and
// returns Run's error.
func start(t *testing.T, q *queue.Queue) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func deliverAll(status queue.RecipientState) queue.DelivererFunc {
	return func(ctx context.Context, j *queue.Job) []queue.Outcome {
		return queue.Outcomes(j, status, "250 ok")
	}
}

func stats(t *testing.T, q *queue.Queue) queue.Stats {
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func enqueue(t *testing.T, q *queue.Queue, from string, to ...string) string {
	t.Helper()
	id, err := q.Enqueue(context.Background(), queue.NewJob(from, to, []byte("Subject: t\r\n\r\nt\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRunDeliversAndWakesAtOnce(t *testing.T) {
	var delivered atomic.Int64
	q := &queue.Queue{
		Store:        &queue.MemoryStore{},
		Deliverer:    deliverAll(queue.Delivered),
		PollInterval: time.Hour, // only wake-ups can deliver within the test
		Hooks:        queue.Hooks{Delivered: func(*queue.Job, queue.Recipient) { delivered.Add(1) }},
	}
	stop := start(t, q)
	time.Sleep(10 * time.Millisecond) // let Run go idle first
	for i := range 20 {
		enqueue(t, q, "a@example.org", fmt.Sprintf("r%d@example.com", i), fmt.Sprintf("s%d@example.net", i))
	}
	waitFor(t, "40 deliveries", func() bool { return delivered.Load() == 40 })
	waitFor(t, "empty queue", func() bool { return stats(t, q) == queue.Stats{} })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
}

// wakingStore is a store that another process also fills.
type wakingStore struct {
	*queue.MemoryStore
	c chan struct{}
}

func (s wakingStore) Wake() <-chan struct{} { return s.c }

func TestRunWaker(t *testing.T) {
	s := wakingStore{&queue.MemoryStore{}, make(chan struct{}, 1)}
	var delivered atomic.Int64
	q := &queue.Queue{Store: s, Deliverer: deliverAll(queue.Delivered), PollInterval: time.Hour,
		Hooks: queue.Hooks{Delivered: func(*queue.Job, queue.Recipient) { delivered.Add(1) }}}
	start(t, q)
	time.Sleep(10 * time.Millisecond)
	// "Another process" puts a job straight into the store.
	j := queue.NewJob("", []string{"a@example.com"}, []byte("x"))
	j.ID, j.RoutingKey, j.Created, j.NextAttempt = "ext", "example.com", time.Now(), time.Now()
	if err := s.Put(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	s.c <- struct{}{}
	waitFor(t, "the delivery", func() bool { return delivered.Load() == 1 })
}

func TestRunRetryBounceDeliver(t *testing.T) {
	var mu sync.Mutex
	var events []string
	ev := func(s string) { mu.Lock(); events = append(events, s); mu.Unlock() }
	attempts := 0
	d := queue.DelivererFunc(func(ctx context.Context, j *queue.Job) []queue.Outcome {
		attempts++
		if attempts == 1 {
			return []queue.Outcome{
				{Recipient: "ok@example.com", Status: queue.Deferred, Reply: "451 later"},
				{Recipient: "no@example.com", Status: queue.Bounced, Reply: "550 no such user"},
				// maybe@example.com: no outcome → deferred
			}
		}
		if got := strings.Join(j.Remaining(), ","); got != "ok@example.com,maybe@example.com" {
			ev("wrong remaining: " + got)
		}
		return queue.Outcomes(j, queue.Delivered, "250 ok")
	})
	q := &queue.Queue{
		Store: &queue.MemoryStore{}, Deliverer: d,
		Retry: &queue.BackoffPolicy{Intervals: []time.Duration{time.Millisecond}},
		Hooks: queue.Hooks{
			AttemptStarted: func(j *queue.Job) { ev(fmt.Sprintf("attempt %d", j.Attempts+1)) },
			Bounced:        func(j *queue.Job, r queue.Recipient) { ev("bounced " + r.Addr + " " + r.Reply) },
			Delivered:      func(j *queue.Job, r queue.Recipient) { ev("delivered " + r.Addr) },
			RetryScheduled: func(j *queue.Job, at time.Time) { ev("retry " + j.LastError) },
		},
	}
	start(t, q)
	enqueue(t, q, "", "ok@example.com", "no@example.com", "maybe@example.com")
	waitFor(t, "empty queue", func() bool { return stats(t, q) == queue.Stats{} })
	mu.Lock()
	defer mu.Unlock()
	want := "attempt 1|bounced no@example.com 550 no such user|retry 451 later|attempt 2|delivered ok@example.com|delivered maybe@example.com"
	if got := strings.Join(events, "|"); got != want {
		t.Fatalf("events:\n%s\nwant\n%s", got, want)
	}
}

func TestRunExpires(t *testing.T) {
	var expired []queue.Recipient
	done := make(chan struct{})
	q := &queue.Queue{
		Store: &queue.MemoryStore{}, Deliverer: deliverAll(queue.Deferred),
		Retry: &queue.BackoffPolicy{Intervals: []time.Duration{time.Millisecond}, Lifetime: time.Nanosecond},
		Hooks: queue.Hooks{Expired: func(j *queue.Job, rs []queue.Recipient) { expired = rs; close(done) }},
	}
	start(t, q)
	enqueue(t, q, "", "a@example.com")
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no expiry")
	}
	if len(expired) != 1 || expired[0].State != queue.Bounced || !strings.Contains(expired[0].Reply, "expired") {
		t.Fatalf("expired: %+v", expired)
	}
	waitFor(t, "empty queue", func() bool { return stats(t, q) == queue.Stats{} })
}

func TestRunLimits(t *testing.T) {
	var mu sync.Mutex
	inflight, maxAll := 0, 0
	perKey, maxKey := map[string]int{}, map[string]int{}
	var order []string
	d := queue.DelivererFunc(func(ctx context.Context, j *queue.Job) []queue.Outcome {
		mu.Lock()
		inflight++
		perKey[j.RoutingKey]++
		maxAll = max(maxAll, inflight)
		maxKey[j.RoutingKey] = max(maxKey[j.RoutingKey], perKey[j.RoutingKey])
		order = append(order, j.RoutingKey)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		inflight--
		perKey[j.RoutingKey]--
		mu.Unlock()
		return queue.Outcomes(j, queue.Delivered, "250 ok")
	})
	q := &queue.Queue{Store: &queue.MemoryStore{}, Deliverer: d, Workers: 3, PerKey: 2}
	for i := range 30 {
		enqueue(t, q, "", fmt.Sprintf("r%d@busy.example", i))
	}
	enqueue(t, q, "", "r@quiet.example")
	start(t, q)
	waitFor(t, "empty queue", func() bool { return stats(t, q) == queue.Stats{} })
	mu.Lock()
	defer mu.Unlock()
	if maxAll > 3 || maxKey["busy.example"] > 2 {
		t.Fatalf("in flight: at most %d overall, %d for one key; limits 3 and 2", maxAll, maxKey["busy.example"])
	}
	// The quiet key, enqueued last, is not starved behind the busy backlog.
	for i, k := range order {
		if k == "quiet.example" {
			if i > 10 {
				t.Fatalf("quiet key delivered %dth of %d", i+1, len(order))
			}
			return
		}
	}
	t.Fatal("quiet key never delivered")
}

func TestHoldReleaseCancel(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	got := map[string]bool{}
	d := queue.DelivererFunc(func(ctx context.Context, j *queue.Job) []queue.Outcome {
		mu.Lock()
		got[j.Metadata["name"]] = true
		mu.Unlock()
		return queue.Outcomes(j, queue.Delivered, "250 ok")
	})
	q := &queue.Queue{Store: &queue.MemoryStore{}, Deliverer: d}
	mk := func(name string, held bool) string {
		j := queue.NewJob("", []string{name + "@example.com"}, []byte("x"))
		j.Held, j.Metadata = held, map[string]string{"name": name}
		id, err := q.Enqueue(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	review := mk("review", true)
	cancelled := mk("cancelled", true)
	if st := stats(t, q); st.Held != 2 {
		t.Fatalf("Stats: %+v", st)
	}
	held, next, err := q.List(ctx, queue.ListRequest{State: queue.StateHeld})
	if err != nil || len(held) != 2 || next != "" {
		t.Fatalf("List held: %d %q %v", len(held), next, err)
	}
	start(t, q)
	mk("plain", false)
	waitFor(t, "plain delivered", func() bool { mu.Lock(); defer mu.Unlock(); return got["plain"] })
	if err := q.Cancel(ctx, cancelled); err != nil {
		t.Fatal(err)
	}
	if err := q.Release(ctx, review); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "review delivered", func() bool { mu.Lock(); defer mu.Unlock(); return got["review"] })
	mu.Lock()
	defer mu.Unlock()
	if got["cancelled"] {
		t.Fatal("a cancelled job was delivered")
	}
	if err := q.Hold(ctx, cancelled); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Hold of a cancelled job: %v", err)
	}
}

func TestDrainLetsAttemptsFinish(t *testing.T) {
	started := make(chan struct{})
	d := queue.DelivererFunc(func(ctx context.Context, j *queue.Job) []queue.Outcome {
		close(started)
		time.Sleep(50 * time.Millisecond) // finishes within Grace
		return queue.Outcomes(j, queue.Delivered, "250 ok")
	})
	q := &queue.Queue{Store: &queue.MemoryStore{}, Deliverer: d, Grace: 10 * time.Second}
	stop := start(t, q)
	enqueue(t, q, "", "a@example.com")
	<-started
	stop()
	if st := stats(t, q); st != (queue.Stats{}) {
		t.Fatalf("after drain: %+v, want the job delivered and gone", st)
	}
}

func TestDrainReleasesAfterGrace(t *testing.T) {
	started := make(chan struct{})
	d := queue.DelivererFunc(func(ctx context.Context, j *queue.Job) []queue.Outcome {
		close(started)
		<-ctx.Done() // a hung attempt
		return queue.Outcomes(j, queue.Deferred, "cancelled")
	})
	q := &queue.Queue{Store: &queue.MemoryStore{}, Deliverer: d, Grace: 20 * time.Millisecond}
	stop := start(t, q)
	id := enqueue(t, q, "", "a@example.com")
	<-started
	stop()
	j, err := q.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if j.Attempts != 0 || j.Lease.Token != "" || j.Recipients[0].State != queue.Pending {
		t.Fatalf("after drain: attempts %d lease %+v state %v; want released untouched", j.Attempts, j.Lease, j.Recipients[0].State)
	}
}

func TestRunNeedsStoreAndDeliverer(t *testing.T) {
	if err := (&queue.Queue{}).Run(context.Background()); err == nil {
		t.Fatal("Run without a store succeeded")
	}
}

func TestRunStopsOnClosedStore(t *testing.T) {
	s := &queue.MemoryStore{}
	q := &queue.Queue{Store: s, Deliverer: deliverAll(queue.Delivered)}
	s.Close()
	if err := q.Run(context.Background()); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Run on a closed store: %v, want ErrClosed", err)
	}
}

// A second Run while the first is going would double the Workers cap: it
// is refused, and allowed again once the first has returned.
func TestRunTwiceRefused(t *testing.T) {
	inside := make(chan struct{}, 1)
	release := make(chan struct{})
	q := &queue.Queue{Store: &queue.MemoryStore{}, Deliverer: queue.DelivererFunc(func(ctx context.Context, j *queue.Job) []queue.Outcome {
		inside <- struct{}{}
		<-release
		return queue.Outcomes(j, queue.Delivered, "250 ok")
	})}
	stop := start(t, q)
	enqueue(t, q, "a@example.org", "b@example.com")
	<-inside // the first Run is delivering, so it is surely going
	short, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.Run(short); !errors.Is(err, queue.ErrRunning) {
		t.Fatalf("second Run: %v, want ErrRunning", err)
	}
	close(release)
	waitFor(t, "the first delivery", func() bool { return stats(t, q).Queued+stats(t, q).Active == 0 })
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("first Run: %v", err)
	}
	stop = start(t, q)
	enqueue(t, q, "a@example.org", "c@example.com")
	<-inside
	waitFor(t, "delivery by the second Run", func() bool { return stats(t, q).Queued+stats(t, q).Active == 0 })
	stop()
}

// A Queue with zero Workers and PerKey runs DefaultWorkers jobs at once,
// and at most DefaultPerKey of one routing key.
func TestRunDefaults(t *testing.T) {
	var mu sync.Mutex
	inflight, maxAll := 0, 0
	perKey, maxKey := map[string]int{}, map[string]int{}
	release := make(chan struct{})
	d := queue.DelivererFunc(func(ctx context.Context, j *queue.Job) []queue.Outcome {
		mu.Lock()
		inflight++
		perKey[j.RoutingKey]++
		maxAll = max(maxAll, inflight)
		maxKey[j.RoutingKey] = max(maxKey[j.RoutingKey], perKey[j.RoutingKey])
		mu.Unlock()
		select {
		case <-release:
		case <-ctx.Done():
		}
		mu.Lock()
		inflight--
		perKey[j.RoutingKey]--
		mu.Unlock()
		return queue.Outcomes(j, queue.Delivered, "250 ok")
	})
	q := &queue.Queue{Store: &queue.MemoryStore{}, Deliverer: d}
	// One busy domain with more jobs than its cap, and enough quiet
	// domains of one job each to fill every worker.
	for i := range 2 * queue.DefaultPerKey {
		enqueue(t, q, "", fmt.Sprintf("r%d@busy.example", i))
	}
	for i := range queue.DefaultWorkers {
		enqueue(t, q, "", fmt.Sprintf("r@quiet%d.example", i))
	}
	start(t, q)
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // before Run is stopped, should the test fail
	waitFor(t, "every worker busy", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return inflight == queue.DefaultWorkers
	})
	time.Sleep(20 * time.Millisecond) // room for a queue that claims too many
	mu.Lock()
	gotAll, gotKey := maxAll, maxKey["busy.example"]
	mu.Unlock()
	free()
	if gotAll != queue.DefaultWorkers || gotKey != queue.DefaultPerKey {
		t.Fatalf("in flight: %d overall, %d for one domain; want the defaults %d and %d",
			gotAll, gotKey, queue.DefaultWorkers, queue.DefaultPerKey)
	}
	waitFor(t, "empty queue", func() bool { return stats(t, q) == queue.Stats{} })
}

// RetryNow makes a job scheduled a day ahead due at once and wakes the
// running queue: with an hour's PollInterval, only that wake-up can deliver
// it within the test. The attempts it already had are kept.
func TestRetryNowDeliversPromptly(t *testing.T) {
	ctx := context.Background()
	delivered := make(chan string, 10)
	var startedWith atomic.Int64
	q := &queue.Queue{
		Store:        &queue.MemoryStore{},
		Deliverer:    deliverAll(queue.Delivered),
		PollInterval: time.Hour,
		Hooks: queue.Hooks{
			AttemptStarted: func(j *queue.Job) {
				if j.Metadata["name"] == "later" {
					startedWith.Store(int64(j.Attempts))
				}
			},
			Delivered: func(j *queue.Job, r queue.Recipient) { delivered <- j.Metadata["name"] },
		},
	}
	later := queue.NewJob("a@example.org", []string{"b@example.com"}, []byte("x"))
	later.NextAttempt = time.Now().Add(24 * time.Hour)
	later.Attempts, later.LastError = 2, "451 try later"
	later.Metadata = map[string]string{"name": "later"}
	laterID, err := q.Enqueue(ctx, later)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.RetryNow(ctx, "no-such-job"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("RetryNow of an unknown id: %v, want ErrNotFound", err)
	}
	start(t, q)
	// A job due now: once it is delivered, Run has claimed at least once
	// (and left the later job alone) and is going idle.
	now := queue.NewJob("a@example.org", []string{"c@example.com"}, []byte("x"))
	now.Metadata = map[string]string{"name": "now"}
	if _, err := q.Enqueue(ctx, now); err != nil {
		t.Fatal(err)
	}
	wait := func(what string) string {
		t.Helper()
		select {
		case name := <-delivered:
			return name
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
			return ""
		}
	}
	if name := wait("the job due now"); name != "now" {
		t.Fatalf("delivered %q first, want the job due now", name)
	}
	if st := stats(t, q); st.Queued != 1 {
		t.Fatalf("Stats before RetryNow: %+v, want the later job queued", st)
	}
	if err := q.RetryNow(ctx, laterID); err != nil {
		t.Fatal(err)
	}
	if name := wait("the job after RetryNow"); name != "later" {
		t.Fatalf("delivered %q, want the retried job", name)
	}
	if got := startedWith.Load(); got != 2 {
		t.Fatalf("the attempt started with %d attempts counted, want the 2 made before", got)
	}
	waitFor(t, "empty queue", func() bool { return stats(t, q) == queue.Stats{} })
}
