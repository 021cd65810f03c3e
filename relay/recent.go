package relay

import "sync"

// RecentEventsKept is how many of its latest events a Client keeps for
// RecentEvents.
const RecentEventsKept = 500

// recentRing keeps the latest events, for RecentEvents. Its buffer is
// made at the first event.
type recentRing struct {
	mu   sync.Mutex
	buf  []Event
	next int  // where the next event goes
	full bool // buf has wrapped
}

func (r *recentRing) add(e *Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.buf == nil {
		r.buf = make([]Event, RecentEventsKept)
	}
	r.buf[r.next] = *e
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// RecentEvents returns the latest events this Client emitted, newest
// first, at most RecentEventsKept of them, whether or not Events is set:
// what a console tails. Instances that share a store each keep their
// own; the shared History keeps what lasts.
func (c *Client) RecentEvents() []Event {
	r := &c.recent
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	out := make([]Event, 0, n)
	for i := r.next - 1; i >= 0; i-- {
		out = append(out, r.buf[i])
	}
	if r.full {
		for i := len(r.buf) - 1; i >= r.next; i-- {
			out = append(out, r.buf[i])
		}
	}
	return out
}
