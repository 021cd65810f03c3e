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
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if n := strings.Count(s, ": pass"); n != 4 {
		t.Errorf("%d DKIM passes, want 4 (two signatures, two messages)\n%s", n, s)
	}
	if strings.Contains(s, "FAIL") {
		t.Errorf("a DKIM check failed:\n%s", s)
	}
}
