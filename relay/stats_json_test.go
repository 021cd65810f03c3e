package relay_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// Exported statistics carry the latency percentiles, in milliseconds, and
// read back the same.
func TestStatsJSONHasLatency(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	for range 3 {
		if _, err := c.Send(ctx(t), testMessage("a@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	st := c.Stats()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"p50_ms":`, `"p90_ms":`, `"p99_ms":`, `"max_ms":`, `"count":3`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
	var back relay.Stats
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Latency.Count != 3 || back.Latency.P50 <= 0 || absDiff(back.Latency.Max, st.Latency.Max) > time.Microsecond {
		t.Errorf("read back %+v, want %+v", back.Latency, st.Latency)
	}
}

func absDiff(a, b time.Duration) time.Duration {
	if a > b {
		return a - b
	}
	return b - a
}
