package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// TestRestartMidPost stops a Dispatcher while its POST is in flight, the
// receiver holding on to it: the batch goes back to the store, due at
// once, and a new Dispatcher on the same store sends it again and the
// rest after it.
func TestRestartMidPost(t *testing.T) {
	store := &queue.MemoryStore{}
	var data []string
	for i := range 12 {
		data = append(data, fmt.Sprintf(`{"id":%d}`, i+1))
	}
	appendOutbox(t, store, entries("orders", data...)...)

	inFlight := make(chan struct{})
	release := make(chan struct{})
	var first sync.Once
	rc := &receiver{}
	rc.serve = func(w http.ResponseWriter, r *http.Request) {
		if _, ok := rc.keep(w, r, testSecret); !ok {
			return
		}
		held := false
		first.Do(func() { held = true })
		if held {
			close(inFlight)
			select { // stored, but not yet answered
			case <-release:
			case <-time.After(30 * time.Second):
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}
	rc.start(t)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	ep := Endpoint{Name: "orders", URL: rc.URL("/"), Secrets: [][]byte{testSecret}}

	logs := &logRecorder{}
	d1 := newDispatcher(store, logs, ep)
	d1.BatchSize = 5
	d1.Owner = "first"
	stop1 := run(t, d1)
	select {
	case <-inFlight:
	case <-time.After(30 * time.Second):
		t.Fatal("no POST arrived")
	}
	if err := stop1(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	st := outbox(t, store, "orders")
	if st.Pending != len(data) || st.Owner != "" || st.NextAttempt.After(time.Now()) {
		t.Errorf("after the stop, the outbox is %+v, want all %d items pending, no lease, due now", st, len(data))
	}
	if s := endpointStats(d1, "orders"); s.Failures != 0 || s.Batches != 0 {
		t.Errorf("after the stop, Stats = %+v, want no failure (an interruption is not one) and no batch", s)
	}
	close(release)

	d2 := newDispatcher(store, logs, ep)
	d2.BatchSize = 5
	d2.Owner = "second"
	run(t, d2)
	waitFor(t, "every event, acknowledged", func() bool {
		return rc.distinct() == len(data) && outbox(t, store, "orders").Pending == 0
	})
	got := rc.deliveries()
	repeats := checkSequence(t, "orders", got, numbered(data))
	if repeats != 5 || len(got) != 4 || got[0].id != got[1].id {
		var ids []string
		for _, dl := range got {
			ids = append(ids, dl.id)
		}
		t.Errorf("deliveries %v with %d events repeated, want the interrupted batch of 5 sent again, then the rest", ids, repeats)
	}
	if s := endpointStats(d2, "orders"); s.Batches != 3 || s.Items != int64(len(data)) || s.Failures != 0 {
		t.Errorf("Stats of the second Dispatcher = %+v, want 3 batches of %d items", s, len(data))
	}
	if errs := logs.errs(slog.LevelWarn); len(errs) > 0 {
		t.Errorf("warnings or errors logged: %v", errs)
	}
}

// TestRetryAfterHonoured checks that a 429 or 503 with Retry-After waits
// as asked instead of the Backoff, and that another status does not.
func TestRetryAfterHonoured(t *testing.T) {
	tests := []struct {
		status  int
		honours bool
	}{
		{http.StatusTooManyRequests, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusInternalServerError, false}, // Retry-After means nothing here
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			t.Parallel()
			store := newSpyStore()
			var mu sync.Mutex
			var answered, retried time.Time // of the refusal, and when the retry arrived
			var backoffs []int
			rc := &receiver{}
			rc.serve = func(w http.ResponseWriter, r *http.Request) {
				d, ok := rc.keep(w, r, testSecret)
				if !ok {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if answered.IsZero() {
					w.Header().Set("Retry-After", "1")
					answered = time.Now()
					w.WriteHeader(tt.status)
					return
				}
				if retried.IsZero() {
					retried = d.at
				}
				w.WriteHeader(http.StatusNoContent)
			}
			rc.start(t)
			d := newDispatcher(store, nil, Endpoint{Name: "limited", URL: rc.URL("/"), Secrets: [][]byte{testSecret}})
			d.Backoff = func(attempt int) time.Duration {
				mu.Lock()
				defer mu.Unlock()
				backoffs = append(backoffs, attempt)
				return 20 * time.Millisecond
			}
			appendOutbox(t, store, entries("limited", `{"id":"a"}`)...)
			run(t, d)
			waitFor(t, "the retry, acknowledged", func() bool {
				return rc.distinct() == 1 && outbox(t, store, "limited").Pending == 0 && len(rc.deliveries()) == 2
			})

			mu.Lock()
			defer mu.Unlock()
			retries := store.retried()
			if len(retries) != 1 {
				t.Fatalf("RetryOutbox called %d times, want once", len(retries))
			}
			next := retries[0].next
			if want := fmt.Sprintf("%d %s", tt.status, http.StatusText(tt.status)); retries[0].reason != want {
				t.Errorf("reason recorded %q, want %q", retries[0].reason, want)
			}
			if !tt.honours {
				if len(backoffs) != 1 || backoffs[0] != 1 {
					t.Errorf("Backoff called with %v, want [1]", backoffs)
				}
				return
			}
			if len(backoffs) != 0 {
				t.Errorf("Backoff called with %v, want not at all: the answer said when", backoffs)
			}
			// The retry is due a second after the answer; the upper bound
			// only catches a wait taken in the wrong unit.
			if wait := next.Sub(answered); wait < time.Second || wait > time.Second+30*time.Second {
				t.Errorf("due again %v after the answer, want a second", wait)
			}
			if retried.Before(next) {
				t.Errorf("retried %v before it was due", next.Sub(retried))
			}
		})
	}
}

// TestRedirectNotFollowed checks that a 3xx is a failed attempt, with the
// default client and with one of the caller's that would follow it: the
// place it points to sees nothing, and the batch stays.
func TestRedirectNotFollowed(t *testing.T) {
	tests := []struct {
		name   string
		status int
		client *http.Client
	}{
		{"302 default client", http.StatusFound, nil},
		{"307 caller's client", http.StatusTemporaryRedirect, &http.Client{}},
		{"308 caller's client", http.StatusPermanentRedirect, &http.Client{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var elsewhere atomic.Int64
			other := (&receiver{serve: func(w http.ResponseWriter, r *http.Request) {
				elsewhere.Add(1)
				w.WriteHeader(http.StatusNoContent)
			}}).start(t)
			rc := &receiver{}
			rc.serve = func(w http.ResponseWriter, r *http.Request) {
				if _, ok := rc.keep(w, r, testSecret); ok {
					http.Redirect(w, r, other.URL("/moved"), tt.status)
				}
			}
			rc.start(t)
			store := &queue.MemoryStore{}
			appendOutbox(t, store, entries("moved", `{"id":"a"}`, `{"id":"b"}`)...)
			logs := &logRecorder{}
			d := newDispatcher(store, logs, Endpoint{Name: "moved", URL: rc.URL("/"), Secrets: [][]byte{testSecret}})
			d.Client = tt.client
			stop := run(t, d)
			waitFor(t, "two failed attempts recorded", func() bool { return outbox(t, store, "moved").Attempts >= 2 })
			st := outbox(t, store, "moved")
			stop()

			if n := elsewhere.Load(); n != 0 || other.conns.Load() != 0 {
				t.Errorf("the redirect's target got %d requests over %d connections, want none", n, other.conns.Load())
			}
			if st.Pending != 2 || !strings.Contains(st.LastError, fmt.Sprint(tt.status)) {
				t.Errorf("outbox %+v, want both items pending and the status as the last error", st)
			}
			if s := endpointStats(d, "moved"); s.Batches != 0 || s.Failures < 2 || !strings.Contains(s.LastError, fmt.Sprint(tt.status)) {
				t.Errorf("Stats = %+v, want failures and the status as LastError", s)
			}
			for _, err := range logs.errs(slog.LevelWarn) {
				var se *StatusError
				if !errors.As(err, &se) || se.StatusCode != tt.status {
					t.Errorf("logged error %v, want a StatusError %d", err, tt.status)
				}
			}
			for _, dl := range rc.deliveries() {
				if dl.p.First != 1 || dl.p.Last != 2 {
					t.Errorf("delivery %s, want the same batch every time", dl.id)
				}
			}
		})
	}
}

// TestDrops checks that items past MaxAge are removed unsent, that items
// that are not JSON are left out of their batch and removed with it, and
// that both are reported to OnDrop and logged at error level, while their
// valid neighbours are sent.
func TestDrops(t *testing.T) {
	old := time.Now().Add(-2 * time.Hour)
	store := &queue.MemoryStore{}
	mixed := []queue.OutboxEntry{
		{Endpoint: "mixed", Time: old, Data: []byte(`{"id":1}`)},
		{Endpoint: "mixed", Time: old, Data: []byte(`{"id":2`)}, // old and invalid: reported as invalid
		{Endpoint: "mixed", Time: old, Data: []byte(`{"id":3}`)},
		{Endpoint: "mixed", Time: time.Now(), Data: []byte(`{"id":4}`)},
		{Endpoint: "mixed", Time: time.Now(), Data: []byte(`{"id":5,}`)},
		{Endpoint: "mixed", Time: time.Now(), Data: []byte("\"\xff\"")}, // not UTF-8
		{Endpoint: "mixed", Time: time.Now(), Data: []byte(`{"id":7}`)},
	}
	appendOutbox(t, store, mixed...)
	appendOutbox(t, store, entries("junk", `not json`, ``)...) // nothing to send at all

	type drop struct {
		endpoint string
		seqs     []int64
		reason   error
	}
	var mu sync.Mutex
	var drops []drop
	logs := &logRecorder{}
	rcMixed := (&receiver{}).start(t)
	rcJunk := (&receiver{}).start(t)
	d := newDispatcher(store, logs,
		Endpoint{Name: "mixed", URL: rcMixed.URL("/"), Secrets: [][]byte{testSecret}},
		Endpoint{Name: "junk", URL: rcJunk.URL("/"), Secrets: [][]byte{testSecret}},
	)
	d.MaxAge = time.Hour
	d.OnDrop = func(endpoint string, items []queue.OutboxItem, reason error) {
		var seqs []int64
		for _, it := range items {
			seqs = append(seqs, it.Seq)
		}
		mu.Lock()
		defer mu.Unlock()
		drops = append(drops, drop{endpoint, seqs, reason})
	}
	stop := run(t, d)
	waitFor(t, "both outboxes emptied", func() bool {
		return outbox(t, store, "mixed").Pending == 0 && outbox(t, store, "junk").Pending == 0 && endpointStats(d, "junk").Dropped == 2
	})
	stop()

	checkSequence(t, "mixed", rcMixed.deliveries(), []item{{4, `{"id":4}`}, {7, `{"id":7}`}})
	if got := rcMixed.deliveries(); len(got) != 1 || got[0].p.First != 4 || got[0].p.Last != 7 {
		t.Errorf("deliveries to mixed %+v, want one, of items 4 to 7", got)
	}
	if n := rcJunk.conns.Load(); n != 0 {
		t.Errorf("junk got %d connections, want none", n)
	}

	mu.Lock()
	defer mu.Unlock()
	var byEndpoint = map[string][]drop{}
	for _, dr := range drops {
		byEndpoint[dr.endpoint] = append(byEndpoint[dr.endpoint], dr)
	}
	wantDrops := map[string][]struct {
		seqs []int64
		is   error
	}{
		"mixed": {{[]int64{1, 3}, ErrTooOld}, {[]int64{2}, ErrInvalidItem}, {[]int64{5, 6}, ErrInvalidItem}},
		"junk":  {{[]int64{1, 2}, ErrInvalidItem}},
	}
	for name, want := range wantDrops {
		got := byEndpoint[name]
		if len(got) != len(want) {
			t.Errorf("%s: OnDrop called %d times, want %d: %+v", name, len(got), len(want), got)
			continue
		}
		for i := range want {
			if fmt.Sprint(got[i].seqs) != fmt.Sprint(want[i].seqs) || !errors.Is(got[i].reason, want[i].is) {
				t.Errorf("%s: drop %d: seqs %v, %v; want seqs %v, an error wrapping %v", name, i, got[i].seqs, got[i].reason, want[i].seqs, want[i].is)
			}
			var se *StatusError
			if errors.As(got[i].reason, &se) {
				t.Errorf("%s: drop %d: reason %v wraps an attempt's error, but none was made", name, i, got[i].reason)
			}
		}
	}

	// Logged at error level with the reason as "err", one record per
	// OnDrop call.
	logged := logs.errs(slog.LevelError)
	if len(logged) != len(drops) {
		t.Errorf("%d errors logged, want %d: %v", len(logged), len(drops), logged)
	}
	var tooOld, invalid int
	for _, err := range logged {
		switch {
		case errors.Is(err, ErrTooOld):
			tooOld++
		case errors.Is(err, ErrInvalidItem):
			invalid++
		}
	}
	if tooOld != 1 || invalid != 3 {
		t.Errorf("errors logged: %d wrapping ErrTooOld, %d ErrInvalidItem; want 1 and 3: %v", tooOld, invalid, logged)
	}
	s := d.Stats()
	if want := (Counts{Batches: 1, Items: 2, Dropped: 7, Invalid: 5}); s.Counts != want {
		t.Errorf("Stats = %+v, want %+v", s.Counts, want)
	}
}

// TestTooOldAfterFailures checks that items that pass MaxAge while their
// endpoint fails are dropped with a reason that wraps the last attempt's
// error too. The store makes the items look old once an attempt has
// failed, so the test needs no clock.
func TestTooOldAfterFailures(t *testing.T) {
	store := newSpyStore()
	store.claimed = func(b *queue.OutboxBatch) {
		if b.Attempts > 0 {
			for i := range b.Items {
				b.Items[i].Time = b.Items[i].Time.Add(-2 * time.Hour)
			}
		}
	}
	appendOutbox(t, store, entries("failing", `{"id":1}`, `{"id":2}`)...)
	rc := &receiver{}
	rc.serve = func(w http.ResponseWriter, r *http.Request) {
		if _, ok := rc.keep(w, r, testSecret); ok {
			http.Error(w, "broken", http.StatusBadGateway)
		}
	}
	rc.start(t)
	reasons := make(chan error, 1)
	logs := &logRecorder{}
	d := newDispatcher(store, logs, Endpoint{Name: "failing", URL: rc.URL("/"), Secrets: [][]byte{testSecret}})
	d.MaxAge = time.Hour
	d.OnDrop = func(_ string, items []queue.OutboxItem, reason error) {
		if len(items) != 2 {
			t.Errorf("OnDrop got %d items, want 2", len(items))
		}
		reasons <- reason
	}
	run(t, d)
	var reason error
	select {
	case reason = <-reasons:
	case <-time.After(30 * time.Second):
		t.Fatal("nothing dropped")
	}
	var se *StatusError
	if !errors.Is(reason, ErrTooOld) || !errors.As(reason, &se) || se.StatusCode != http.StatusBadGateway {
		t.Errorf("reason %v, want one wrapping ErrTooOld and the 502 of the last attempt", reason)
	}
	if n := len(rc.deliveries()); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
	waitFor(t, "the outbox emptied", func() bool { return outbox(t, store, "failing").Pending == 0 })
	if errs := logs.errs(slog.LevelError); len(errs) != 1 || !errors.Is(errs[0], ErrTooOld) {
		t.Errorf("errors logged %v, want the drop", errs)
	}
}

// TestDefaultClientRefusesLoopback checks that without AllowPrivateAddrs
// the default client does not connect to the loopback, failing with an
// error that wraps ErrForbiddenAddress.
func TestDefaultClientRefusesLoopback(t *testing.T) {
	store := &queue.MemoryStore{}
	rc := (&receiver{}).start(t)
	appendOutbox(t, store, entries("inside", `{"id":"a"}`)...)
	logs := &logRecorder{}
	d := newDispatcher(store, logs, Endpoint{Name: "inside", URL: rc.URL("/"), Secrets: [][]byte{testSecret}})
	d.AllowPrivateAddrs = false
	stop := run(t, d)
	waitFor(t, "two failed attempts", func() bool { return endpointStats(d, "inside").Failures >= 2 })
	stop()

	if n := rc.conns.Load(); n != 0 {
		t.Errorf("the receiver accepted %d connections, want none", n)
	}
	warned := logs.errs(slog.LevelWarn)
	if len(warned) < 2 {
		t.Errorf("%d warnings, want one per failure", len(warned))
	}
	for _, err := range warned {
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("logged error %v, want one wrapping ErrForbiddenAddress", err)
		}
	}
	if s := endpointStats(d, "inside"); !strings.Contains(s.LastError, "forbidden address") {
		t.Errorf("LastError %q, want it to say the address is forbidden", s.LastError)
	}
	if st := outbox(t, store, "inside"); st.Pending != 1 {
		t.Errorf("outbox %+v, want the item still there", st)
	}
}
