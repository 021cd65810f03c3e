package main

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// The program runs end to end and prints each alert once as it fires or
// resolves, the same at every run.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	want := `20 messages to good.example
20 messages to bad.example, a stale list
  firing warning bounce-rate: bounce rate 40.00% over 1h (16 of 40 ended), at or above 20.00%
  firing error bounce-rate bad.example: bounce rate 80.00% over 1h at bad.example (16 of 20 ended), at or above 50.00%
6 messages to busy.example, which is busy
  firing warning deferral-streak mx.busy.example: 6 deferrals in a row from mx.busy.example, at or above 5
3 messages to busy.example, which has recovered
  resolved warning deferral-streak mx.busy.example: mx.busy.example delivers again (3 in a row), below 4
1 message to yahoo.example, which throttles
  firing error backoff mx.yahoo.example: mx.yahoo.example suspended by back-off rule yahoo-tss04
firing now:
  error   backoff     mx.yahoo.example
  warning bounce-rate (all mail)
  error   bounce-rate bad.example
`
	if got := out.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}
