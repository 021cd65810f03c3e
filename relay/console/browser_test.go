package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/internal/browser"
	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/console"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// browserTest is the console's harness with a real browser logged in to
// it by basic authentication (the credentials in the URL, as a user
// would type them; the browser then sends them with every request to
// the console), and the Origin and Sec-Fetch-Site of every POST the
// console admitted.
type browserTest struct {
	t *testing.T
	b context.Context
	h *harness

	mu    sync.Mutex
	posts []seenPost
}

type seenPost struct{ path, origin, fetchSite string }

func newBrowserTest(t *testing.T, configure ...func(*relay.Client, *console.Options)) *browserTest {
	t.Helper()
	x := &browserTest{t: t, b: browser.New(t)} // first: without Chromium, skip before anything else
	watch := func(_ *relay.Client, o *console.Options) {
		auth := o.Authorize
		o.Authorize = func(w http.ResponseWriter, r *http.Request) (string, bool) {
			op, ok := auth(w, r)
			if ok && r.Method == http.MethodPost {
				x.mu.Lock()
				x.posts = append(x.posts, seenPost{r.URL.Path, r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site")})
				x.mu.Unlock()
			}
			return op, ok
		}
	}
	x.h = newHarness(t, append(configure, watch)...)
	x.do("setting the viewport", chromedp.EmulateViewport(1280, 900))
	return x
}

// url is the console's URL of path with the operator's credentials in it.
func (x *browserTest) url(path string) string {
	u, err := url.Parse(x.h.base + path)
	if err != nil {
		x.t.Fatal(err)
	}
	u.User = url.UserPassword(testUser, testPass)
	return u.String()
}

// stepTimeout bounds one step (a page to load, an element to click):
// the pages are served from memory, so a step that takes longer waits for
// something that is not there. The browser's life is bounded too, by
// browser.Timeout.
const stepTimeout = 10 * time.Second

// step is the browser's context for one step.
func (x *browserTest) step() context.Context {
	ctx, cancel := context.WithTimeout(x.b, stepTimeout)
	x.t.Cleanup(cancel)
	return ctx
}

func (x *browserTest) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	x.t.Helper()
	if err := chromedp.Do(x.step(), steps...); err != nil {
		x.t.Fatalf("%s: %v", what, err)
	}
}

// open loads a console page and fails unless it answers 200.
func (x *browserTest) open(path string) {
	x.t.Helper()
	resp, err := chromedp.Run(x.step(), chromedp.NavigateResponse(x.url(path)))
	if err != nil {
		x.t.Fatalf("opening %s: %v", path, err)
	}
	if resp.Status != http.StatusOK {
		x.t.Fatalf("opening %s: %d %s", path, resp.Status, resp.StatusText)
	}
}

// submit runs the steps (a click that submits a form) and waits for the
// page the browser lands on; it returns that page's response (after the
// console's redirect, if any).
func (x *browserTest) submit(what string, steps ...chromedp.Action[chromedp.Void]) *network.Response {
	x.t.Helper()
	resp, err := chromedp.RunResponse(x.step(), steps...)
	if err != nil {
		x.t.Fatalf("%s: %v", what, err)
	}
	return resp
}

// text is the rendered text of the first element css selects, which
// must be there (the pages are static: a loaded page has all of its
// elements); "" and an error when it is not.
func (x *browserTest) text(css string) string {
	x.t.Helper()
	sel, _ := json.Marshal(css)
	v := browserEval[*string](x, `(e => e ? e.innerText : null)(document.querySelector(`+string(sel)+`))`)
	if v == nil {
		x.t.Errorf("no %s on %s", css, x.location())
		return ""
	}
	return strings.TrimSpace(*v)
}

func (x *browserTest) title() string {
	x.t.Helper()
	v, err := chromedp.Run(x.step(), chromedp.Title())
	if err != nil {
		x.t.Fatalf("title: %v", err)
	}
	return v
}

func (x *browserTest) location() string {
	x.t.Helper()
	v, err := chromedp.Run(x.step(), chromedp.Location())
	if err != nil {
		x.t.Fatalf("location: %v", err)
	}
	return v
}

// browserEval evaluates js in the page (DevTools runs it whatever the page's
// Content-Security-Policy says) and returns its value.
func browserEval[T any](x *browserTest, js string) T {
	x.t.Helper()
	v, err := chromedp.Run(x.step(), chromedp.Evaluate[T](js))
	if err != nil {
		x.t.Fatalf("%s: %v", js, err)
	}
	return v
}

// noConsoleErrors fails the test if a page has reported an error so far.
func (x *browserTest) noConsoleErrors(where string) {
	x.t.Helper()
	if errs := browser.ConsoleErrors(x.b); len(errs) > 0 {
		x.t.Errorf("%s: console errors:\n%s", where, strings.Join(errs, "\n"))
	}
}

// previewFrame is the message page's preview frame, as a target of its
// own: Chromium runs the sandboxed frame (an opaque origin) in a process
// of its own, whose errors browser.ConsoleErrors of the page does not
// hear and whose document script on the page cannot reach.
type previewFrame struct {
	ctx context.Context // chromedp's context for the frame

	mu     sync.Mutex
	errors []string
}

// frame attaches to the preview frame of the page loaded now, whose src
// is src ("/console/message/ID/preview"). The attachment turns on the
// frame's Log domain, which replays what the frame reported before.
func (x *browserTest) frame(src string) *previewFrame {
	x.t.Helper()
	f := &previewFrame{}
	var id target.ID
	if !browserWait(stepTimeout, func() bool {
		infos, err := chromedp.Targets(x.b)
		if err != nil {
			x.t.Fatalf("listing the targets: %v", err)
		}
		for _, ti := range infos {
			if u, err := url.Parse(ti.URL); err == nil && ti.Type == "iframe" && u.RequestURI() == src {
				id = ti.TargetID
			}
		}
		return id != ""
	}) {
		x.t.Fatalf("no target for the preview frame %s", src)
	}
	ctx, cancel := chromedp.NewContext(x.b, chromedp.WithTargetID(id), chromedp.WithListener(f.listen))
	x.t.Cleanup(cancel)
	f.ctx = ctx
	if err := chromedp.Do(ctx); err != nil {
		x.t.Fatalf("attaching to the preview frame: %v", err)
	}
	return f
}

func (f *previewFrame) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError {
			return
		}
		msg = string(ev.Entry.Source) + " error: " + ev.Entry.Text
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError {
			return
		}
		msg = "console.error"
	default:
		return
	}
	f.mu.Lock()
	f.errors = append(f.errors, msg)
	f.mu.Unlock()
}

func (f *previewFrame) errs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.errors)
}

// frameEval evaluates js in the frame (DevTools reaches it; the page
// cannot).
func frameEval[T any](x *browserTest, f *previewFrame, js string) T {
	x.t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		x.t.Fatalf("in the preview frame: %s: %v", js, err)
	}
	return v
}

// enqueueHTML queues a message with the HTML part html.
func (x *browserTest) enqueueHTML(subject, html string, held bool, to ...string) string {
	x.t.Helper()
	m := &mime.Message{From: mail.Address{Name: "Shop", Address: "shop@sender.example"}, Subject: subject,
		Text: "Hello,\r\n\r\nthis is " + subject + ".\r\n", HTML: html}
	for _, a := range to {
		m.To = append(m.To, mail.Address{Address: a})
	}
	id, err := x.h.c.EnqueueWith(testCtx(x.t), m, &relay.EnqueueOptions{Hold: held})
	if err != nil {
		x.t.Fatal(err)
	}
	return id
}

// browserRecorder is a server on loopback that counts the requests to each
// path; it answers images with a small PNG.
type browserRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newBrowserRecorder(t *testing.T) *browserRecorder {
	rec := &browserRecorder{hits: map[string]int{}}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.hits[r.URL.Path]++
		rec.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, ".png") {
			w.Header().Set("Content-Type", "image/png")
			w.Write(browserPNG)
			return
		}
		io.WriteString(w, "recorded")
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (rec *browserRecorder) count(path string) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.hits[path]
}

func (rec *browserRecorder) all() map[string]int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return maps.Clone(rec.hits)
}

// browserWait polls cond until it holds or d passes, and reports whether it
// held.
func browserWait(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// browserPNG is a 1×1 PNG.
var browserPNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89" +
	"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")

// The console's main pages in a real browser: the dashboard, the queue
// and a message load with their headings, the stylesheet applies, and no
// page reports a console error (a Content-Security-Policy violation, a
// resource that fails to load: the preview's blocked remote image among
// them, which the preview strips rather than leaving to the policy).
func TestBrowserPages(t *testing.T) {
	x := newBrowserTest(t)
	img := newBrowserRecorder(t)
	held := x.h.enqueue("Spring sale", true, "spring", "ann@example.com", "bob@example.com")
	id := x.enqueueHTML("Autumn letter", `<!doctype html><html><head><style>h1{color:#a33}</style></head><body>`+
		`<h1>Autumn</h1><p>Leaves are falling.</p><img src="`+img.URL+`/banner.png" alt="banner" width="300" height="80"></body></html>`,
		false, "cid@example.com")

	x.open("")
	if got, want := x.title(), "Dashboard · Test console"; got != want {
		t.Errorf("dashboard title %q, want %q", got, want)
	}
	if got := x.text("h1"); got != "Dashboard" {
		t.Errorf("dashboard heading %q", got)
	}
	if got := x.text(`header nav a[aria-current="page"]`); got != "Dashboard" {
		t.Errorf("current page in the menu: %q", got)
	}
	if got := x.text("header .brand"); got != "Test console" { // the harness's Options.Title
		t.Errorf("console named %q", got)
	}
	if got := x.text("header .who"); got != testUser {
		t.Errorf("operator shown %q", got)
	}
	if n := browserEval[int](x, `document.querySelectorAll(".cards .card").length`); n != 4 {
		t.Errorf("%d figure cards, want 4", n)
	}
	if n := browserEval[int](x, `document.querySelectorAll(".charts svg.chart").length`); n < 5 {
		t.Errorf("%d charts", n)
	}
	if got := x.text(".cards .card .big"); got != "1" { // one queued, one held
		t.Errorf("queue card says %q", got)
	}
	// The stylesheet loaded under the console's Content-Security-Policy.
	if got := browserEval[string](x, `getComputedStyle(document.querySelector("header.top")).display`); got != "flex" {
		t.Errorf("style.css not applied (header display %q)", got)
	}
	x.noConsoleErrors("dashboard")

	x.open("queue")
	if got := x.text("h1"); got != "Queue" {
		t.Errorf("queue heading %q", got)
	}
	if got := x.text(`header nav a[aria-current="page"]`); got != "Queue" {
		t.Errorf("current page in the menu: %q", got)
	}
	rows := browserEval[[]string](x, `[...document.querySelectorAll("table.list tbody tr")].map(tr => tr.innerText.replace(/\s+/g, " ").trim())`)
	if len(rows) != 2 {
		t.Fatalf("queue rows %q", rows)
	}
	if !strings.Contains(rows[0], "Spring sale") || !strings.Contains(rows[0], "held") || !strings.Contains(rows[0], "ann@example.com") {
		t.Errorf("first row %q", rows[0])
	}
	if !strings.Contains(rows[1], "Autumn letter") || !strings.Contains(rows[1], "queued") || !strings.Contains(rows[1], "cid@example.com") {
		t.Errorf("second row %q", rows[1])
	}
	if got := browserEval[[]string](x, `[...document.querySelectorAll("table.list input[name=id]")].map(e => e.value)`); !slices.Equal(got, []string{held, id}) {
		t.Errorf("checkboxes for %q, want %q", got, []string{held, id})
	}
	x.noConsoleErrors("queue")

	x.open("message/" + id)
	if got, want := x.title(), "Autumn letter · Test console"; got != want {
		t.Errorf("message title %q, want %q", got, want)
	}
	if got := x.text("h1"); got != "Autumn letter" {
		t.Errorf("message heading %q", got)
	}
	if got := x.text("dl.meta"); !strings.Contains(got, "shop@sender.example") || !strings.Contains(got, "cid@example.com") || !strings.Contains(got, "queued") {
		t.Errorf("message facts %q", got)
	}
	if got := x.text("#preview-h + span"); !strings.Contains(got, "1 remote image blocked") || !strings.Contains(got, "Load images") {
		t.Errorf("preview bar %q", got)
	}
	if got := browserEval[string](x, `document.querySelector("iframe.preview").getAttribute("src")`); got != "/console/message/"+id+"/preview" {
		t.Errorf("preview frame src %q", got)
	}
	if got := x.text("#rcpt-h + table tbody"); !strings.Contains(got, "cid@example.com") {
		t.Errorf("recipients %q", got)
	}
	if got := browserEval[[]string](x, `[...document.querySelectorAll("form.actions button")].map(b => b.textContent)`); !slices.Equal(got, []string{"Retry now", "Hold", "Cancel"}) {
		t.Errorf("actions of a queued message: %q", got)
	}
	// The frame has loaded (the page's load event waits for it), shows
	// the message, and asked nothing of the image's server: the preview
	// took the image's source away, so the frame's policy had nothing to
	// refuse (a violation would be an error of the frame).
	if n := img.count("/banner.png"); n != 0 {
		t.Errorf("the blocked image was fetched %d times", n)
	}
	x.noConsoleErrors("message page")
	f := x.frame("/console/message/" + id + "/preview")
	if got := frameEval[string](x, f, `document.body.innerText`); !strings.Contains(got, "Autumn") || !strings.Contains(got, "Leaves are falling.") {
		t.Errorf("the preview shows %q", got)
	}
	if got := frameEval[string](x, f, `getComputedStyle(document.querySelector("h1")).color`); got != "rgb(170, 51, 51)" {
		t.Errorf("the message's own style is not applied in the preview: h1 color %q", got)
	}
	if got := frameEval[string](x, f, `(i => i.getAttribute("src") + " " + i.dataset.blockedSrc)(document.querySelector("img"))`); got != " "+img.URL+"/banner.png" {
		t.Errorf("the blocked image in the preview: src, data-blocked-src = %q", got)
	}
	if errs := f.errs(); len(errs) > 0 {
		t.Errorf("the preview frame reported:\n%s", strings.Join(errs, "\n"))
	}

	x.open("message/" + held)
	if got := browserEval[[]string](x, `[...document.querySelectorAll("form.actions button")].map(b => b.textContent)`); !slices.Equal(got, []string{"Approve and send", "Reject", "Release without approval", "Cancel"}) {
		t.Errorf("actions of a held message: %q", got)
	}
	x.noConsoleErrors("held message page")
}

// Approving a held message with the mouse sends it, and the history says
// who approved it.
func TestBrowserApprove(t *testing.T) {
	x := newBrowserTest(t)
	id := x.h.enqueue("Spring sale", true, "spring", "ann@example.com")
	x.h.run()

	x.open("message/" + id)
	resp := x.submit("clicking Approve and send", chromedp.Click(chromedp.CSS(`form.actions button[value="approve"]`)))
	if resp.Status != http.StatusOK || !strings.HasSuffix(resp.URL, "/console/message/"+id+"?done="+url.QueryEscape("1 message approved: "+id)) {
		t.Errorf("after approving: %d %s", resp.Status, resp.URL)
	}
	if got, want := x.text(`p.flash[role="status"]`), "1 message approved: "+id; got != want {
		t.Errorf("flash %q, want %q", got, want)
	}
	msgs := x.h.srv.WaitMessages(1, 10*time.Second)
	if len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"ann@example.com"}) || msgs[0].Host != "mx.example.com" ||
		!strings.Contains(string(msgs[0].Data), "Subject: Spring sale") {
		t.Fatalf("delivered: %+v", msgs)
	}
	var rec *queue.Record
	if !browserWait(10*time.Second, func() bool {
		var err error
		rec, err = x.h.store.Record(testCtx(t), id)
		return err == nil && len(rec.Recipients) == 1 && rec.Recipients[0].Status == "delivered"
	}) {
		t.Fatalf("the history does not show the delivery: %+v", rec)
	}
	var approved []queue.Note
	for _, n := range rec.Recipients[0].Notes {
		if n.Type == "approved" {
			approved = append(approved, n)
		}
	}
	if len(approved) != 1 || approved[0].Detail != testUser {
		t.Errorf("approval notes %+v, want one naming %q", rec.Recipients[0].Notes, testUser)
	}
	if _, err := x.h.c.Queue().Get(testCtx(t), id); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("the job is still queued after delivery: %v", err)
	}
	x.noConsoleErrors("approving")
}

// Cancelling from the queue page: tick one message, press Cancel; it is
// gone, the other stays, and the page says so.
func TestBrowserCancel(t *testing.T) {
	x := newBrowserTest(t)
	keep := x.h.enqueue("Keep me", true, "", "ann@example.com")
	gone := x.h.enqueue("Cancel me", true, "", "bob@example.com")

	x.open("queue")
	x.do("ticking the message", chromedp.Click(chromedp.CSS(`input[name="id"][value="`+gone+`"]`)))
	if !browserEval[bool](x, `document.querySelector('input[name="id"][value="`+gone+`"]').checked`) {
		t.Fatal("the click did not tick the box")
	}
	resp := x.submit("clicking Cancel", chromedp.Click(chromedp.CSS(`fieldset.bulk button[value="cancel"]`)))
	if resp.Status != http.StatusOK {
		t.Errorf("after cancelling: %d %s", resp.Status, resp.URL)
	}
	if got, want := x.text(`p.flash[role="status"]`), "1 message cancelled: "+gone; got != want {
		t.Errorf("flash %q, want %q", got, want)
	}
	if got := x.text("h1"); got != "Queue" {
		t.Errorf("landed on %q (%s)", got, x.location())
	}
	q := x.h.c.Queue()
	if _, err := q.Get(testCtx(t), gone); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("the cancelled job: %v, want queue.ErrNotFound", err)
	}
	if j, err := q.Get(testCtx(t), keep); err != nil || !j.Held {
		t.Errorf("the other job: %v (held: %v)", err, err == nil && j.Held)
	}
	if got := browserEval[[]string](x, `[...document.querySelectorAll("table.list input[name=id]")].map(e => e.value)`); !slices.Equal(got, []string{keep}) {
		t.Errorf("the queue page lists %q, want only %q", got, keep)
	}
	x.noConsoleErrors("cancelling")
}

// The suppressions page: the form adds an entry, the list shows it, its
// Remove button removes it; the store follows each step.
func TestBrowserSuppressions(t *testing.T) {
	x := newBrowserTest(t)
	stored := func() []queue.Suppression {
		t.Helper()
		got, err := x.h.store.Suppressions(testCtx(t), queue.SuppressionFilter{Address: "zed@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	x.open("suppressions")
	if got := x.text("h1"); got != "Suppressions" {
		t.Errorf("heading %q", got)
	}
	if got := x.text("p.empty"); got != "No entry matches." {
		t.Errorf("empty list says %q", got)
	}
	x.do("filling the form",
		chromedp.SendKeys(chromedp.CSS(`form.add input[name="address"]`), "Zed@Example.com"),
		chromedp.SendKeys(chromedp.CSS(`form.add input[name="list"]`), "news"),
		chromedp.SetValue(chromedp.CSS(`form.add select[name="reason"]`), "complained"))
	resp := x.submit("clicking Suppress", chromedp.Click(chromedp.CSS(`form.add button[type="submit"]`)))
	if resp.Status != http.StatusOK {
		t.Errorf("after adding: %d %s", resp.Status, resp.URL)
	}
	if got, want := x.text(`p.flash[role="status"]`), "suppressed Zed@Example.com (list news)"; got != want {
		t.Errorf("flash %q, want %q", got, want)
	}
	got := stored()
	if len(got) != 1 || got[0].Scope != "news" || got[0].Reason != queue.Complained || got[0].Source != "console: "+testUser {
		t.Fatalf("stored after adding: %+v", got)
	}
	rows := browserEval[[]string](x, `[...document.querySelectorAll("table.list tbody tr")].map(tr => tr.innerText.replace(/\s+/g, " ").trim())`)
	if len(rows) != 1 || !strings.Contains(rows[0], got[0].Address) || !strings.Contains(rows[0], "news") || !strings.Contains(rows[0], "complained") {
		t.Fatalf("listed %q", rows)
	}

	remove := `button[aria-label="Remove ` + got[0].Address + ` from news"]`
	resp = x.submit("clicking Remove", chromedp.Click(chromedp.CSS(remove)))
	if resp.Status != http.StatusOK {
		t.Errorf("after removing: %d %s", resp.Status, resp.URL)
	}
	if got, want := x.text(`p.flash[role="status"]`), "removed "+got[0].Address+" (list news) from the suppression list"; got != want {
		t.Errorf("flash %q, want %q", got, want)
	}
	if got := stored(); len(got) != 0 {
		t.Errorf("stored after removing: %+v", got)
	}
	if got := x.text("p.empty"); got != "No entry matches." {
		t.Errorf("after removing the list says %q", got)
	}
	x.noConsoleErrors("suppressions")
}

// The preview frame runs no script of the message: not a <script>, not
// an onerror of an image, not an onload of an SVG, whether they would
// call a server, navigate the console's page or change it. The frame is
// sandboxed without allow-scripts and its document is of an opaque
// origin, cross-origin to the console's page.
func TestBrowserPreviewScripts(t *testing.T) {
	x := newBrowserTest(t)
	rec := newBrowserRecorder(t)
	r := rec.URL
	// Every way in: each would fetch the recorder, then try the page.
	attack := func(tag string) string {
		return fmt.Sprintf(`document.documentElement.dataset.ran=(document.documentElement.dataset.ran||'')+'%[2]s ';`+
			`fetch('%[1]s/%[2]s-fetch');new Image().src='%[1]s/%[2]s-img';`+
			`try{parent.document.body.dataset.pwned='%[2]s'}catch(e){}try{parent.document.title='pwned'}catch(e){}`+
			`try{top.location='%[1]s/%[2]s-top'}catch(e){}`, r, tag)
	}
	html := `<!doctype html><html><head><title>mail</title></head><body><h1 id="hi">Hello</h1>` +
		`<script>` + attack("script") + `</script>` +
		`<img src=x alt="x" onerror="` + attack("onerror") + `">` +
		`<img src="data:," alt="broken" onerror="` + attack("dataerror") + `">` +
		`<svg onload="` + attack("svg") + `" width="10" height="10"><rect width="10" height="10"/></svg>` +
		`<body onload="` + attack("bodyload") + `">` +
		`<img src="` + r + `/sentinel.png" alt="sentinel" width="20" height="20">` +
		`</body></html>`
	id := x.enqueueHTML("Scripted", html, true, "ann@example.com")

	check := func(images bool) {
		t.Helper()
		page := "message/" + id
		if images {
			page += "?images=1"
		}
		x.open(page)
		want := x.location()
		if !strings.HasSuffix(want, "/console/"+page) {
			t.Fatalf("opened %s", want)
		}
		if images {
			// The frame's one allowed request: proof that it loaded and
			// ran as far as its images.
			if !browserWait(10*time.Second, func() bool { return rec.count("/sentinel.png") > 0 }) {
				t.Fatalf("the preview never loaded its remote image: %v", rec.all())
			}
		}
		// Let a script that ran have its say (there is nothing to wait
		// for when none ran).
		time.Sleep(300 * time.Millisecond)
		for path := range rec.all() {
			if path != "/sentinel.png" {
				t.Errorf("images=%v: a script of the preview reached the recorder: %v", images, rec.all())
				break
			}
		}
		if got := x.location(); got != want {
			t.Errorf("images=%v: the page went to %s", images, got)
		}
		if got := x.title(); got != "Scripted · Test console" {
			t.Errorf("images=%v: the page's title became %q", images, got)
		}
		if got := browserEval[string](x, `JSON.stringify(document.body.dataset)`); got != "{}" {
			t.Errorf("images=%v: the page's body got data %s", images, got)
		}
		if got := x.text("h1"); got != "Scripted" {
			t.Errorf("images=%v: the page's heading %q", images, got)
		}
		sandbox := browserEval[[]string](x, `(f => f.hasAttribute("sandbox") ? [...f.sandbox] : null)(document.querySelector("iframe.preview"))`)
		if sandbox == nil {
			t.Errorf("images=%v: the preview frame has no sandbox attribute", images)
		} else if slices.Contains(sandbox, "allow-scripts") || slices.Contains(sandbox, "allow-same-origin") {
			t.Errorf("images=%v: the frame's sandbox allows %q", images, sandbox)
		}
		if got := browserEval[string](x, `(f => f.contentDocument === null ? "null" : "readable: " + f.contentDocument.title)(document.querySelector("iframe.preview"))`); got != "null" {
			t.Errorf("images=%v: the frame's document is open to the page: %s", images, got)
		}
		if got := browserEval[string](x, `(() => { try { return "readable: " + frames[0].document.title } catch (e) { return e.name } })()`); got != "SecurityError" {
			t.Errorf("images=%v: reading the frame's document: %s", images, got)
		}
		if got := browserEval[int](x, `frames.length`); got != 1 {
			t.Errorf("images=%v: %d frames", images, got)
		}
		// Inside the frame, through DevTools: the message is there, its
		// origin is opaque, no script ran, and Chromium says it refused
		// them for the sandbox.
		src := browserEval[string](x, `document.querySelector("iframe.preview").getAttribute("src")`)
		f := x.frame(src)
		if got := frameEval[string](x, f, `origin`); got != "null" {
			t.Errorf("images=%v: the frame's origin is %q, want an opaque one", images, got)
		}
		if got := frameEval[string](x, f, `document.getElementById("hi").textContent`); got != "Hello" {
			t.Errorf("images=%v: the frame shows %q", images, got)
		}
		if got := frameEval[string](x, f, `JSON.stringify(document.documentElement.dataset)`); got != "{}" {
			t.Errorf("images=%v: scripts ran in the frame: %s", images, got)
		}
		if got := frameEval[string](x, f, `document.title`); got != "mail" {
			t.Errorf("images=%v: the frame's title became %q", images, got)
		}
		errs := f.errs()
		if !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, "allow-scripts") }) {
			t.Errorf("images=%v: Chromium did not report refusing a script of the frame:\n%s", images, strings.Join(errs, "\n"))
		}
		t.Logf("images=%v: the frame reported:\n%s", images, strings.Join(errs, "\n"))
	}
	check(false)
	check(true)
	x.noConsoleErrors("the page around the preview")
}

// A remote image in the preview is fetched only once the operator asks
// ("Load images"), and a tracking pixel never is.
func TestBrowserPreviewImages(t *testing.T) {
	x := newBrowserTest(t)
	img := newBrowserRecorder(t)
	html := `<!doctype html><html><body><h1>News</h1>` +
		`<img id="remote" src="` + img.URL + `/remote.png" alt="remote picture" width="200" height="100">` +
		`<p>Read on.</p><img src="` + img.URL + `/open/pixel.png?r=ann" width="1" height="1" alt="">` +
		`</body></html>`
	id := x.enqueueHTML("With pictures", html, false, "ann@example.com")

	x.open("message/" + id)
	if got := x.text("#preview-h + span"); got != "1 remote image blocked · Load images" {
		t.Errorf("preview bar %q", got)
	}
	if got := img.all(); len(got) != 0 {
		t.Fatalf("opening the message fetched %v", got)
	}
	x.noConsoleErrors("the message with images blocked")
	f := x.frame("/console/message/" + id + "/preview")
	if got := frameEval[[]string](x, f, `[...document.images].map(i => i.id + " src=" + i.getAttribute("src"))`); !slices.Equal(got, []string{"remote src="}) {
		t.Errorf("images in the preview: %q, want the remote one without its source and no pixel", got)
	}
	if errs := f.errs(); len(errs) > 0 {
		t.Errorf("the preview frame with images blocked reported:\n%s", strings.Join(errs, "\n"))
	}

	resp := x.submit("clicking Load images", chromedp.Click(chromedp.CSS(`#preview-h + span a`)))
	if resp.Status != http.StatusOK || !strings.HasSuffix(resp.URL, "/console/message/"+id+"?images=1") {
		t.Errorf("Load images went to %d %s", resp.Status, resp.URL)
	}
	if !browserWait(10*time.Second, func() bool { return img.count("/remote.png") >= 1 }) {
		t.Fatalf("the remote image was not fetched after Load images: %v", img.all())
	}
	if got := x.text("#preview-h ~ a"); got != "Block remote images" {
		t.Errorf("the preview bar offers %q", got)
	}
	if got := browserEval[string](x, `document.querySelector("iframe.preview").getAttribute("src")`); got != "/console/message/"+id+"/preview?images=1" {
		t.Errorf("preview frame src %q", got)
	}
	time.Sleep(200 * time.Millisecond) // the pixel, were it there, came with the image
	if n := img.count("/open/pixel.png"); n != 0 {
		t.Errorf("the tracking pixel was fetched %d times", n)
	}
	x.noConsoleErrors("the message with images loaded")
	f = x.frame("/console/message/" + id + "/preview?images=1")
	if got := frameEval[[]string](x, f, `[...document.images].map(i => i.id + " " + i.complete + " " + i.naturalWidth)`); !slices.Equal(got, []string{"remote true 1"}) {
		t.Errorf("images in the preview: %q, want the remote one loaded (a 1×1 PNG) and no pixel", got)
	}
	if errs := f.errs(); len(errs) > 0 {
		t.Errorf("the preview frame with images loaded reported (its policy should allow http: images now):\n%s", strings.Join(errs, "\n"))
	}
}

// A form posted without its CSRF token, or with a wrong one, is refused
// with 403 and changes nothing; the same forms as served work, and the
// browser sends them with the console's own Origin (the Referrer-Policy
// is same-origin: under no-referrer Chromium would send "Origin: null").
func TestBrowserCSRF(t *testing.T) {
	x := newBrowserTest(t)
	held := x.h.enqueue("Held for review", true, "", "ann@example.com")
	queued := x.h.enqueue("Waiting", true, "", "bob@example.com")
	q := x.h.c.Queue()

	// The message page's form without its token: Approve is refused.
	x.open("message/" + held)
	x.do("removing the token", chromedp.Evaluate[chromedp.Void](`document.querySelector('form.actions input[name="csrf"]').remove()`))
	resp := x.submit("approving without a token", chromedp.Click(chromedp.CSS(`form.actions button[value="approve"]`)))
	if resp.Status != http.StatusForbidden {
		t.Errorf("approving without a token: %d %s", resp.Status, resp.URL)
	}
	if got := x.text("body"); !strings.Contains(got, "missing or stale form token") {
		t.Errorf("the refusal says %q", got)
	}
	if j, err := q.Get(testCtx(t), held); err != nil || !j.Held {
		t.Errorf("after the refused approval: %v (held: %v); want the job still held", err, err == nil && j.Held)
	}
	if rec, err := x.h.store.Record(testCtx(t), held); err == nil {
		t.Errorf("the refused approval left a record: %+v", rec.Recipients)
	} else if !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("reading the history: %v", err)
	}

	// The queue page's form with a wrong token: Cancel is refused.
	x.open("queue")
	x.do("changing the token", chromedp.Evaluate[chromedp.Void](`document.querySelector('input[name="csrf"]').value = "AAAA" + document.querySelector('input[name="csrf"]').value.slice(4)`))
	x.do("ticking the message", chromedp.Click(chromedp.CSS(`input[name="id"][value="`+queued+`"]`)))
	resp = x.submit("cancelling with a wrong token", chromedp.Click(chromedp.CSS(`fieldset.bulk button[value="cancel"]`)))
	if resp.Status != http.StatusForbidden {
		t.Errorf("cancelling with a wrong token: %d %s", resp.Status, resp.URL)
	}
	if _, err := q.Get(testCtx(t), queued); err != nil {
		t.Errorf("after the refused cancel: %v; want the job still there", err)
	}

	// The same forms as served.
	x.open("queue")
	x.do("ticking the message", chromedp.Click(chromedp.CSS(`input[name="id"][value="`+queued+`"]`)))
	resp = x.submit("cancelling", chromedp.Click(chromedp.CSS(`fieldset.bulk button[value="cancel"]`)))
	if resp.Status != http.StatusOK || x.text(`p.flash[role="status"]`) != "1 message cancelled: "+queued {
		t.Errorf("cancelling with the form as served: %d %s", resp.Status, resp.URL)
	}
	if _, err := q.Get(testCtx(t), queued); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("after cancelling: %v, want queue.ErrNotFound", err)
	}
	x.open("message/" + held)
	resp = x.submit("rejecting", chromedp.SendKeys(chromedp.CSS(`form.actions input[name="reason"]`), "not this week"),
		chromedp.Click(chromedp.CSS(`form.actions button[value="reject"]`)))
	if resp.Status != http.StatusOK {
		t.Errorf("rejecting with the form as served: %d %s", resp.Status, resp.URL)
	}
	if got, want := x.text(`p.flash[role="status"]`), "1 message rejected: "+held; got != want {
		t.Errorf("flash %q, want %q", got, want)
	}
	if rec, err := x.h.store.Record(testCtx(t), held); err != nil || len(rec.Recipients) != 1 || rec.Recipients[0].Status != "rejected" || rec.Recipients[0].Reply != "not this week" {
		t.Errorf("the rejection's record: %+v, %v", rec, err)
	}

	x.mu.Lock()
	posts := slices.Clone(x.posts)
	x.mu.Unlock()
	if len(posts) != 4 {
		t.Errorf("the console got %d POSTs, want 4: %+v", len(posts), posts)
	}
	for _, p := range posts {
		if p.origin != x.h.web.URL || p.fetchSite != "same-origin" {
			t.Errorf("POST %s came with Origin %q, Sec-Fetch-Site %q; want %q, same-origin", p.path, p.origin, p.fetchSite, x.h.web.URL)
		}
	}
}

// Screenshots of the dashboard, with some traffic, and of a message page,
// into the test's directory, and into $MXRELAY_SCREENSHOTS when it names
// one (the README's pictures: MXRELAY_SCREENSHOTS=docs).
func TestBrowserScreenshots(t *testing.T) {
	x := newBrowserTest(t, func(_ *relay.Client, o *console.Options) { o.Title = "" }) // the default name, for the README
	h := x.h
	// bounce.example refuses one mailbox and defers another.
	if _, err := h.srv.AddHost("mx.bounce.example", relaytest.HostConfig{RcptReply: func(rcpt string) *relaytest.Reply {
		switch {
		case strings.HasPrefix(rcpt, "gone@"):
			return &relaytest.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such mailbox"}
		case strings.HasPrefix(rcpt, "full@"):
			return &relaytest.Reply{Code: 452, Enhanced: "4.2.2", Text: "mailbox full"}
		}
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	h.srv.AddDomain("bounce.example", "mx.bounce.example")
	send := func(to string) {
		t.Helper()
		m := &mime.Message{From: mail.Address{Name: "Shop", Address: "shop@sender.example"}, Subject: "Your order",
			To: []mail.Address{{Address: to}}, Text: "Thank you for your order.\r\n"}
		_, err := h.c.Send(testCtx(t), m)
		if bounce := strings.HasPrefix(to, "gone@"); bounce != (err != nil) {
			t.Errorf("sending to %s: %v", to, err)
		}
	}
	for _, to := range []string{"ann@example.com", "bob@example.com", "cid@example.com", "dan@example.com", "eve@example.com",
		"ann@bounce.example", "bob@bounce.example", "gone@bounce.example", "full@bounce.example"} {
		send(to)
	}
	h.enqueue("Spring sale", true, "spring", "ann@example.com", "bob@example.com", "cid@example.com")
	h.enqueue("Spring sale", true, "spring", "dan@example.com")
	img := newBrowserRecorder(t)
	id := x.enqueueHTML("Your spring order is on its way", `<!doctype html><html><head><style>
body{font:16px/1.5 Georgia,serif;color:#222;margin:0;background:#f3efe6}
.wrap{max-width:560px;margin:24px auto;background:#fff;padding:24px 32px;border-radius:6px}
h1{font-size:26px;color:#2d5a27;margin:0 0 12px}
a.button{display:inline-block;background:#2d5a27;color:#fff;padding:10px 18px;border-radius:4px;text-decoration:none}
</style></head><body><div class="wrap"><img src="`+img.URL+`/banner.png" alt="Spring at the shop" width="560" height="120">
<h1>Your order is on its way</h1><p>Dear Ann, the tulips you ordered left our garden this morning and should reach you on Thursday.</p>
<p><a class="button" href="https://shop.example/orders/1234">Track your parcel</a></p>
<p style="color:#777;font-size:13px">Shop · 1 Garden Lane · <a href="https://shop.example/u">unsubscribe</a></p></div></body></html>`,
		true, "ann@example.com", "bob@example.com")

	dir := t.TempDir()
	out := os.Getenv("MXRELAY_SCREENSHOTS")
	shoot := func(page, name string) {
		t.Helper()
		x.open(page)
		png, err := chromedp.Run(x.step(), chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot of %s: %v", page, err)
		}
		if len(png) < 1000 || string(png[1:4]) != "PNG" {
			t.Fatalf("screenshot of %s: %d bytes, not a PNG", page, len(png))
		}
		t.Logf("%s: %d KB", name, len(png)/1024)
		if len(png) > 150<<10 {
			t.Logf("%s is over 150 KB: too big for the README", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		if out != "" {
			if err := os.WriteFile(filepath.Join(out, name), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	shoot("", "dashboard.png")
	if n := browserEval[int](x, `document.querySelectorAll(".charts svg.chart rect").length`); n == 0 {
		t.Errorf("the dashboard's charts have no bars")
	}
	x.noConsoleErrors("dashboard with traffic")
	shoot("message/"+id, "message.png")
	x.noConsoleErrors("message page")
}

// The preflight page in a real browser: the form, prefilled with the
// signer's domain, is submitted for a domain of the harness's DNS whose
// zone lacks the DKIM key's record; the page shows that error first,
// with the record to publish in a block a click selects whole, and the
// summary; no page reports a console error.
func TestBrowserPreflight(t *testing.T) {
	x := newBrowserTest(t, func(c *relay.Client, _ *console.Options) {
		key, err := dkim.GenerateKey(dkim.Ed25519)
		if err != nil {
			t.Fatal(err)
		}
		if c.Signer, err = dkim.NewSigner(dkim.Config{Domain: "example.org", Selector: "mail", Key: key}); err != nil {
			t.Fatal(err)
		}
	})
	keyTXT, err := dkim.TXTRecord(x.h.c.Signer.Keys()[0].Public)
	if err != nil {
		t.Fatal(err)
	}
	dns := x.h.srv.DNS
	dns.Set("example.org", mxDomain("mx.example.org", "v=spf1 ip4:192.0.2.0/24 -all"))
	dns.Set("mx.example.org", mxtest.Domain{A: []string{"192.0.2.10"}})
	dns.Set("_dmarc.example.org", txtDomain("v=DMARC1; p=quarantine; rua=mailto:dmarc@example.org"))

	x.open("")
	resp := x.submit("clicking Preflight in the menu", chromedp.Click(chromedp.CSS(`header nav a[href="/console/preflight"]`)))
	if resp.Status != http.StatusOK || !strings.HasSuffix(resp.URL, "/console/preflight") {
		t.Fatalf("the menu's Preflight: %d %s", resp.Status, resp.URL)
	}
	if got, want := x.title(), "Preflight · Test console"; got != want {
		t.Errorf("title %q, want %q", got, want)
	}
	if got := x.text(`header nav a[aria-current="page"]`); got != "Preflight" {
		t.Errorf("current page in the menu: %q", got)
	}
	if got := browserEval[string](x, `document.querySelector('input[name="domain"]').value`); got != "example.org" {
		t.Errorf("the form is prefilled with %q", got)
	}
	if n := browserEval[int](x, `document.querySelectorAll(".finding").length`); n != 0 {
		t.Errorf("%d findings before asking", n)
	}
	if got := browserEval[string](x, `document.querySelector('input[name="domain"]').labels[0].innerText.trim()`); got != "Domain" {
		t.Errorf("the field's label: %q", got)
	}
	x.noConsoleErrors("the preflight form")

	x.do("typing the domain", chromedp.Evaluate[chromedp.Void](`document.querySelector('input[name="domain"]').value = ""`),
		chromedp.SendKeys(chromedp.CSS(`input[name="domain"]`), "example.org"))
	resp = x.submit("clicking Check", chromedp.Click(chromedp.CSS(`form.filters button[type="submit"]`)))
	if resp.Status != http.StatusOK || !strings.HasSuffix(resp.URL, "/console/preflight?domain=example.org") {
		t.Fatalf("after Check: %d %s", resp.Status, resp.URL)
	}
	if got, want := x.title(), "Preflight of example.org · Test console"; got != want {
		t.Errorf("title %q, want %q", got, want)
	}
	if got := x.text("p.summary"); !strings.HasPrefix(got, "1 error, 1 warning · checked ") || !strings.HasSuffix(got, " UTC") {
		t.Errorf("summary %q", got)
	}
	if got := x.text("section.family h2"); got != "DKIM" {
		t.Errorf("the first family is %q, want DKIM (the one with the error)", got)
	}
	first := x.text(".finding")
	for _, s := range []string{"error", "dkim.missing", "mail._domainkey.example.org", "Fix: publish the key's record"} {
		if !strings.Contains(first, s) {
			t.Errorf("the first finding %q lacks %q", first, s)
		}
	}
	rec := browserEval[[]string](x, `[...document.querySelectorAll(".finding.sev-error .record dd")].map(d => d.innerText.trim())`)
	if !slices.Equal(rec, []string{"mail._domainkey.example.org", "TXT", keyTXT}) {
		t.Errorf("the record to publish: %q, want the name, TXT and %q", rec, keyTXT)
	}
	if got := browserEval[string](x, `getComputedStyle(document.querySelector(".finding.sev-error .record pre.copy code")).userSelect`); got != "all" {
		t.Errorf("the record's value selects as %q, want all (one click copies it whole)", got)
	}
	// The zone-file line, folded.
	x.do("opening the zone-file line", chromedp.Click(chromedp.CSS(".finding.sev-error .record details summary")))
	if got, want := x.text(".finding.sev-error .record details pre"), `mail._domainkey.example.org. IN TXT "`+keyTXT+`"`; got != want {
		t.Errorf("the zone-file line %q, want %q", got, want)
	}
	// The badges are styled: an error in the error colour.
	if got, want := browserEval[string](x, `getComputedStyle(document.querySelector(".finding.sev-error .state")).color`),
		browserEval[string](x, `getComputedStyle(document.querySelector("p.summary .bad")).color`); got != want {
		t.Errorf("the error badge's colour %q, the summary's %q", got, want)
	}
	// A passing check's text reads as any text (only its badge is green).
	if got, want := browserEval[string](x, `getComputedStyle(document.querySelector(".finding.sev-ok .found")).color`),
		browserEval[string](x, `getComputedStyle(document.body).color`); got != want {
		t.Errorf("a passing finding's text is %q, the page's %q", got, want)
	}
	x.noConsoleErrors("the preflight report")

	// An invalid domain: the page says so, with the form to try again.
	x.do("typing a bad domain", chromedp.Evaluate[chromedp.Void](`document.querySelector('input[name="domain"]').value = ""`),
		chromedp.SendKeys(chromedp.CSS(`input[name="domain"]`), "not a domain"))
	resp = x.submit("clicking Check", chromedp.Click(chromedp.CSS(`form.filters button[type="submit"]`)))
	if resp.Status != http.StatusBadRequest {
		t.Errorf("a bad domain: %d %s", resp.Status, resp.URL)
	}
	if got := x.text(`p.flash.bad[role="alert"]`); !strings.HasPrefix(got, "The domain cannot be checked: ") {
		t.Errorf("the error says %q", got)
	}
	if n := browserEval[int](x, `document.querySelectorAll(".finding").length`); n != 0 {
		t.Errorf("%d findings for a bad domain", n)
	}
}
