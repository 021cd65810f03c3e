package relay_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// unsubscribe makes c emit one EventUnsubscribed, for u<i>@example.com.
func unsubscribe(t *testing.T, c *relay.Client, i int) {
	t.Helper()
	if err := c.Suppress(ctx(t), fmt.Sprintf("u%d@example.com", i), "news", queue.Unsubscribed, ""); err != nil {
		t.Fatal(err)
	}
}

// checkRecent checks that RecentEvents holds the unsubscribes of the
// last min(n, RecentEventsKept) of u0 … u<n-1>, newest first.
func checkRecent(t *testing.T, c *relay.Client, n int) {
	t.Helper()
	got := c.RecentEvents()
	want := min(n, relay.RecentEventsKept)
	if len(got) != want {
		t.Fatalf("after %d events, RecentEvents holds %d, want %d", n, len(got), want)
	}
	for i, e := range got {
		if w := fmt.Sprintf("u%d@example.com", n-1-i); e.Type != relay.EventUnsubscribed || e.Recipient != w || e.List != "news" {
			t.Fatalf("after %d events, RecentEvents[%d] = %v %s, want unsubscribed %s", n, i, e.Type, e.Recipient, w)
		}
	}
}

// RecentEvents keeps the latest events, newest first, up to
// RecentEventsKept, without an Events hook.
func TestRecentEventsRing(t *testing.T) {
	c := &relay.Client{Suppressions: &queue.MemoryStore{}}
	if got := c.RecentEvents(); len(got) != 0 {
		t.Fatalf("a new Client has recent events: %+v", got)
	}
	n := 0
	for _, upTo := range []int{1, 3, relay.RecentEventsKept - 1, relay.RecentEventsKept, relay.RecentEventsKept + 1,
		2*relay.RecentEventsKept - 1, 2 * relay.RecentEventsKept, 2*relay.RecentEventsKept + 7} {
		for ; n < upTo; n++ {
			unsubscribe(t, c, n)
		}
		checkRecent(t, c, n)
	}
	// What it returns is a copy.
	got := c.RecentEvents()
	got[0].Recipient = "changed@example.com"
	checkRecent(t, c, n)
}

// Delivery events are kept too, with an Events hook set, in the order
// the hook sees them.
func TestRecentEventsOfDeliveries(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	events := newEventLog()
	c.Events = events.hook
	for _, to := range []string{"ann@example.com", "bob@example.com"} {
		if _, err := c.Send(ctx(t), testMessage(to)); err != nil {
			t.Fatal(err)
		}
	}
	// Send has emitted all its events: wait (bounded) for the hook to
	// have them too.
	got := c.RecentEvents()
	deadline := time.After(20 * time.Second)
	for len(events.all()) < len(got) {
		select {
		case <-events.signal:
		case <-deadline:
			t.Fatalf("the hook has %d events of %d", len(events.all()), len(got))
		}
	}
	all := events.all()
	if len(got) != len(all) || len(got) < 2 {
		t.Fatalf("RecentEvents %d, hook %d", len(got), len(all))
	}
	for i := range got {
		if h := all[len(all)-1-i]; got[i].Type != h.Type || got[i].Recipient != h.Recipient || got[i].MessageID != h.MessageID {
			t.Errorf("RecentEvents[%d] = %v %s, the hook's %d from last %v %s", i, got[i].Type, got[i].Recipient, i, h.Type, h.Recipient)
		}
	}
	if got[0].Type != relay.EventDelivered || got[0].Recipient != "bob@example.com" || got[0].MX != "mx.example.com" {
		t.Errorf("newest %+v", got[0])
	}
}

// RecentEvents may be read while events come.
func TestRecentEventsConcurrent(t *testing.T) {
	c := &relay.Client{Suppressions: &queue.MemoryStore{}}
	var wg sync.WaitGroup
	const writers, each = 4, 200
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := c.Suppress(ctx(t), fmt.Sprintf("w%d-%d@example.com", w, i), "", queue.Unsubscribed, ""); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, e := range c.RecentEvents() {
				if e.Type != relay.EventUnsubscribed {
					t.Errorf("event %+v", e)
					return
				}
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-readerDone
	got := c.RecentEvents()
	if len(got) != min(writers*each, relay.RecentEventsKept) {
		t.Fatalf("%d recent events", len(got))
	}
	// Each writer's events are newest first among themselves.
	last := map[int]int{}
	for _, e := range got {
		var w, i int
		if _, err := fmt.Sscanf(e.Recipient, "w%d-%d@example.com", &w, &i); err != nil {
			t.Fatal(err)
		}
		if prev, ok := last[w]; ok && i >= prev {
			t.Fatalf("writer %d: event %d after %d", w, i, prev)
		}
		last[w] = i
	}
}
