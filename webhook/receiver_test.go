package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// A receiver is an endpoint on the loopback for the Dispatcher tests. It
// verifies each request with VerifyRequest, checks its headers, and keeps
// the payloads in order of arrival. Set the fields, then call start.
type receiver struct {
	// secrets are the ones it accepts when serve is nil; nil: testSecret.
	secrets [][]byte
	// signedWith, if set, are the sender's secrets: each signature header
	// must then be exactly Sign's for them, in that order.
	signedWith [][]byte
	// serve, if set, handles each request instead of the default: keep
	// it under secrets and answer 204.
	serve func(w http.ResponseWriter, r *http.Request)
	// refuse, if set, is asked about each connection accepted; true
	// closes it at once, before a byte is read.
	refuse func() bool

	srv   *httptest.Server
	conns atomic.Int64 // connections accepted, refused ones included

	mu       sync.Mutex
	got      []delivery
	problems []string
}

// delivery is one verified request.
type delivery struct {
	p  *Payload
	id string    // its Mxrelay-Delivery header
	at time.Time // when it arrived
}

// start serves rc on the loopback until the test ends, and reports then
// whatever was wrong with the requests.
func (rc *receiver) start(t *testing.T) *receiver {
	t.Helper()
	t.Cleanup(func() {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, p := range rc.problems {
			t.Error(p)
		}
	})
	rc.srv = httptest.NewUnstartedServer(rc)
	rc.srv.Listener = &gateListener{Listener: rc.srv.Listener, rc: rc}
	rc.srv.Start()
	t.Cleanup(rc.srv.Close)
	return rc
}

// URL is where the receiver listens, with path added.
func (rc *receiver) URL(path string) string { return rc.srv.URL + path }

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rc.serve != nil {
		rc.serve(w, r)
		return
	}
	secrets := rc.secrets
	if secrets == nil {
		secrets = [][]byte{testSecret}
	}
	if _, ok := rc.keep(w, r, secrets...); ok {
		w.WriteHeader(http.StatusNoContent)
	}
}

// keep reads and verifies r under secrets, checks its headers, and keeps
// the payload. When r does not verify it answers 401 and returns false;
// otherwise the caller answers.
func (rc *receiver) keep(w http.ResponseWriter, r *http.Request, secrets ...[]byte) (delivery, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
	if err != nil { // the sender gave up while sending: no request
		w.WriteHeader(http.StatusBadRequest)
		return delivery{}, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	p, err := VerifyRequest(r, 0, secrets...)
	if err != nil {
		rc.problem("%s: VerifyRequest: %v", r.Header.Get(DeliveryHeader), err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return delivery{}, false
	}
	d := delivery{p: p, id: r.Header.Get(DeliveryHeader), at: time.Now()}
	switch {
	case r.Method != http.MethodPost:
		rc.problem("%s: method %s", d.id, r.Method)
	case r.Header.Get("Content-Type") != "application/json":
		rc.problem("%s: Content-Type %q", d.id, r.Header.Get("Content-Type"))
	case r.Header.Get("User-Agent") != UserAgent:
		rc.problem("%s: User-Agent %q", d.id, r.Header.Get("User-Agent"))
	case d.id != p.DeliveryID():
		rc.problem("%s: %s is %s for the payload", d.id, DeliveryHeader, p.DeliveryID())
	}
	if rc.signedWith != nil {
		h := r.Header.Get(SignatureHeader)
		ts, _, _ := strings.Cut(strings.TrimPrefix(h, "t="), ",")
		unix, err := strconv.ParseInt(ts, 10, 64)
		if want := Sign(time.Unix(unix, 0), body, rc.signedWith...); err != nil || h != want {
			rc.problem("%s: %s: %s\nwant %s", d.id, SignatureHeader, h, want)
		}
	}
	rc.mu.Lock()
	rc.got = append(rc.got, d)
	rc.mu.Unlock()
	return d, true
}

func (rc *receiver) problem(format string, args ...any) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.problems = append(rc.problems, fmt.Sprintf(format, args...))
}

// deliveries returns the verified requests so far, in order of arrival.
func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// distinct returns how many different events (by seq) have arrived.
func (rc *receiver) distinct() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	seen := make(map[int64]bool)
	for _, d := range rc.got {
		for _, s := range d.p.Seqs {
			seen[s] = true
		}
	}
	return len(seen)
}

// gateListener closes the connections its receiver refuses.
type gateListener struct {
	net.Listener
	rc *receiver
}

func (l *gateListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.rc.conns.Add(1)
		if l.rc.refuse == nil || !l.rc.refuse() {
			return c, nil
		}
		c.Close()
	}
}

// item is an event as the receiver should see it once.
type item struct {
	seq  int64
	data string
}

// numbered returns data as the items of an outbox that got them in this
// order, from position 1.
func numbered(data []string) []item {
	out := make([]item, len(data))
	for i, d := range data {
		out[i] = item{int64(i + 1), d}
	}
	return out
}

// checkSequence checks what an endpoint's receiver got, in order of
// arrival, the way a receiver deduplicates: each event above the highest
// position seen so far is new; each at or below it must be a repeat of
// one seen, byte for byte. The new ones must be want, in order. It
// returns how many events were repeats.
func checkSequence(t *testing.T, endpoint string, got []delivery, want []item) (repeats int) {
	t.Helper()
	var high int64
	seen := make(map[int64]string)
	var fresh []item
	for i, d := range got {
		if d.p.Endpoint != endpoint {
			t.Errorf("%s: delivery %d is for endpoint %q", endpoint, i, d.p.Endpoint)
		}
		for j, s := range d.p.Seqs {
			data := string(d.p.Events[j])
			if s > high {
				high = s
				seen[s] = data
				fresh = append(fresh, item{s, data})
				continue
			}
			repeats++
			if prev, ok := seen[s]; !ok {
				t.Errorf("%s: delivery %d (%s): seq %d after seq %d, out of order", endpoint, i, d.id, s, high)
			} else if prev != data {
				t.Errorf("%s: delivery %d (%s): seq %d repeated as %s, was %s", endpoint, i, d.id, s, data, prev)
			}
		}
	}
	if len(fresh) != len(want) {
		t.Errorf("%s: %d events arrived, want %d", endpoint, len(fresh), len(want))
	}
	for i := range min(len(fresh), len(want)) {
		if fresh[i] != want[i] {
			t.Errorf("%s: event %d is seq %d %s, want seq %d %s", endpoint, i, fresh[i].seq, fresh[i].data, want[i].seq, want[i].data)
			break
		}
	}
	return repeats
}

// spyStore is a MemoryStore that counts claims, records retries, and lets
// a test change the batches it hands out.
type spyStore struct {
	*queue.MemoryStore
	// claimed, if set, sees each batch ClaimOutbox returns and may change
	// it; set it before Run.
	claimed func(b *queue.OutboxBatch)

	mu          sync.Mutex
	claims      int // calls of ClaimOutbox that returned
	emptyClaims int // of those, the ones that returned no batch and no error
	retries     []retryCall
}

// retryCall is the arguments of a RetryOutbox that succeeded.
type retryCall struct {
	endpoint string
	next     time.Time
	reason   string
}

func newSpyStore() *spyStore { return &spyStore{MemoryStore: &queue.MemoryStore{}} }

func (s *spyStore) ClaimOutbox(ctx context.Context, r queue.OutboxClaim) (*queue.OutboxBatch, error) {
	b, err := s.MemoryStore.ClaimOutbox(ctx, r)
	if b != nil && s.claimed != nil {
		s.claimed(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims++
	if b == nil && err == nil {
		s.emptyClaims++
	}
	return b, err
}

func (s *spyStore) RetryOutbox(ctx context.Context, b *queue.OutboxBatch, next time.Time, reason string) error {
	err := s.MemoryStore.RetryOutbox(ctx, b, next, reason)
	if err == nil {
		s.mu.Lock()
		s.retries = append(s.retries, retryCall{b.Endpoint, next, reason})
		s.mu.Unlock()
	}
	return err
}

// counts returns the claims and the empty claims so far.
func (s *spyStore) counts() (claims, empty int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claims, s.emptyClaims
}

func (s *spyStore) retried() []retryCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]retryCall(nil), s.retries...)
}

// newDispatcher returns a Dispatcher over store for the endpoints, made
// for the loopback and quick retries, logging to logs when it is not nil.
func newDispatcher(store queue.OutboxStore, logs *logRecorder, endpoints ...Endpoint) *Dispatcher {
	d := &Dispatcher{
		Store:             store,
		Endpoints:         endpoints,
		AllowPrivateAddrs: true,
		Backoff:           func(int) time.Duration { return 20 * time.Millisecond },
		PollInterval:      10 * time.Millisecond,
	}
	if logs != nil {
		d.Logger = slog.New(logs)
	}
	return d
}

// appendOutbox appends entries, failing the test on an error.
func appendOutbox(t *testing.T, store queue.OutboxStore, entries ...queue.OutboxEntry) {
	t.Helper()
	if err := store.AppendOutbox(context.Background(), entries...); err != nil {
		t.Fatalf("AppendOutbox: %v", err)
	}
}

// entries returns an entry for each data, for endpoint, made now.
func entries(endpoint string, data ...string) []queue.OutboxEntry {
	out := make([]queue.OutboxEntry, len(data))
	for i, d := range data {
		out[i] = queue.OutboxEntry{Endpoint: endpoint, Time: time.Now(), Data: []byte(d)}
	}
	return out
}

// outbox returns the state of endpoint's outbox; the zero state when the
// store does not list it (empty, no failure recorded).
func outbox(t *testing.T, store queue.OutboxStore, endpoint string) queue.OutboxState {
	t.Helper()
	states, err := store.Outboxes(context.Background())
	if err != nil {
		t.Fatalf("Outboxes: %v", err)
	}
	for _, st := range states {
		if st.Endpoint == endpoint {
			return st
		}
	}
	return queue.OutboxState{}
}

// endpointStats returns the counters of the endpoint named name; zero
// ones when Stats does not list it.
func endpointStats(d *Dispatcher, name string) EndpointStats {
	for _, e := range d.Stats().Endpoints {
		if e.Name == name {
			return e
		}
	}
	return EndpointStats{}
}
