package relay_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mxrelay/mxrelay/internal/browser"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
)

// A tracked message in a real browser: the received copy's HTML is shown
// as a mail client would show it, the reader clicks the link, lands on the
// page the sender linked (a local server), and the click is in the
// history.
func TestTrackingBrowser(t *testing.T) {
	b := browser.New(t) // first: without Chromium, skip before any mail
	s, c, store, _, events := trackHarness(t)

	landing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<!doctype html><title>Spring offer</title><h1>`+r.URL.Query().Get("item")+`</h1>`)
	}))
	t.Cleanup(landing.Close)
	target := landing.URL + "/offer?item=tulips&ref=mail"

	m := testMessage("ann@example.com")
	m.HTML = `<!doctype html><html><head><title>Your mail</title></head><body><p>Spring is here.</p>` +
		`<p><a id="offer" href="` + target + `">See the tulips</a></p></body></html>`
	if _, err := c.SendWith(ctx(t), m, &relay.SendOptions{Track: true}); err != nil {
		t.Fatal(err)
	}
	html := htmlPart(t, s.Messages()[0].Data)
	if strings.Contains(html, target) {
		t.Fatalf("the link was not rewritten:\n%s", html)
	}
	client := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, html)
	}))
	t.Cleanup(client.Close)

	if err := chromedp.Do(b,
		chromedp.Navigate(client.URL),
		chromedp.WaitVisible(chromedp.CSS("#offer")),
		chromedp.Click(chromedp.CSS("#offer")),
		chromedp.WaitVisible(chromedp.CSS("h1")),
	); err != nil {
		t.Fatalf("clicking the link: %v", err)
	}
	loc, err := chromedp.Run(b, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if loc != target {
		t.Errorf("landed on %q, want %q", loc, target)
	}
	if h, _ := chromedp.Run(b, chromedp.Text(chromedp.CSS("h1"))); h != "tulips" {
		t.Errorf("landing page says %q", h)
	}
	e := events.waitFor(t, relay.EventClicked, "ann@example.com")
	if e.URL != target {
		t.Errorf("click event %+v", e)
	}
	// The image loaded too: the page fetched it from the open endpoint.
	events.waitFor(t, relay.EventOpened, "ann@example.com")
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, _, err := store.Records(ctx(t), queue.RecordFilter{Recipient: "ann@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		clicked := false
		for _, n := range recs[0].Recipients[0].Notes {
			if n.Type == "clicked" && n.Detail == target && strings.Contains(n.UserAgent, "Chrome") {
				clicked = true
			}
		}
		if clicked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no click in the history: %+v", recs[0].Recipients[0].Notes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if errs := browser.ConsoleErrors(b); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}
