package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// Run the whole tour and check what it reports: the first issue reaches
// everyone, the one-click POST suppresses Bob for the list, and the second
// issue skips him without contacting his MX host.
func TestNewsletter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	s := out.String()
	first, second, ok := strings.Cut(s, "== issue 2")
	if !ok {
		t.Fatalf("no second issue:\n%s", s)
	}
	for _, want := range []string{
		"ann@example.com      delivered  250 2.0.0 via mx.example.com",
		"bob@example.net      delivered  250 2.0.0 via mx.example.net",
		"cat@example.edu      delivered  250 2.0.0 via mx.example.edu",
		"List-Unsubscribe: <http://127.0.0.1:",
		"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
		`List-Id: "Weekly news" <news.example.org>`,
		"→ 200 OK: Unsubscribed.",
		"bob@example.net      list news  unsubscribed since ",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("before issue 2, output lacks %q", want)
		}
	}
	for _, want := range []string{
		"ann@example.com      delivered  250",
		"bob@example.net      suppressed   - 5.7.1",
		"suppressed for list news: unsubscribed",
		"cat@example.edu      delivered  250",
		"summary: 5 delivered, 1 suppressed over 2 issues; 1 unsubscribed with one click; 5 messages received",
	} {
		if !strings.Contains(second, want) {
			t.Errorf("from issue 2 on, output lacks %q", want)
		}
	}
	if strings.Count(s, "List-Unsubscribe: <") != 1 {
		t.Errorf("want exactly one link printed:\n%s", s)
	}
	if t.Failed() {
		t.Logf("output:\n%s", s)
	}
}
