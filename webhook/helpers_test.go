package webhook

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// The test vector of the package documentation.
const (
	vecBody   = `{"endpoint":"orders","first":1,"last":2,"seqs":[1,2],"events":[{"id":"a"},{"id":"b"}]}`
	vecUnix   = 1700000000
	vecSig1   = "b82649e924cd35659162bbdcd48f4587ef43e72d545093792266222d77b3cafb" // openssl dgst -sha256 -hmac
	vecSig2   = "03970b4fc5200b81af6bdd7f4ec87e40598c5901081972e651fd12c9ab22506c"
	vecDelivr = "1c168adb00d208e4-1-2"
)

var (
	vecSecret1 = []byte("whsec_0123456789abcdef")
	vecSecret2 = []byte("whsec_fedcba9876543210")
	vecTime    = time.Unix(vecUnix, 0)
)

// waitFor polls cond until it holds, failing the test after a bound that
// only a hang reaches. It asserts nothing about how long things take.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 3000 { // 30 s at most
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

// logRecorder is a slog.Handler that keeps the records.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// errs returns the "err" attributes of the records at level or above.
func (h *logRecorder) errs(level slog.Level) []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []error
	for _, r := range h.records {
		if r.Level < level {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if err, ok := a.Value.Any().(error); ok && a.Key == "err" {
				out = append(out, err)
			}
			return true
		})
	}
	return out
}

// run starts d.Run and returns a function that stops it and returns its
// error.
func run(t *testing.T, d *Dispatcher) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return after its context ended")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}
