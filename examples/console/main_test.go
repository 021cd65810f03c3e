package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Run the demo on a free loopback port, look at its pages as the
// operator and as a stranger, and stop it.
func TestConsole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer // written by run only; read once run has returned
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, &out, "127.0.0.1:0", func(u string) { ready <- u }) }()
	var base string
	select {
	case base = <-ready:
	case err := <-done:
		t.Fatalf("run returned before serving: %v\n%s", err, out.String())
	case <-time.After(time.Minute):
		t.Fatal("the console was not served within a minute")
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.HasSuffix(base, "/console/") {
		t.Fatalf("console URL %q", base)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	get := func(path, user, pass string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s: 401 without a challenge", path)
		}
		return resp.StatusCode, string(b)
	}
	page := func(path string, want ...string) string {
		t.Helper()
		code, body := get(path, user, password)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d\n%s", path, code, body)
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: the page lacks %q", path, w)
			}
		}
		return body
	}

	// The dashboard has figures: the destinations, by MX host.
	page("", "Dashboard", "mx.example.com", "mx.example.net")
	// The queue shows the deferral and the campaign; approvals the
	// campaign by name and its messages.
	page("queue", "full@example.net", "deferred", "campaign spring-sale")
	approvals := page("approvals", "spring-sale", "Spring sale: 20% off everything until Sunday", "Your refund for order #1042")
	// A campaign message: its DKIM signatures verify against the keys
	// published in relaytest's DNS, its logo is inline, its banner remote.
	m := regexp.MustCompile(`href="/console/(message/[0-9a-f]+)">Spring sale`).FindStringSubmatch(approvals)
	if m == nil {
		t.Fatalf("no campaign message linked from the approvals page:\n%s", approvals)
	}
	msg := page(m[1], "verified against the published key", "logo.png", "price-list.csv")
	if strings.Count(msg, "verified against the published key") != 2 {
		t.Errorf("want both DKIM signatures verified:\n%s", msg)
	}
	page(m[1]+"/preview", "data:image/png;base64,", `data-blocked-src="https://images.example.org/spring/banner.jpg"`)
	page("suppressions", "nobody@example.com")

	// Strangers are asked for credentials, and the wrong ones do not do.
	if code, _ := get("", "", ""); code != http.StatusUnauthorized {
		t.Errorf("GET without credentials: %d, want 401", code)
	}
	if code, _ := get("queue", user, "wrong"); code != http.StatusUnauthorized {
		t.Errorf("GET with a wrong password: %d, want 401", code)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30 s of the end of its context")
	}
	if _, err := hc.Get(base); err == nil {
		t.Error("the console is still served after run returned")
	}
	s := out.String()
	for _, want := range []string{
		"Send      26 messages: 24 delivered, 1 bounced, 1 deferred (queued for retry)",
		"nobody@example.com bounced 550 5.1.1",
		"full@example.net deferred 452 4.2.2",
		"Enqueue   3 messages, delivered by Run",
		"Hold      2 refunds",
		`Campaign  spring-sale (list "news"): 6 messages held for review`,
		"open  " + base + "\n",
		"user  admin\n",
		"pass  mxrelay-demo ",
		"\nstopped\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", s)
	}
}

// The demo's password is published: it refuses to listen beyond loopback.
func TestLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8025", ":8025", "192.0.2.1:8025", "[::]:8025", "example.org:8025", "8025"} {
		if err := run(context.Background(), io.Discard, addr, nil); err == nil {
			t.Errorf("run accepted -addr %q", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:8025", "[::1]:8025", "localhost:8025", "127.0.0.2:0"} {
		if err := checkLoopback(addr); err != nil {
			t.Errorf("checkLoopback(%q): %v", addr, err)
		}
	}
}
