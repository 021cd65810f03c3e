package console_test

import (
	"net/mail"
	"net/url"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/relay"
)

func TestPagesRender(t *testing.T) {
	h := newHarness(t)
	id := h.enqueue("Spring sale", true, "spring", "ann@example.com", "bob@example.com")
	for _, p := range []string{"", "?range=hour", "?range=week", "queue", "queue?state=held", "message/" + id,
		"message/" + id + "/preview", "approvals", "history", "suppressions", "events", "preflight", "preflight?domain=example.com", "static/style.css"} {
		resp, body := h.get(p)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %s\n%s", p, resp.Status, body)
		}
	}
	_, body := h.get("queue")
	if !strings.Contains(body, "Spring sale") || !strings.Contains(body, "ann@example.com") {
		t.Errorf("the queue page does not list the message:\n%s", body)
	}
	_, body = h.post("queue", url.Values{"action": {"cancel"}, "id": {id}})
	_ = body
}

// The message page shows the lint warnings of the queued message, and
// says so when there are none.
func TestMessageLint(t *testing.T) {
	h := newHarness(t)
	m := &mime.Message{From: mail.Address{Address: "shop@sender.example"}, To: []mail.Address{{Address: "ann@example.com"}},
		Subject: "HUGE SPRING SALE NOW", HTML: `<p>Deals at <a href="https://bit.ly/x">our shop</a></p>`}
	id, err := h.c.EnqueueWith(testCtx(t), m, &relay.EnqueueOptions{Hold: true})
	if err != nil {
		t.Fatal(err)
	}
	_, body := h.get("message/" + id)
	for _, rule := range []string{"html-only", "subject-all-caps", "url-shortener", "SUBJ_ALL_CAPS"} {
		if !strings.Contains(body, rule) {
			t.Errorf("the message page does not show %s", rule)
		}
	}
	clean := h.enqueue("Your order", true, "", "bob@example.com")
	_, body = h.get("message/" + clean)
	if !strings.Contains(body, "passes every lint rule") || strings.Contains(body, "subject-all-caps") {
		t.Errorf("a clean message's lint section is wrong")
	}
}
