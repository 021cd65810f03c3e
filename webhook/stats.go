package webhook

import "sync"

// Counts are the counters of a Dispatcher, for one endpoint or in all.
type Counts struct {
	Batches  int64 // POSTs answered with a 2xx
	Items    int64 // events in those POSTs
	Failures int64 // POSTs that failed: no answer, or a status other than 2xx
	Dropped  int64 // items removed undelivered: past MaxAge, or invalid
	Invalid  int64 // of Dropped, the items that were not valid JSON
	// Unacked counts batches answered with a 2xx that the store would not
	// remove (the lease was lost, or the store failed): they are sent
	// again.
	Unacked int64
}

func (c *Counts) add(o *Counts) {
	c.Batches += o.Batches
	c.Items += o.Items
	c.Failures += o.Failures
	c.Dropped += o.Dropped
	c.Invalid += o.Invalid
	c.Unacked += o.Unacked
}

// EndpointStats are one endpoint's counters.
type EndpointStats struct {
	Name string // Endpoint.Name, or its URL
	Counts
	// LastError is the reason of the last failed POST, as recorded with
	// the store; "" after a 2xx.
	LastError string
}

// Stats are a Dispatcher's counters since it was made, over all its Runs:
// the totals, and each endpoint's in the order they were first run.
type Stats struct {
	Counts
	Endpoints []EndpointStats
}

// stats holds the counters behind Dispatcher.Stats.
type stats struct {
	mu    sync.Mutex
	order []string
	by    map[string]*EndpointStats
}

// update calls f with name's counters, under the lock.
func (s *stats) update(name string, f func(*EndpointStats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.by[name]
	if e == nil {
		if s.by == nil {
			s.by = make(map[string]*EndpointStats)
		}
		e = &EndpointStats{Name: name}
		s.by[name] = e
		s.order = append(s.order, name)
	}
	f(e)
}

func (s *stats) snapshot() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out Stats
	for _, name := range s.order {
		e := *s.by[name]
		out.Counts.add(&e.Counts)
		out.Endpoints = append(out.Endpoints, e)
	}
	return out
}
