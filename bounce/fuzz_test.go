package bounce_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/bounce"
)

// FuzzClassify: Classify never panics, is deterministic, and keeps its
// guarantees for any input. The seeds are the fixtures and the corpus in
// testdata/fuzz/FuzzClassify.
func FuzzClassify(f *testing.F) {
	fixtureSeeds(f)
	f.Fuzz(func(t *testing.T, code int, enhanced, text string) {
		c := bounce.Classify(code, enhanced, text)
		if c != bounce.Classify(code, enhanced, text) {
			t.Fatalf("not deterministic: %v", c)
		}
		if _, err := c.Category.MarshalText(); err != nil {
			t.Fatalf("category out of range: %v", err)
		}
		if c.Suppress != (c.Permanent && (c.Category == bounce.InvalidRecipient || c.Category == bounce.UnknownDomain)) {
			t.Fatalf("Suppress is not permanent InvalidRecipient or UnknownDomain: %v", c)
		}
		if c.Rule == "" && c.Category != bounce.Other {
			t.Fatalf("a category without a rule: %v", c)
		}
		if !c.Suppress {
			return
		}
		// A suppression is never about the sender, a policy code or a
		// temporary failure. Case is folded for ASCII only, as Classify
		// folds it.
		head := asciiLower(text)
		if len(head) > 8<<10 {
			head = head[:8<<10]
		}
		for _, w := range []string{"spam", "block", "polic", "blacklist", "denylist", "reputation", "spf", "dkim", "dmarc", "rate limit", "ratelimit"} {
			if strings.Contains(head, w) {
				t.Fatalf("suppressed a text about %q: %v", w, c)
			}
		}
		if policyOrTemporary.MatchString(enhanced) {
			t.Fatalf("suppressed %q: %v", enhanced, c)
		}
	})
}

// policyOrTemporary matches the enhanced codes that must never suppress.
var policyOrTemporary = regexp.MustCompile(`^(4\.[0-9]{1,3}\.[0-9]{1,3}|[245]\.7\.[0-9]{1,3})$`)

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
