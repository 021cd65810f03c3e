package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// Run the whole story and check what it reports: the late bounce and the
// complaint are matched to their recipients, both addresses are
// suppressed, and the second message goes only to the third reader.
func TestBounces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"gone@example.com   delivered 250 2.0.0",
		"@bounces.example.org (ENVID b",
		"event bounced    gone@example.com   category invalid-recipient, status 5.1.1 from mx.example.com",
		"event complained cat@example.com    feedback type abuse by ExampleFBL/2.1",
		"cat@example.com    complained",
		"gone@example.com   hard-bounced",
		"ann@example.com    delivered\n",
		"gone@example.com   suppressed\n",
		"cat@example.com    suppressed\n",
		"summary: 1 late bounce and 1 complaint matched; 2 addresses suppressed; 2 of 3 not sent the second time",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", s)
	}
}
