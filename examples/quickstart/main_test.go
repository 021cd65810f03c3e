package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The README's first command must keep working: run the whole tour and
// check what it reports.
func TestQuickstart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"ann@example.com      delivered 250",
		"nobody@example.com   bounced   550 5.1.1",
		"bob@example.net      delivered 250",
		"plaintext",
		"accepted by mx.example.com",
		"Subject: =?utf-8?",
		"summary: 2 delivered, 1 bounced, 0 deferred; 2 messages received; 4 of 4 DKIM signatures verified",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if n := strings.Count(s, ": pass"); n != 4 {
		t.Errorf("%d DKIM passes, want 4 (two signatures, two messages)\n%s", n, s)
	}
	if strings.Contains(s, "OK: queued") || strings.Contains(s, "boundary=") && strings.Contains(s, "--=_") {
		t.Errorf("the tour prints the fake server's wording or raw MIME:\n%s", s)
	}
	if strings.Contains(s, "FAIL") {
		t.Errorf("a DKIM check failed:\n%s", s)
	}
}
