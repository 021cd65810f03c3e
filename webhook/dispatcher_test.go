package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// The phases of an outage, in order.
const (
	phaseCut  = iota // connections closed as soon as accepted
	phaseDown        // 503 Service Unavailable, the body unread
	phaseSlow        // the body read and kept, then no answer until the sender gives up
	phaseOld         // up, accepting only the old secret
	phaseNew         // up, accepting only the new secret: the receiver has moved over
	numPhases
)

// phaseLength is how many attempts each phase lasts; the last lasts for
// ever.
var phaseLength = [numPhases]int{2, 2, 2, 3, 0}

// outage plays a receiver that is down, then slow, then up, rotating its
// secret while up. Each phase lasts a number of attempts, not a time, so
// that the test runs the same way however fast the machine is.
type outage struct {
	mu     sync.Mutex
	phase  int
	counts [numPhases]int // attempts seen in each phase
}

// attempt counts an attempt (a connection in phaseCut, a request in the
// others) and returns the phase it falls in; the phase ends with its
// last attempt.
func (o *outage) attempt(conn bool) (phase int, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if conn != (o.phase == phaseCut) {
		return o.phase, false
	}
	phase = o.phase
	o.counts[phase]++
	if phase < numPhases-1 && o.counts[phase] == phaseLength[phase] {
		o.phase++
	}
	return phase, true
}

func (o *outage) seen() [numPhases]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts
}

// receiver returns a receiver that goes through the outage, accepting
// oldSecret and then newSecret.
func (o *outage) receiver(oldSecret, newSecret []byte) *receiver {
	rc := &receiver{refuse: func() bool {
		_, cut := o.attempt(true)
		return cut
	}}
	rc.serve = func(w http.ResponseWriter, r *http.Request) {
		phase, _ := o.attempt(false)
		switch phase {
		case phaseCut, phaseDown: // phaseCut only for a connection accepted then
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		case phaseSlow:
			if _, ok := rc.keep(w, r, oldSecret); ok {
				select { // the sender's Timeout ends the request, closing the connection
				case <-r.Context().Done():
				case <-time.After(30 * time.Second):
				}
			}
		case phaseOld:
			if _, ok := rc.keep(w, r, oldSecret); ok {
				w.WriteHeader(http.StatusOK)
			}
		case phaseNew:
			if _, ok := rc.keep(w, r, newSecret); ok {
				w.WriteHeader(http.StatusNoContent)
			}
		}
	}
	return rc
}

// TestDeliveryThroughOutage is the acceptance scenario: two endpoints
// whose receivers are unreachable, then answer 503, then time out, then
// come up and rotate their secret, get every event of five interleaved
// messages, in order, at least once, signed.
func TestDeliveryThroughOutage(t *testing.T) {
	const messages, perMessage = 5, 40
	oldSecret, newSecret := vecSecret1, vecSecret2
	secrets := [][]byte{newSecret, oldSecret} // the new one first, the old one kept while receivers move over
	names := []string{"orders", "audit"}

	store := &queue.MemoryStore{}
	logs := &logRecorder{}
	var outages [2]*outage
	var rcvs [2]*receiver
	var eps []Endpoint
	for i, name := range names {
		outages[i] = &outage{}
		rcvs[i] = outages[i].receiver(oldSecret, newSecret)
		rcvs[i].signedWith = secrets
		rcvs[i].start(t)
		eps = append(eps, Endpoint{Name: name, URL: rcvs[i].URL("/hooks/" + name), Secrets: secrets})
	}
	d := newDispatcher(store, logs, eps...)
	d.BatchSize = 8
	d.Timeout = 500 * time.Millisecond // the slow phase's attempts last this long

	// Each round appends the n-th event of every message for both
	// endpoints, interleaved, in one AppendOutbox.
	var want [2][]string
	appendRound := func(n int) {
		var es []queue.OutboxEntry
		for m := range messages {
			for i, name := range names {
				data := fmt.Sprintf(`{"id":"%s-m%d-%d","message":"m%d","n":%d}`, name, m, n, m, n)
				es = append(es, entries(name, data)...)
				want[i] = append(want[i], data)
			}
		}
		appendOutbox(t, store, es...)
	}
	for n := range perMessage / 4 {
		appendRound(n)
	}
	stop := run(t, d)
	for n := perMessage / 4; n < perMessage; n++ {
		appendRound(n)
		d.Notify()
	}
	waitFor(t, "every event at both endpoints, acknowledged", func() bool {
		for i, name := range names {
			if rcvs[i].distinct() < len(want[i]) || outbox(t, store, name).Pending > 0 {
				return false
			}
		}
		return true
	})
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}

	st := d.Stats()
	if got := []string{st.Endpoints[0].Name, st.Endpoints[1].Name}; !slices.Equal(got, names) {
		t.Errorf("Stats lists endpoints %q, want %q", got, names)
	}
	var failures int64
	for i, name := range names {
		seen := outages[i].seen()
		if seen[phaseDown] != phaseLength[phaseDown] || seen[phaseSlow] != phaseLength[phaseSlow] || seen[phaseOld] != phaseLength[phaseOld] {
			t.Errorf("%s: attempts in each phase %v, want %v", name, seen, phaseLength)
		}
		got := rcvs[i].deliveries()
		repeats := checkSequence(t, name, got, numbered(want[i]))
		if repeats == 0 {
			t.Errorf("%s: no event arrived twice; those of the timed-out attempts should have", name)
		}
		checkMessages(t, name, got, messages, perMessage)

		e := endpointStats(d, name)
		accepted := int64(seen[phaseOld] + seen[phaseNew])
		minBatches := int64((len(want[i]) + d.BatchSize - 1) / d.BatchSize)
		switch {
		case e.Items != int64(len(want[i])):
			t.Errorf("%s: Stats.Items = %d, want %d", name, e.Items, len(want[i]))
		case e.Batches < minBatches || e.Batches > accepted:
			t.Errorf("%s: Stats.Batches = %d, want %d to %d (the requests answered 2xx)", name, e.Batches, minBatches, accepted)
		case e.Failures < int64(seen[phaseDown]+seen[phaseSlow]):
			t.Errorf("%s: Stats.Failures = %d, want at least the %d answered 503 or not at all", name, e.Failures, seen[phaseDown]+seen[phaseSlow])
		case e.Dropped != 0 || e.Invalid != 0 || e.Unacked != 0 || e.LastError != "":
			t.Errorf("%s: Stats = %+v, want nothing dropped or unacknowledged, no last error", name, e)
		}
		failures += e.Failures
	}
	if st.Failures != failures || st.Items != int64(len(want[0])+len(want[1])) {
		t.Errorf("Stats totals %+v do not add up", st.Counts)
	}

	// Every failed POST is logged at warn level with its error: the 503s,
	// the timeouts, and the connections cut.
	warned := logs.errs(slog.LevelWarn)
	if int64(len(warned)) != st.Failures {
		t.Errorf("%d warnings with an error, want one per failure, %d", len(warned), st.Failures)
	}
	var timeouts, unavailable int
	for _, err := range warned {
		var se *StatusError
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			timeouts++
		case errors.As(err, &se) && se.StatusCode == http.StatusServiceUnavailable:
			unavailable++
		}
	}
	if want := 2 * phaseLength[phaseSlow]; timeouts < want {
		t.Errorf("%d failures wrap context.DeadlineExceeded, want at least %d", timeouts, want)
	}
	if want := 2 * phaseLength[phaseDown]; unavailable < want {
		t.Errorf("%d failures are a 503 StatusError, want at least %d", unavailable, want)
	}
	if errs := logs.errs(slog.LevelError); len(errs) > 0 {
		t.Errorf("errors logged: %v", errs)
	}
}

// checkMessages checks that the events of each message arrived in the
// order of their "n", each once after deduplication by seq.
func checkMessages(t *testing.T, endpoint string, got []delivery, messages, perMessage int) {
	t.Helper()
	var high int64
	next := make(map[string]int)
	for _, d := range got {
		for j, s := range d.p.Seqs {
			if s <= high {
				continue // a repeat
			}
			high = s
			var ev struct {
				ID      string `json:"id"`
				Message string `json:"message"`
				N       int    `json:"n"`
			}
			if err := json.Unmarshal(d.p.Events[j], &ev); err != nil {
				t.Errorf("%s: seq %d: %v", endpoint, s, err)
				continue
			}
			if ev.N != next[ev.Message] {
				t.Errorf("%s: message %s: event %d (%s) after %d events", endpoint, ev.Message, ev.N, ev.ID, next[ev.Message])
			}
			next[ev.Message] = ev.N + 1
		}
	}
	if len(next) != messages {
		t.Errorf("%s: events of %d messages, want %d", endpoint, len(next), messages)
	}
	for m, n := range next {
		if n != perMessage {
			t.Errorf("%s: message %s ended at event %d, want %d", endpoint, m, n, perMessage)
		}
	}
}

// TestBatchLimits checks that a POST holds at most BatchSize items and at
// most MaxBatchBytes octets of them, except that an item larger than that
// goes alone.
func TestBatchLimits(t *testing.T) {
	event := func(i, size int) string { // a JSON string of size octets
		s := fmt.Sprintf(`"%d`, i)
		for len(s) < size-1 {
			s += "x"
		}
		return s + `"`
	}
	tests := []struct {
		name      string
		batchSize int
		maxBytes  int
		sizes     []int   // of the items, in octets
		want      [][]int // the seqs of each POST
	}{
		{"BatchSize", 4, 0, []int{10, 10, 10, 10, 10, 10, 10, 10, 10, 10}, [][]int{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10}}},
		{"MaxBatchBytes", 0, 250, []int{100, 100, 100, 400, 100, 50, 50, 50}, [][]int{{1, 2}, {3}, {4}, {5, 6, 7, 8}}},
		{"both", 2, 250, []int{100, 100, 100, 200, 20, 20, 20}, [][]int{{1, 2}, {3}, {4, 5}, {6, 7}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := &queue.MemoryStore{}
			var data []string
			for i, size := range tt.sizes {
				data = append(data, event(i+1, size))
			}
			appendOutbox(t, store, entries("sized", data...)...) // all before Run: every batch is as full as it may be
			rc := (&receiver{}).start(t)
			d := newDispatcher(store, nil, Endpoint{Name: "sized", URL: rc.URL("/"), Secrets: [][]byte{testSecret}})
			d.BatchSize, d.MaxBatchBytes = tt.batchSize, tt.maxBytes
			run(t, d)
			waitFor(t, "every event", func() bool { return rc.distinct() == len(data) })

			var got [][]int
			for _, dl := range rc.deliveries() {
				var seqs []int
				size := 0
				for j, s := range dl.p.Seqs {
					seqs = append(seqs, int(s))
					size += len(dl.p.Events[j])
				}
				got = append(got, seqs)
				if tt.batchSize > 0 && len(seqs) > tt.batchSize {
					t.Errorf("POST %v holds %d events, over BatchSize %d", seqs, len(seqs), tt.batchSize)
				}
				if tt.maxBytes > 0 && len(seqs) > 1 && size > tt.maxBytes {
					t.Errorf("POST %v holds %d octets of events, over MaxBatchBytes %d", seqs, size, tt.maxBytes)
				}
			}
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("POSTs hold seqs %v, want %v", got, tt.want)
			}
			checkSequence(t, "sized", rc.deliveries(), numbered(data))
		})
	}
}

// TestNotify checks that Notify wakes a sender that would otherwise look
// at its outbox again only after an hour.
func TestNotify(t *testing.T) {
	store := newSpyStore()
	claimsAtArrival := make(chan int, 1)
	rc := &receiver{}
	rc.serve = func(w http.ResponseWriter, r *http.Request) {
		if _, ok := rc.keep(w, r, testSecret); ok {
			claims, _ := store.counts()
			select {
			case claimsAtArrival <- claims:
			default:
			}
			w.WriteHeader(http.StatusNoContent)
		}
	}
	rc.start(t)
	d := newDispatcher(store, nil, Endpoint{Name: "hourly", URL: rc.URL("/"), Secrets: [][]byte{testSecret}})
	d.PollInterval = time.Hour
	d.Notify() // without a Run: nothing to wake, and it does not block
	run(t, d)
	waitFor(t, "the first look at the empty outbox", func() bool { _, empty := store.counts(); return empty == 1 })

	appendOutbox(t, store, entries("hourly", `{"id":"woken"}`)...)
	d.Notify()
	waitFor(t, "the event", func() bool { return rc.distinct() == 1 })
	if claims := <-claimsAtArrival; claims != 2 {
		t.Errorf("the event arrived after %d claims, want 2: the empty one and the one Notify caused", claims)
	}
	checkSequence(t, "hourly", rc.deliveries(), []item{{1, `{"id":"woken"}`}})
}

// TestStatsEndpoints checks that Stats lists every endpoint of a Run, in
// the order of Endpoints, before any of them has done anything.
func TestStatsEndpoints(t *testing.T) {
	store := &queue.MemoryStore{}
	rc := (&receiver{}).start(t)
	d := newDispatcher(store, nil,
		Endpoint{Name: "idle", URL: rc.URL("/idle"), Secrets: [][]byte{testSecret}},
		Endpoint{Name: "busy", URL: rc.URL("/busy"), Secrets: [][]byte{testSecret}},
	)
	if st := d.Stats(); len(st.Endpoints) != 0 {
		t.Errorf("Stats before Run = %+v, want none", st)
	}
	appendOutbox(t, store, entries("busy", `1`, `2`)...)
	stop := run(t, d)
	waitFor(t, "the events", func() bool { return endpointStats(d, "busy").Items == 2 })
	stop()
	st := d.Stats()
	want := Stats{
		Counts: Counts{Batches: 1, Items: 2},
		Endpoints: []EndpointStats{
			{Name: "idle"},
			{Name: "busy", Counts: Counts{Batches: 1, Items: 2}},
		},
	}
	if !equalStats(st, want) {
		t.Errorf("Stats = %+v\nwant %+v", st, want)
	}
}

func equalStats(a, b Stats) bool {
	return a.Counts == b.Counts && slices.Equal(a.Endpoints, b.Endpoints)
}
