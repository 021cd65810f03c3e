package console_test

import (
	"net/url"
	"strings"
	"testing"
)

func TestPagesRender(t *testing.T) {
	h := newHarness(t)
	id := h.enqueue("Spring sale", true, "spring", "ann@example.com", "bob@example.com")
	for _, p := range []string{"", "?range=hour", "?range=week", "queue", "queue?state=held", "message/" + id,
		"message/" + id + "/preview", "approvals", "history", "suppressions", "events", "static/style.css"} {
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
