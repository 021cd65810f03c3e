package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The program runs end to end: bad.example alerts once, at its tenth
// message, and resolves after its list is cleaned; the other domains never
// alert; the counters agree with what the hosts were told to do.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	want := `sending 20 messages to each of 3 domains
ALERT bad.example: bounce rate 80% over the last 10 messages (threshold 20%); last reply: 550 5.1.1 no such user
sending 20 messages to the cleaned list of bad.example
RESOLVED bad.example: bounce rate 20% over the last 20 messages (threshold 20%)
per-domain counters from Client.Stats():
  domain         delivered bounced bounce rate
  bad.example           24      16       40.0%
  good.example          20       0        0.0%
  mixed.example         18       2       10.0%
events dropped: 0
`
	if s != want {
		t.Errorf("output:\n%s\nwant:\n%s", s, want)
	}
	if n := strings.Count(s, "ALERT"); n != 1 {
		t.Errorf("%d alerts, want 1", n)
	}
}
