package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The program runs end to end: three messages through the spool, one of
// them deferred once and retried, all delivered, the spool empty after.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"enqueued 3 messages: 3 job files, 3 queued\n",
		"deferred cid@example.com: 451 4.7.1 greylisted",
		"ann@example.com  delivered 250 2.0.0 by mx.example.com, TLS 1.3, customer=ann@example.com\n",
		"bob@example.com  delivered 250",
		"cid@example.com  delivered 250",
		"spool afterwards: 0 job files, {Queued:0 Active:0 Held:0 Corrupt:0}\n",
		"the MX host received 3 messages\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", s)
	}
}
