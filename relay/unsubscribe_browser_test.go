package relay_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/mxrelay/mxrelay/internal/browser"
	"github.com/mxrelay/mxrelay/queue"
)

// The unsubscribe pages in a real browser: a recipient opens the link of a
// list message, confirms with the mouse, then uses the preferences page by
// keyboard alone. Everything the browser does must reach the suppression
// list, and the pages must load without a console error (a script, style
// or form the Content-Security-Policy blocks would show there).
func TestUnsubscribeBrowser(t *testing.T) {
	b := browser.New(t) // first: without Chromium, skip before any mail
	s, c, _, store, _ := listHarness(t)
	u := sendList(t, s, c, "ann@example.com", "news")

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(b, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(css string) string {
		t.Helper()
		v, err := chromedp.Run(b, chromedp.Text(chromedp.CSS(css)))
		if err != nil {
			t.Fatalf("text of %s: %v", css, err)
		}
		return strings.TrimSpace(v)
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(b, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	title := func() string {
		t.Helper()
		v, err := chromedp.Run(b, chromedp.Title())
		if err != nil {
			t.Fatalf("title: %v", err)
		}
		return v
	}
	entries := func() map[string]queue.Suppression {
		t.Helper()
		got, err := store.Suppressions(ctx(t), queue.SuppressionFilter{Address: "ann@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		by := map[string]queue.Suppression{}
		for _, e := range got {
			by[e.Scope] = e
		}
		return by
	}

	// 1. The link from the message: a confirmation page, nothing changed.
	do("opening the link", chromedp.Navigate(u), chromedp.WaitVisible(chromedp.CSS("form button")))
	if got := title(); got != "Unsubscribe · Example Shop" {
		t.Errorf("title %q", got)
	}
	if got := eval(`document.documentElement.lang`); got != "en" {
		t.Errorf("lang %q", got)
	}
	if got := text("h1"); got != "Unsubscribe" {
		t.Errorf("heading %q", got)
	}
	if got := text("main > p:not(.sender):not(.address)"); !strings.Contains(got, "“Weekly news”") {
		t.Errorf("the page does not name the list: %q", got)
	}
	if got := text(".address"); got != "ann@example.com" {
		t.Errorf("address shown %q", got)
	}
	if got := text("form button"); got != "Unsubscribe" {
		t.Errorf("button %q", got)
	}
	// The stylesheet loaded under the page's Content-Security-Policy.
	if got := eval(`getComputedStyle(document.querySelector("main")).maxWidth`); got == "none" {
		t.Errorf("style.css not applied (main max-width %q)", got)
	}
	if got := entries(); len(got) != 0 {
		t.Fatalf("opening the page suppressed: %+v", got)
	}

	// 2. The button: the done page, and the list's entry in the store.
	do("clicking Unsubscribe", chromedp.Click(chromedp.CSS("form button")), chromedp.WaitVisible(chromedp.CSS(`[role="status"]`)))
	if got := title(); got != "You are unsubscribed · Example Shop" {
		t.Errorf("title after the click %q", got)
	}
	if got, want := text(`[role="status"]`), "You will no longer receive “Weekly news” at this address."; got != want {
		t.Errorf("status %q, want %q", got, want)
	}
	got := entries()
	if e, ok := got["news"]; len(got) != 1 || !ok || e.Reason != queue.Unsubscribed || !strings.HasPrefix(e.Source, "page: ") {
		t.Fatalf("after the click: %+v", got)
	}

	// 3. The preferences page, by keyboard: Tab through the choices, Space
	// on "stop all mail", Tab to the button, Enter.
	do("following the preferences link", chromedp.Click(chromedp.CSS(`a[href*="/p/"]`)), chromedp.WaitVisible(chromedp.CSS("#all")))
	if got := title(); got != "Your email preferences · Example Shop" {
		t.Errorf("preferences title %q", got)
	}
	if got := text(".address"); got != "ann@example.com" {
		t.Errorf("preferences address %q", got)
	}
	checked := func() string {
		t.Helper()
		return eval(`[...document.querySelectorAll("input[type=checkbox]")].map(e => e.id + "=" + e.checked).join(" ")`)
	}
	if got, want := checked(), "list-news=false list-offers=true all=false"; got != want {
		t.Errorf("choices %q, want %q", got, want)
	}
	focused := func() string {
		t.Helper()
		return eval(`document.activeElement.id || document.activeElement.tagName.toLowerCase()`)
	}
	for _, want := range []string{"list-news", "list-offers", "all"} {
		do("Tab", chromedp.KeyEvent("\t"))
		if got := focused(); got != want {
			t.Fatalf("Tab focused %q, want %q", got, want)
		}
	}
	do("Space", chromedp.KeyEvent(" "))
	if got, want := checked(), "list-news=false list-offers=true all=true"; got != want {
		t.Errorf("after Space: %q, want %q", got, want)
	}
	do("Tab", chromedp.KeyEvent("\t"))
	if got := focused(); got != "button" {
		t.Fatalf("Tab focused %q, want the button", got)
	}
	if got := eval(`document.activeElement.textContent`); got != "Save preferences" {
		t.Errorf("focused button %q", got)
	}
	// The focus is visible (style.css outlines :focus-visible).
	if got := eval(`getComputedStyle(document.activeElement).outlineStyle`); got != "solid" {
		t.Errorf("the focused button has outline %q", got)
	}
	do("Enter", chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.CSS(`[role="status"]`)))
	if got, want := text(`[role="status"]`), "Your preferences are saved."; got != want {
		t.Errorf("status %q, want %q", got, want)
	}
	if got, want := checked(), "list-news=false list-offers=true all=true"; got != want {
		t.Errorf("saved choices shown %q, want %q", got, want)
	}
	got = entries()
	if len(got) != 2 || got["news"].Reason != queue.Unsubscribed || got[""].Reason != queue.Unsubscribed {
		t.Errorf("after saving: %+v", got)
	}

	if errs := browser.ConsoleErrors(b); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
