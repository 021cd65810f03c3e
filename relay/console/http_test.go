package console_test

import (
	"context"
	"encoding/csv"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/console"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// send makes a request as the harness's operator through client c (the
// harness's own when nil), after edit has had its way with it.
func (h *harness) send(c *http.Client, method, path string, form url.Values, edit func(*http.Request)) (*http.Response, string) {
	h.t.Helper()
	var req *http.Request
	if form != nil {
		req, _ = http.NewRequest(method, h.base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req, _ = http.NewRequest(method, h.base+path, nil)
	}
	req.SetBasicAuth(testUser, testPass)
	if edit != nil {
		edit(req)
	}
	if c == nil {
		c = h.http
	}
	return h.doWith(c, req)
}

// newClient is an HTTP client with a cookie jar of its own that does not
// follow redirects.
func newClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// job reads a queued job, nil when it is gone.
func (h *harness) job(id string) *queue.Job {
	h.t.Helper()
	j, err := h.store.Get(testCtx(h.t), id)
	if errors.Is(err, queue.ErrNotFound) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return j
}

// enqueueTo queues a plain message with options.
func (h *harness) enqueueTo(opts *relay.EnqueueOptions, to ...string) string {
	h.t.Helper()
	m := &mime.Message{From: mail.Address{Address: "shop@sender.example"}, Subject: "plain", Text: "hello"}
	for _, a := range to {
		m.To = append(m.To, mail.Address{Address: a})
	}
	id, err := h.c.EnqueueWith(testCtx(h.t), m, opts)
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// waitFor polls cond until it holds or 15 seconds pass.
func httpWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestNewRefuses(t *testing.T) {
	c := &relay.Client{}
	auth := console.BasicAuth("ops", "pw")
	if _, err := console.New(c, console.Options{Path: "/console/"}); !errors.Is(err, console.ErrNoAuthorize) {
		t.Errorf("New without Authorize: %v, want ErrNoAuthorize", err)
	}
	if _, err := console.New(nil, console.Options{Path: "/console/", Authorize: auth}); err == nil {
		t.Error("New with a nil client: no error")
	}
	for _, p := range []string{"console/", "/console", "/a b/", "/a{x}/", "/a\n/"} {
		if _, err := console.New(c, console.Options{Path: p, Authorize: auth}); err == nil {
			t.Errorf("New with Path %q: no error", p)
		}
	}
	for _, p := range []string{"", "/", "/console/", "/ops/mail/"} {
		if _, err := console.New(c, console.Options{Path: p, Authorize: auth}); err != nil {
			t.Errorf("New with Path %q: %v", p, err)
		}
	}
}

// route is one of the console's routes, as a method and a path under it.
type route struct{ method, path string }

func routes(id string) []route {
	return []route{
		{"GET", ""}, {"GET", "queue"}, {"GET", "message/" + id}, {"GET", "message/" + id + "/preview"},
		{"GET", "message/" + id + "/part/0"}, {"GET", "approvals"}, {"GET", "history"}, {"GET", "suppressions"},
		{"GET", "suppressions.csv"}, {"GET", "events"}, {"GET", "preflight"}, {"GET", "preflight?domain=example.com"},
		{"GET", "static/style.css"},
		{"POST", "queue"}, {"POST", "message/" + id}, {"POST", "approvals"}, {"POST", "suppressions"},
	}
}

// Distinctive data a refused request must not see.
const (
	secretSubject = "Quarterly payroll zebra"
	secretRcpt    = "cfo.zebra@example.com"
)

// enqueueSecret queues a held message with an attachment and a suppression
// of its recipient, so that every page has something to show.
func (h *harness) enqueueSecret() string {
	h.t.Helper()
	m := &mime.Message{From: mail.Address{Name: "Payroll", Address: "payroll@sender.example"}, To: []mail.Address{{Address: secretRcpt}},
		Subject: secretSubject, Text: "figures", HTML: "<p>figures</p>",
		Attachments: []mime.Attachment{{Filename: "zebra.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.4 zebra")}}}
	id, err := h.c.EnqueueWith(testCtx(h.t), m, &relay.EnqueueOptions{Hold: true, Campaign: "zebra-campaign"})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.c.Suppress(testCtx(h.t), secretRcpt, "", queue.Manual, "zebra source"); err != nil {
		h.t.Fatal(err)
	}
	return id
}

func checkNoLeak(t *testing.T, what, body, id string) {
	t.Helper()
	for _, s := range []string{secretSubject, secretRcpt, id, "zebra"} {
		if strings.Contains(body, s) {
			t.Errorf("%s: the body holds %q:\n%s", what, s, body)
		}
	}
}

func TestRefusedWithoutCredentials(t *testing.T) {
	h := newHarness(t)
	id := h.enqueueSecret()
	form := func() url.Values { return url.Values{"action": {"cancel"}, "id": {id}, "scope": {"filter"}} }
	for _, rt := range routes(id) {
		var f url.Values
		if rt.method == "POST" {
			f = form()
		}
		for _, cred := range []struct {
			name string
			set  func(*http.Request)
		}{
			{"no credentials", func(r *http.Request) { r.Header.Del("Authorization") }},
			{"wrong password", func(r *http.Request) { r.SetBasicAuth(testUser, "wrong") }},
			{"wrong user", func(r *http.Request) { r.SetBasicAuth("eve", testPass) }},
			{"empty user and password", func(r *http.Request) { r.SetBasicAuth("", "") }},
		} {
			what := rt.method + " " + rt.path + " with " + cred.name
			resp, body := h.send(nil, rt.method, rt.path, f, func(r *http.Request) {
				cred.set(r)
				r.Header.Set("Origin", h.web.URL)
				r.Header.Set("Sec-Fetch-Site", "same-origin")
			})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: %s, want 401", what, resp.Status)
			}
			if wa := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Basic realm=") {
				t.Errorf("%s: WWW-Authenticate %q", what, wa)
			}
			checkNoLeak(t, what, body, id)
			checkSecurityHeaders(t, what, resp, "DENY")
			if resp.Header.Get("Set-Cookie") != "" {
				t.Errorf("%s: sets a cookie: %s", what, resp.Header.Get("Set-Cookie"))
			}
		}
	}
	if j := h.job(id); j == nil || !j.Held {
		t.Errorf("the refused POSTs changed the message: %+v", j)
	}
	if got, _ := h.store.Suppressions(testCtx(t), queue.SuppressionFilter{Address: secretRcpt}); len(got) != 1 {
		t.Errorf("the refused POSTs changed the suppressions: %+v", got)
	}
}

func TestRefusedByAuthorize(t *testing.T) {
	for _, tc := range []struct {
		name string
		auth func(http.ResponseWriter, *http.Request) (string, bool)
	}{
		{"false", func(http.ResponseWriter, *http.Request) (string, bool) { return "ops", false }},
		{"a control character in the name", func(http.ResponseWriter, *http.Request) (string, bool) { return "a\nb", true }},
		{"an empty name", func(http.ResponseWriter, *http.Request) (string, bool) { return "", true }},
		{"invalid UTF-8", func(http.ResponseWriter, *http.Request) (string, bool) { return "a\xffb", true }},
		{"a name of 201 bytes", func(http.ResponseWriter, *http.Request) (string, bool) { return strings.Repeat("a", 201), true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(_ *relay.Client, o *console.Options) { o.Authorize = tc.auth })
			id := h.enqueueSecret()
			for _, rt := range routes(id) {
				var f url.Values
				if rt.method == "POST" {
					f = url.Values{"action": {"cancel"}, "id": {id}}
				}
				what := rt.method + " " + rt.path
				resp, body := h.send(nil, rt.method, rt.path, f, nil)
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("%s: %s, want 403", what, resp.Status)
				}
				checkNoLeak(t, what, body, id)
				checkSecurityHeaders(t, what, resp, "DENY")
			}
			if j := h.job(id); j == nil || !j.Held {
				t.Errorf("the refused POSTs changed the message: %+v", j)
			}
		})
	}
}

// An Authorize that answers itself (a redirect to a login page) is left to
// do so.
func TestAuthorizeWritesItsOwnAnswer(t *testing.T) {
	h := newHarness(t, func(_ *relay.Client, o *console.Options) {
		o.Authorize = func(w http.ResponseWriter, r *http.Request) (string, bool) {
			http.Redirect(w, r, "/login", http.StatusFound)
			return "", false
		}
	})
	id := h.enqueueSecret()
	resp, body := h.get("message/" + id)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/login" {
		t.Errorf("%s, Location %q; want 302 to /login", resp.Status, resp.Header.Get("Location"))
	}
	checkNoLeak(t, "the redirect", body, id)
	checkSecurityHeaders(t, "the redirect", resp, "DENY")
}

// checkSecurityHeaders checks what every response carries.
func checkSecurityHeaders(t *testing.T, what string, resp *http.Response, frame string) {
	t.Helper()
	hd := resp.Header
	if hd.Get("Content-Security-Policy") == "" {
		t.Errorf("%s: no Content-Security-Policy", what)
	}
	if got := hd.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q", what, got)
	}
	if got := hd.Get("Referrer-Policy"); got != "same-origin" {
		t.Errorf("%s: Referrer-Policy %q", what, got)
	}
	if got := hd.Get("X-Frame-Options"); got != frame {
		t.Errorf("%s: X-Frame-Options %q, want %q", what, got, frame)
	}
	// The pages' policy forbids framing; a download's sandbox policy
	// leaves that to X-Frame-Options.
	if csp := hd.Get("Content-Security-Policy"); frame == "DENY" && !strings.HasPrefix(csp, "sandbox") {
		if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "script-src") {
			t.Errorf("%s: Content-Security-Policy %q", what, csp)
		}
	}
}

// cspDirectives splits a policy into its directives.
func cspDirectives(csp string) map[string][]string {
	out := map[string][]string{}
	for d := range strings.SplitSeq(csp, ";") {
		f := strings.Fields(d)
		if len(f) > 0 {
			out[f[0]] = f[1:]
		}
	}
	return out
}

func TestSecurityHeaders(t *testing.T) {
	h := newHarness(t)
	id := h.enqueueSecret()
	pages := []string{"", "?range=week", "queue", "queue?state=held", "message/" + id, "approvals", "history",
		"suppressions", "events", "events?live=1", "preflight", "preflight?domain=example.com", "static/style.css"}
	for _, p := range pages {
		resp, body := h.get(p)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %s\n%s", p, resp.Status, body)
		}
		checkSecurityHeaders(t, "GET "+p, resp, "DENY")
		if ct := resp.Header.Get("Content-Type"); p != "static/style.css" && ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", p, ct)
		}
		if cc := resp.Header.Get("Cache-Control"); p != "static/style.css" && cc != "no-store" {
			t.Errorf("GET %s: Cache-Control %q", p, cc)
		}
	}
	if resp, _ := h.get("static/style.css"); resp.Header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("the style sheet's Content-Type is %q", resp.Header.Get("Content-Type"))
	}
	// 404s: an unknown message, an unknown page, a part out of range,
	// the preview of an unknown message.
	for _, p := range []string{"message/0123456789abcdef0123456789abcdef", "nothing-here", "message/" + id + "/part/9",
		"message/nope/preview", "message/nope/part/0"} {
		resp, _ := h.get(p)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", p, resp.Status)
		}
		frame := "DENY"
		if strings.HasSuffix(p, "/preview") {
			frame = "SAMEORIGIN"
		}
		checkSecurityHeaders(t, "GET "+p, resp, frame)
	}
	// 405 for a method a route has not.
	resp, _ := h.send(nil, "DELETE", "queue", nil, nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE queue: %s", resp.Status)
	}
	checkSecurityHeaders(t, "DELETE queue", resp, "DENY")
	// 303 after an action, 403 for an action without its token.
	resp, _ = h.post("queue", url.Values{"action": {"release"}, "id": {id}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("POST queue: %s, want 303", resp.Status)
	}
	checkSecurityHeaders(t, "POST queue", resp, "DENY")
	resp, _ = h.post("queue", url.Values{"action": {"hold"}, "id": {id}, "csrf": {"bad"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST queue with a bad token: %s, want 403", resp.Status)
	}
	checkSecurityHeaders(t, "POST queue with a bad token", resp, "DENY")

	// The preview: a sandboxed document of its own.
	for _, images := range []bool{false, true} {
		p := "message/" + id + "/preview"
		if images {
			p += "?images=1"
		}
		resp, body := h.get(p)
		if resp.StatusCode != 200 || !strings.Contains(body, "figures") {
			t.Errorf("GET %s: %s\n%s", p, resp.Status, body)
		}
		checkSecurityHeaders(t, "GET "+p, resp, "SAMEORIGIN")
		csp := resp.Header.Get("Content-Security-Policy")
		d := cspDirectives(csp)
		img := d["img-src"]
		switch {
		case d["sandbox"] == nil || len(d["sandbox"]) != 0:
			t.Errorf("GET %s: CSP %q: want a bare sandbox (no allow-scripts, no allow-same-origin)", p, csp)
		case !slices.Equal(d["default-src"], []string{"'none'"}):
			t.Errorf("GET %s: CSP %q: want default-src 'none'", p, csp)
		case !slices.Contains(img, "data:") || !slices.Contains(img, "cid:"):
			t.Errorf("GET %s: CSP %q: want img-src data: cid:", p, csp)
		case images != slices.Contains(img, "https:") || images != slices.Contains(img, "http:"):
			t.Errorf("GET %s: CSP %q: remote images should be allowed only with images=1", p, csp)
		case !slices.Equal(d["frame-ancestors"], []string{"'self'"}):
			t.Errorf("GET %s: CSP %q: want frame-ancestors 'self'", p, csp)
		case d["script-src"] != nil:
			t.Errorf("GET %s: CSP %q allows scripts", p, csp)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", p, ct)
		}
	}

	// An attachment: downloaded, never rendered.
	resp, body := h.get("message/" + id + "/part/0")
	if resp.StatusCode != 200 || body != "%PDF-1.4 zebra" {
		t.Errorf("GET part/0: %s %q", resp.Status, body)
	}
	checkSecurityHeaders(t, "GET part/0", resp, "DENY")
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("part/0: Content-Type %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || !strings.Contains(cd, "zebra.pdf") {
		t.Errorf("part/0: Content-Disposition %q", cd)
	}
	if d := cspDirectives(resp.Header.Get("Content-Security-Policy")); d["sandbox"] == nil || !slices.Equal(d["default-src"], []string{"'none'"}) {
		t.Errorf("part/0: CSP %q", resp.Header.Get("Content-Security-Policy"))
	}

	// The CSV export.
	resp, body = h.get("suppressions.csv")
	if resp.StatusCode != 200 || !strings.Contains(body, secretRcpt) {
		t.Errorf("GET suppressions.csv: %s\n%s", resp.Status, body)
	}
	checkSecurityHeaders(t, "GET suppressions.csv", resp, "DENY")
	if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("suppressions.csv: Content-Type %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") {
		t.Errorf("suppressions.csv: Content-Disposition %q", cd)
	}

	// The CSRF cookie: HttpOnly, SameSite=Strict, scoped to the console.
	resp, _ = newHarnessClientGet(h, "queue")
	var found bool
	for _, c := range resp.Cookies() {
		if c.Name == "mxrelay_console" {
			found = true
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/console/" {
				t.Errorf("the CSRF cookie: %+v", c)
			}
		}
	}
	if !found {
		t.Errorf("a first GET sets no CSRF cookie: %v", resp.Header["Set-Cookie"])
	}
}

// newHarnessClientGet is a GET from a client with no cookie yet.
func newHarnessClientGet(h *harness, path string) (*http.Response, string) {
	h.t.Helper()
	return h.send(newClient(), "GET", path, nil, nil)
}

// The payloads of TestEscaping, each in a field a message, a server or
// the suppression list gives the console.
const (
	xssSubject = `<script>alert(1)</script> & "q"`
	xssName    = `<b>Shop</b>`
	xssReply   = `<img src=x onerror=alert(2)>`
	xssFile    = `"><svg onload=alert(3)>.pdf`
	xssCamp    = `<i>camp</i>'"`
	xssSource  = `<script>alert(5)</script>`
	xssAddr    = `<svg/onload=alert(6)>@example.com`
	xssHTML    = `<p>hi</p><script>alert(9)</script>`
	xssText    = `<script>alert(10)</script>`
	xssID      = `<script>alert(7)</script>`
	xssFlash   = `<script>alert(8)</script>`
)

// raw are the markers of the payloads unescaped; no page may hold one.
var raw = []string{"<script>alert(1)", "<b>Shop", "<img src=x onerror", "<svg onload=alert(3)", "<i>camp",
	"<script>alert(5)", "<svg/onload=alert(6)", "<script>alert(9)", "<script>alert(10)", "<script>alert(7)",
	"<script>alert(8)", `"><svg`, `camp</i>'"`}

func TestEscaping(t *testing.T) {
	h := newHarness(t)
	host, err := h.srv.AddHost("mx.defer.example", relaytest.HostConfig{
		RcptReply: func(string) *relaytest.Reply {
			return &relaytest.Reply{Code: 451, Enhanced: "4.3.0", Text: xssReply}
		}})
	if err != nil {
		t.Fatal(err)
	}
	_ = host
	h.srv.AddDomain("defer.example", "mx.defer.example")
	msg := func(to string) *mime.Message {
		return &mime.Message{From: mail.Address{Name: xssName, Address: "shop@sender.example"}, To: []mail.Address{{Address: to}},
			Subject: xssSubject, Text: xssText, HTML: xssHTML,
			Attachments: []mime.Attachment{{Filename: xssFile, ContentType: "application/pdf", Data: []byte("%PDF-1.4")}}}
	}
	ctx := testCtx(t)
	// The campaign can hold such characters (relay refuses only CR, LF
	// and NUL).
	deferred, err := h.c.EnqueueWith(ctx, msg("x@defer.example"), &relay.EnqueueOptions{Campaign: xssCamp})
	if err != nil {
		t.Fatal(err)
	}
	delivered, err := h.c.EnqueueWith(ctx, msg("z@example.com"), &relay.EnqueueOptions{Campaign: xssCamp})
	if err != nil {
		t.Fatal(err)
	}
	held, err := h.c.EnqueueWith(ctx, msg("y@example.com"), &relay.EnqueueOptions{Campaign: xssCamp, Hold: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.Suppress(ctx, queue.Suppression{Address: xssAddr, Reason: queue.Manual, Source: xssSource, Created: time.Now()},
		queue.Suppression{Address: "plain@example.com", Scope: xssCamp, Reason: queue.Complained, Source: xssSource, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	h.run()
	httpWait(t, "the deferral and the delivery", func() bool {
		j := h.job(deferred)
		return j != nil && j.Attempts > 0 && j.Lease.Token == "" && h.job(delivered) == nil
	})
	if j := h.job(deferred); !strings.Contains(j.LastError, xssReply) || !strings.Contains(j.Recipients[0].Reply, xssReply) {
		t.Fatalf("the deferral does not carry the reply: LastError %q, reply %q", j.LastError, j.Recipients[0].Reply)
	}
	httpWait(t, "the events", func() bool {
		for _, e := range h.c.RecentEvents() {
			if e.Type == relay.EventDeferred && strings.Contains(e.Message, xssReply) {
				return true
			}
		}
		return false
	})

	esc := map[string]string{
		"subject": `&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;q&#34;`,
		"name":    `&lt;b&gt;Shop&lt;/b&gt;`,
		"reply":   `&lt;img src=x onerror=alert(2)&gt;`,
		"file":    `&#34;&gt;&lt;svg onload=alert(3)&gt;.pdf`,
		"camp":    `&lt;i&gt;camp&lt;/i&gt;&#39;&#34;`,
		"source":  `&lt;script&gt;alert(5)&lt;/script&gt;`,
		"addr":    `&lt;svg/onload=alert(6)&gt;@example.com`,
		"text":    `&lt;script&gt;alert(10)&lt;/script&gt;`,
		"id":      `&lt;script&gt;alert(7)&lt;/script&gt;`,
		"flash":   `&lt;script&gt;alert(8)&lt;/script&gt;`,
	}
	for _, tc := range []struct {
		path string
		want []string // keys of esc
	}{
		{"queue", []string{"subject", "reply", "camp"}},
		{"queue?state=deferred&campaign=" + url.QueryEscape(xssCamp), []string{"subject", "reply", "camp"}},
		{"message/" + deferred, []string{"subject", "name", "reply", "file", "camp", "text"}},
		{"message/" + held, []string{"subject", "name", "file", "camp", "text"}},
		{"message/" + delivered, []string{"subject"}},
		{"approvals", []string{"subject", "camp"}},
		{"history", []string{"subject", "camp"}},
		{"history?campaign=" + url.QueryEscape(xssCamp), []string{"subject", "camp"}},
		{"events", []string{"reply"}},
		{"events?type=deferred", []string{"reply"}},
		{"suppressions", []string{"source", "addr", "camp"}},
		{"suppressions?q=" + url.QueryEscape(xssAddr), []string{"source", "addr"}},
		{"", nil},
		{"message/" + url.PathEscape(xssID), []string{"id"}},
		{"queue?done=" + url.QueryEscape(xssFlash), []string{"flash"}},
		{"queue?failed=" + url.QueryEscape(xssFlash), []string{"flash"}},
		{"queue?domain=" + url.QueryEscape(xssFlash), []string{"flash"}},
		{"events?recipient=" + url.QueryEscape(xssFlash), []string{"flash"}},
		{"history?recipient=" + url.QueryEscape(xssFlash), []string{"flash"}},
		{"suppressions?scope=" + url.QueryEscape(xssFlash), []string{"flash"}},
	} {
		resp, body := h.get(tc.path)
		if resp.StatusCode != 200 && resp.StatusCode != 404 {
			t.Errorf("GET %s: %s", tc.path, resp.Status)
		}
		for _, r := range raw {
			if strings.Contains(body, r) {
				t.Errorf("GET %s: the page holds %q unescaped", tc.path, r)
			}
		}
		for _, k := range tc.want {
			if !strings.Contains(body, esc[k]) {
				t.Errorf("GET %s: the page does not show the %s escaped (%s)", tc.path, k, esc[k])
			}
		}
		if t.Failed() {
			t.Logf("GET %s:\n%s", tc.path, body)
			return
		}
	}
	// The message page does not inline the HTML part: it is in the
	// sandboxed frame, which gets it as it is.
	resp, body := h.get("message/" + deferred + "/preview")
	if !strings.Contains(body, "<script>alert(9)</script>") || !strings.HasPrefix(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("the preview: CSP %q\n%s", resp.Header.Get("Content-Security-Policy"), body)
	}
	// The attachment's name is quoted in Content-Disposition.
	resp, _ = h.get("message/" + deferred + "/part/0")
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") {
		t.Errorf("Content-Disposition %q", cd)
	}
}

func TestCSRF(t *testing.T) {
	// Two operators, so that a token of one is shown not to serve the other.
	h := newHarness(t, func(_ *relay.Client, o *console.Options) {
		ops, eve := console.BasicAuth(testUser, testPass), console.BasicAuth("eve", testPass)
		o.Authorize = func(w http.ResponseWriter, r *http.Request) (string, bool) {
			if u, _, _ := r.BasicAuth(); u == "eve" {
				return eve(w, r)
			}
			return ops(w, r)
		}
	})
	id := h.enqueueTo(nil, "ann@example.com")
	good := h.token()
	form := func(csrf string) url.Values {
		f := url.Values{"action": {"hold"}, "id": {id}}
		if csrf != "" {
			f.Set("csrf", csrf)
		}
		return f
	}
	same := func(r *http.Request) {
		r.Header.Set("Origin", h.web.URL)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	// A second browser: its own cookie and token.
	other := newClient()
	_, page := h.send(other, "GET", "queue", nil, nil)
	m := tokenRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no token for the second client")
	}
	otherToken := m[1]
	if otherToken == good {
		t.Fatal("two cookies give one token")
	}
	// eve's token for the harness's cookie.
	_, page = h.send(nil, "GET", "queue", nil, func(r *http.Request) { r.SetBasicAuth("eve", testPass) })
	m = tokenRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no token for eve")
	}
	eveToken := m[1]
	if eveToken == good {
		t.Fatal("two operators with one cookie get one token")
	}
	noCookie := newClient()

	for _, tc := range []struct {
		name   string
		client *http.Client
		form   url.Values
		edit   func(*http.Request)
	}{
		{"no csrf field", nil, form(""), same},
		{"an empty csrf field", nil, url.Values{"action": {"hold"}, "id": {id}, "csrf": {""}}, same},
		{"a forged token", nil, form("AAAA" + good[4:]), same},
		{"the token of another cookie", nil, form(otherToken), same},
		{"the token in the query, not the form", nil, form(""), func(r *http.Request) { same(r); r.URL.RawQuery = "csrf=" + url.QueryEscape(good) }},
		{"the token of another operator", nil, form(eveToken), same},
		{"no cookie", noCookie, form(good), same},
		{"Origin of another site", nil, form(good), func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }},
		{"Origin null", nil, form(good), func(r *http.Request) { r.Header.Set("Origin", "null") }},
		{"Sec-Fetch-Site cross-site", nil, form(good), func(r *http.Request) {
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			r.Header.Set("Origin", h.web.URL)
		}},
		{"Sec-Fetch-Site same-site", nil, form(good), func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-site") }},
	} {
		resp, body := h.send(tc.client, "POST", "queue", tc.form, tc.edit)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST with %s: %s, want 403\n%s", tc.name, resp.Status, body)
		}
		if j := h.job(id); j == nil || j.Held {
			t.Fatalf("POST with %s changed the message: %+v", tc.name, j)
		}
	}
	// The other operator's token is good for that operator.
	resp, _ := h.send(nil, "POST", "queue", url.Values{"action": {"retry"}, "id": {id}, "csrf": {eveToken}},
		func(r *http.Request) { same(r); r.SetBasicAuth("eve", testPass) })
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("eve's POST with her token: %s", resp.Status)
	}
	// The right token from the same origin: done.
	resp, _ = h.send(nil, "POST", "queue", form(good), same)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST with the token: %s, want 303", resp.Status)
	}
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/console/queue") || !strings.Contains(loc, "done=") {
		t.Errorf("Location %q", loc)
	}
	if j := h.job(id); j == nil || !j.Held {
		t.Errorf("the POST with the token did not hold the message: %+v", j)
	}
	// Without Origin and Sec-Fetch-Site (not a browser), the token alone
	// decides.
	resp, _ = h.send(nil, "POST", "queue", url.Values{"action": {"release"}, "id": {id}, "csrf": {good}}, nil)
	if resp.StatusCode != http.StatusSeeOther || h.job(id).Held {
		t.Errorf("POST without Origin and with the token: %s", resp.Status)
	}
}

var (
	csrfInputRE = regexp.MustCompile(`name="csrf"`)
	postFormRE  = regexp.MustCompile(`(?i)<form[^>]*method="post"`)
)

func TestReadOnly(t *testing.T) {
	h := newHarness(t, func(_ *relay.Client, o *console.Options) { o.ReadOnly = true })
	held := h.enqueueSecret()
	queued := h.enqueueTo(&relay.EnqueueOptions{Campaign: "c"}, "ann@example.com")
	for _, p := range []string{"", "queue", "queue?state=held", "message/" + held, "message/" + queued, "approvals",
		"history", "suppressions", "events", "preflight", "preflight?domain=example.com"} {
		resp, body := h.get(p)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %s", p, resp.Status)
		}
		if csrfInputRE.MatchString(body) {
			t.Errorf("GET %s: a read-only page has a form token", p)
		}
		for _, s := range []string{`name="action"`, `type="checkbox"`, "Approve", "Reject", "Suppress</button>"} {
			if strings.Contains(body, s) {
				t.Errorf("GET %s: a read-only page holds %q", p, s)
			}
		}
		if n := len(postFormRE.FindAllString(body, -1)); n > 0 {
			// The queue's and the approvals' lists sit in a form of
			// their own; read-only, it has no control that posts.
			t.Logf("GET %s: %d POST forms (without controls)", p, n)
		}
	}
	_, page := h.get("queue")
	if !strings.Contains(page, "read-only") || !strings.Contains(page, queued) {
		t.Errorf("the read-only queue page does not show the queue or say it is read-only:\n%s", page)
	}
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"queue", url.Values{"action": {"cancel"}, "id": {held, queued}}},
		{"queue", url.Values{"action": {"cancel"}, "scope": {"filter"}}},
		{"message/" + held, url.Values{"action": {"approve"}}},
		{"message/" + queued, url.Values{"action": {"cancel"}}},
		{"approvals", url.Values{"action": {"approve"}, "campaign": {"zebra-campaign"}}},
		{"suppressions", url.Values{"action": {"remove"}, "address": {secretRcpt}}},
		{"suppressions", url.Values{"action": {"add"}, "address": {"new@example.com"}}},
	} {
		tc.form.Set("csrf", "whatever")
		resp, _ := h.send(nil, "POST", tc.path, tc.form, func(r *http.Request) {
			r.Header.Set("Origin", h.web.URL)
			r.Header.Set("Sec-Fetch-Site", "same-origin")
		})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("read-only POST %s %v: %s, want 403", tc.path, tc.form, resp.Status)
		}
	}
	if j := h.job(held); j == nil || !j.Held {
		t.Errorf("the held message changed: %+v", j)
	}
	if h.job(queued) == nil {
		t.Error("the queued message was cancelled")
	}
	if got, _ := h.store.Suppressions(testCtx(t), queue.SuppressionFilter{}); len(got) != 1 {
		t.Errorf("the suppressions changed: %+v", got)
	}
}

func TestBackStaysInTheConsole(t *testing.T) {
	h := newHarness(t)
	id := h.enqueueTo(nil, "ann@example.com")
	for _, back := range []string{"//evil.example/", "https://evil.example/", "http://evil.example/console/",
		"/\\evil.example/", "\\\\evil.example/", "/console/\\..\\..\\//evil.example", "javascript:alert(1)",
		"/console/\r\nLocation: https://evil.example/", "/other/", ""} {
		resp, _ := h.post("queue", url.Values{"action": {"hold"}, "id": {id}, "back": {back}})
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/") || offSite(loc) {
			t.Errorf("back=%q: %s, Location %q", back, resp.Status, loc)
		}
	}
	resp, _ := h.post("queue", url.Values{"action": {"release"}, "id": {id}, "back": {"/console/queue?state=held"}})
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/console/queue?state=held&done=") {
		t.Errorf("a back page of the console: Location %q", loc)
	}
	resp, _ = h.post("message/"+id, url.Values{"action": {"hold"}, "back": {"https://evil.example/"}})
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/console/message/"+id) {
		t.Errorf("message action: Location %q", loc)
	}
}

// offSite reports whether a browser would take a Location to another
// host: it drops tabs and line breaks from a URL and reads a backslash as
// a slash.
func offSite(loc string) bool {
	l := strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r':
			return -1
		case '\\':
			return '/'
		}
		return r
	}, strings.TrimLeft(loc, "\x00 "))
	u, err := url.Parse(l)
	return err != nil || u.Host != "" || u.Scheme != "" || strings.HasPrefix(l, "//")
}

// A console mounted at the root has no path prefix to keep a redirect
// home: back must not be able to become a protocol-relative URL.
func TestBackStaysInTheConsoleAtTheRoot(t *testing.T) {
	h := newHarness(t)
	root, err := console.New(h.c, console.Options{Path: "/", Authorize: console.BasicAuth(testUser, testPass)})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(root)
	t.Cleanup(web.Close)
	hr := *h
	hr.web, hr.base, hr.http = web, web.URL+"/", newClient()
	id := hr.enqueueTo(nil, "ann@example.com")
	for _, back := range []string{"//evil.example/", "/\t/evil.example/", "/\n/evil.example/", "/\\evil.example/",
		"/%09/evil.example/", " //evil.example/", "/\x00/evil.example/", "https://evil.example/"} {
		resp, _ := hr.post("queue", url.Values{"action": {"hold"}, "id": {id}, "back": {back}})
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/") || offSite(loc) {
			t.Errorf("back=%q: %s, Location %q", back, resp.Status, loc)
		}
	}
}

func TestQueueActions(t *testing.T) {
	h := newHarness(t)
	ctx := testCtx(t)
	later := &relay.EnqueueOptions{NotBefore: time.Now().Add(time.Hour)}
	a, b, c := h.enqueueTo(later, "a@one.example"), h.enqueueTo(later, "b@one.example"), h.enqueueTo(later, "c@two.example")

	// On a selection.
	resp, _ := h.post("queue", url.Values{"action": {"hold"}, "id": {a, b}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("hold: %s", resp.Status)
	}
	if !h.job(a).Held || !h.job(b).Held || h.job(c).Held {
		t.Errorf("hold a, b: held %v %v %v", h.job(a).Held, h.job(b).Held, h.job(c).Held)
	}
	loc := resp.Header.Get("Location")
	_, page := h.get(strings.TrimPrefix(loc, "/console/"))
	if !strings.Contains(page, "2 messages held") {
		t.Errorf("after hold, %s does not say what was done", loc)
	}
	h.post("queue", url.Values{"action": {"release"}, "id": {a}})
	if h.job(a).Held || !h.job(b).Held {
		t.Errorf("release a: held %v %v", h.job(a).Held, h.job(b).Held)
	}
	h.post("queue", url.Values{"action": {"retry"}, "id": {c}})
	if !h.job(c).NextAttempt.IsZero() || h.job(a).NextAttempt.IsZero() {
		t.Errorf("retry c: next attempts %v %v", h.job(c).NextAttempt, h.job(a).NextAttempt)
	}
	resp, _ = h.post("queue", url.Values{"action": {"cancel"}, "id": {b, "0123456789abcdef0123456789abcdef"}})
	if h.job(b) != nil || h.job(a) == nil || h.job(c) == nil {
		t.Errorf("cancel b: %v %v %v", h.job(a), h.job(b), h.job(c))
	}
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "done=") || !strings.Contains(loc, "failed=") {
		t.Errorf("cancel of one message and one unknown: Location %q", loc)
	}
	resp, _ = h.post("queue", url.Values{"action": {"explode"}, "id": {a}})
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "failed=") || h.job(a) == nil {
		t.Errorf("an unknown action: Location %q", loc)
	}
	resp, _ = h.post("queue", url.Values{"action": {"hold"}})
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "failed=") {
		t.Errorf("no selection: Location %q", loc)
	}

	// On a filter.
	d1, d2 := h.enqueueTo(later, "d1@three.example"), h.enqueueTo(later, "d2@three.example")
	s1 := h.enqueueTo(&relay.EnqueueOptions{Campaign: "spring"}, "s1@four.example")
	s2 := h.enqueueTo(&relay.EnqueueOptions{Campaign: "spring"}, "s2@five.example")
	f1 := h.enqueueTo(&relay.EnqueueOptions{Campaign: "fall"}, "f1@four.example")
	resp, _ = h.post("queue", url.Values{"action": {"hold"}, "scope": {"filter"}, "domain": {"Three.Example"}, "id": {a}})
	if !h.job(d1).Held || !h.job(d2).Held || h.job(a).Held || h.job(s1).Held {
		t.Errorf("hold by domain: %v %v %v %v", h.job(d1).Held, h.job(d2).Held, h.job(a).Held, h.job(s1).Held)
	}
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/console/queue?domain=three.example") {
		t.Errorf("after a filter action, Location %q does not keep the filter", loc)
	}
	h.post("queue", url.Values{"action": {"cancel"}, "scope": {"filter"}, "campaign": {"spring"}})
	if h.job(s1) != nil || h.job(s2) != nil || h.job(f1) == nil || h.job(d1) == nil {
		t.Errorf("cancel by campaign: %v %v %v", h.job(s1), h.job(s2), h.job(f1))
	}
	h.post("queue", url.Values{"action": {"release"}, "scope": {"filter"}, "state": {"held"}, "domain": {"three.example"}})
	if h.job(d1).Held || h.job(d2).Held {
		t.Error("release by state and domain left messages held")
	}
	h.post("queue", url.Values{"action": {"retry"}, "scope": {"filter"}, "domain": {"four.example"}, "campaign": {"fall"}})
	if !h.job(f1).NextAttempt.IsZero() || h.job(d1).NextAttempt.IsZero() {
		t.Error("retry by domain and campaign")
	}
	st, _ := h.store.Stats(ctx)
	if st.Queued != 5 || st.Held != 0 {
		t.Errorf("at the end: %+v, want 5 queued", st)
	}
}

func TestMessageAndApprovalActions(t *testing.T) {
	h := newHarness(t)
	ctx := testCtx(t)
	m1 := h.enqueueTo(&relay.EnqueueOptions{Hold: true}, "ann@example.com")
	m2 := h.enqueueTo(&relay.EnqueueOptions{Hold: true}, "bob@example.com")

	_, page := h.get("message/" + m1)
	if !strings.Contains(page, `value="approve"`) || !strings.Contains(page, `value="reject"`) {
		t.Errorf("a held message's page offers no approval:\n%s", page)
	}
	resp, _ := h.post("message/"+m1, url.Values{"action": {"approve"}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/console/message/"+m1+"?done=") {
		t.Errorf("approve: %s, Location %q", resp.Status, loc)
	}
	if j := h.job(m1); j == nil || j.Held {
		t.Errorf("approved message: %+v", j)
	}
	checkNote := func(id, status, note, reply string) {
		t.Helper()
		rec, err := h.store.Record(ctx, id)
		if err != nil {
			t.Fatalf("the history of %s: %v", id, err)
		}
		if len(rec.Recipients) != 1 {
			t.Fatalf("record %+v", rec)
		}
		r := rec.Recipients[0]
		if r.Status != status || r.Reply != reply || len(r.Notes) != 1 || r.Notes[0].Type != note || r.Notes[0].Detail != testUser {
			t.Errorf("record of %s: %+v, want %s with a note %s by %s", id, r, status, note, testUser)
		}
	}
	checkNote(m1, "queued", "approved", "")
	resp, _ = h.post("message/"+m2, url.Values{"action": {"reject"}, "reason": {"off-brand"}})
	if resp.StatusCode != http.StatusSeeOther || h.job(m2) != nil {
		t.Errorf("reject: %s, job %+v", resp.Status, h.job(m2))
	}
	checkNote(m2, "rejected", "rejected", "off-brand")
	// The message page of the rejected message shows its history.
	resp, page = h.get("message/" + m2)
	if resp.StatusCode != 200 || !strings.Contains(page, "rejected") || !strings.Contains(page, "off-brand") {
		t.Errorf("the page of a rejected message: %s\n%s", resp.Status, page)
	}
	// Approving a message that is not held fails, and says so.
	resp, _ = h.post("message/"+m1, url.Values{"action": {"approve"}})
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "failed=") {
		t.Errorf("approving a message not held: Location %q", loc)
	}

	// Approvals: a campaign at once.
	var spring []string
	for range 3 {
		spring = append(spring, h.enqueueTo(&relay.EnqueueOptions{Hold: true, Campaign: "spring"}, "s@example.com"))
	}
	fall := h.enqueueTo(&relay.EnqueueOptions{Hold: true, Campaign: "fall"}, "f@example.com")
	_, page = h.get("approvals")
	if !strings.Contains(page, "Approve all 3") || !strings.Contains(page, "Approve all 1") {
		t.Errorf("the approvals page does not group the campaigns:\n%s", page)
	}
	resp, _ = h.post("approvals", url.Values{"action": {"approve"}, "campaign": {"spring"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/approvals?done=") {
		t.Errorf("approve all: %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	for _, id := range spring {
		if j := h.job(id); j == nil || j.Held {
			t.Errorf("spring message %s after approve-all: %+v", id, j)
		}
		checkNote(id, "queued", "approved", "")
	}
	if j := h.job(fall); j == nil || !j.Held {
		t.Errorf("the fall message after approving spring: %+v", j)
	}
	// Selected ids, rejected with a reason.
	h.post("approvals", url.Values{"action": {"reject"}, "id": {fall}, "reason": {"too late"}})
	if h.job(fall) != nil {
		t.Error("the fall message was not rejected")
	}
	checkNote(fall, "rejected", "rejected", "too late")
	_, page = h.get("approvals")
	if !strings.Contains(page, "Nothing is waiting") || !strings.Contains(page, "Recent decisions") {
		t.Errorf("the approvals page after the decisions:\n%s", page)
	}
	resp, _ = h.post("approvals", url.Values{"action": {"launch"}, "campaign": {"spring"}})
	if !strings.Contains(resp.Header.Get("Location"), "failed=") {
		t.Errorf("an unknown approvals action: Location %q", resp.Header.Get("Location"))
	}
}

func TestSuppressionActionsAndCSV(t *testing.T) {
	h := newHarness(t)
	ctx := testCtx(t)
	list := func(addr string) []queue.Suppression {
		got, err := h.store.Suppressions(ctx, queue.SuppressionFilter{Address: addr})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	resp, _ := h.post("suppressions", url.Values{"action": {"add"}, "address": {" Ann@Example.com "}, "list": {""}, "reason": {"manual"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "done=") {
		t.Errorf("add: %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	got := list("ann@example.com")
	if len(got) != 1 || got[0].Reason != queue.Manual || got[0].Source != "console: "+testUser || got[0].Scope != "" {
		t.Errorf("after add: %+v", got)
	}
	h.post("suppressions", url.Values{"action": {"add"}, "address": {"ann@example.com"}, "list": {"news"}, "reason": {"unsubscribed"}})
	h.post("suppressions", url.Values{"action": {"add"}, "address": {"bob@example.com"}, "reason": {"nonsense"}})
	if got := list("ann@example.com"); len(got) != 2 {
		t.Errorf("after adding ann to news: %+v", got)
	}
	if got := list("bob@example.com"); len(got) != 1 || got[0].Reason != queue.Manual {
		t.Errorf("an unknown reason should be manual: %+v", got)
	}
	resp, _ = h.post("suppressions", url.Values{"action": {"add"}, "address": {"not an address"}})
	if !strings.Contains(resp.Header.Get("Location"), "failed=") {
		t.Errorf("adding a bad address: Location %q", resp.Header.Get("Location"))
	}
	_, page := h.get("suppressions?q=ann")
	if !strings.Contains(page, "ann@example.com") || strings.Contains(page, "bob@example.com") || !strings.Contains(page, "news") {
		t.Errorf("the search for ann:\n%s", page)
	}
	// Remove as typed, and as listed (stored=1 with the entry's scope).
	h.post("suppressions", url.Values{"action": {"remove"}, "address": {"ANN@example.com"}, "list": {""}})
	if got := list("ann@example.com"); len(got) != 1 || got[0].Scope != "news" {
		t.Errorf("after removing ann from all mail: %+v", got)
	}
	h.post("suppressions", url.Values{"action": {"remove"}, "stored": {"1"}, "address": {"ann@example.com"}, "scope": {"news"}})
	if got := list("ann@example.com"); len(got) != 0 {
		t.Errorf("after removing ann from news: %+v", got)
	}
	resp, _ = h.post("suppressions", url.Values{"action": {"remove"}, "address": {"ann@example.com"}})
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "failed=") || !strings.Contains(loc, "was+not+suppressed") {
		t.Errorf("removing what is not there: Location %q", loc)
	}

	// The export: every entry, formula-like fields defused.
	if err := h.store.Suppress(ctx,
		queue.Suppression{Address: "=cmd|' /C calc'!A0@example.com", Scope: "+list", Reason: queue.Complained, Source: "=HYPERLINK(\"https://evil.example\")", Created: time.Now()},
		queue.Suppression{Address: "carl@example.com", Scope: "@news", Reason: queue.HardBounced, Source: "-2+3", Created: time.Now()},
		queue.Suppression{Address: "dora@example.com", Reason: queue.Unsubscribed, Source: "\tstart", Created: time.Now(), Expires: time.Now().Add(time.Hour)},
	); err != nil {
		t.Fatal(err)
	}
	resp, body := h.get("suppressions.csv")
	if resp.StatusCode != 200 {
		t.Fatalf("suppressions.csv: %s", resp.Status)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("the export is not CSV: %v\n%s", err, body)
	}
	if len(rows) != 5 || !slices.Equal(rows[0], []string{"address", "list", "reason", "source", "created", "expires"}) {
		t.Fatalf("the export has %d rows:\n%s", len(rows), body)
	}
	byAddr := map[string][]string{}
	for _, r := range rows[1:] {
		byAddr[r[0]] = r
		for i, f := range r {
			if f != "" && strings.ContainsRune("=+-@\t\r", rune(f[0])) {
				t.Errorf("row %v: field %d %q could be read as a formula", r, i, f)
			}
		}
	}
	if r := byAddr["'=cmd|' /C calc'!A0@example.com"]; r == nil || r[1] != "'+list" || r[2] != "complained" || r[3] != `'=HYPERLINK("https://evil.example")` {
		t.Errorf("the formula row: %q", r)
	}
	if r := byAddr["carl@example.com"]; r == nil || r[1] != "'@news" || r[3] != "'-2+3" || r[5] != "" {
		t.Errorf("carl's row: %q", r)
	}
	if r := byAddr["dora@example.com"]; r == nil || r[3] != "'\tstart" || r[5] == "" {
		t.Errorf("dora's row: %q", r)
	}
	// Filtered exports.
	_, body = h.get("suppressions.csv?reason=hard-bounced")
	if rows, _ := csv.NewReader(strings.NewReader(body)).ReadAll(); len(rows) != 2 || rows[1][0] != "carl@example.com" {
		t.Errorf("the hard-bounced export:\n%s", body)
	}
	_, body = h.get("suppressions.csv?q=dora")
	if rows, _ := csv.NewReader(strings.NewReader(body)).ReadAll(); len(rows) != 2 || rows[1][0] != "dora@example.com" {
		t.Errorf("the export of dora:\n%s", body)
	}
}

var (
	rowIDRE = regexp.MustCompile(`name="id" value="([0-9a-f]{32})"`)
	afterRE = regexp.MustCompile(`after=([0-9a-f]{32})`)
)

// queueIDs lists the ids of a queue page's rows and its next cursor.
func (h *harness) queueIDs(query string) (ids []string, next string) {
	h.t.Helper()
	resp, page := h.get("queue?" + query)
	if resp.StatusCode != 200 {
		h.t.Fatalf("GET queue?%s: %s", query, resp.Status)
	}
	for _, m := range rowIDRE.FindAllStringSubmatch(page, -1) {
		ids = append(ids, m[1])
	}
	if m := afterRE.FindStringSubmatch(page); m != nil {
		next = m[1]
	}
	return ids, next
}

func TestQueueFilters(t *testing.T) {
	h := newHarness(t)
	ctx := testCtx(t)
	// The queue's clock, set before its first use, dates the jobs.
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	q := h.c.Queue()
	q.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	at := func(ago time.Duration) { clock.Store(time.Now().Add(-ago).UnixNano()) }

	at(4 * 24 * time.Hour)
	old4d := h.enqueueTo(&relay.EnqueueOptions{Campaign: "spring"}, "a@one.example")
	at(2 * 24 * time.Hour)
	old2d := h.enqueueTo(nil, "b@two.example")
	at(2 * time.Hour)
	old2h := h.enqueueTo(&relay.EnqueueOptions{Campaign: "spring", Hold: true}, "c@one.example")
	// A message tried elsewhere: deferred.
	at(30 * time.Minute)
	j := queue.NewJob("shop@sender.example", []string{"d@two.example"}, []byte("Subject: deferred\r\n\r\nhi\r\n"))
	j.Attempts, j.LastError = 2, "451 4.7.1 greylisted"
	old30m, err := q.Enqueue(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	at(0)
	fresh := h.enqueueTo(&relay.EnqueueOptions{Campaign: "fall"}, "e@one.example", "f@two.example")

	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{old4d, old2d, old2h, old30m, fresh}},
		{"state=queued", []string{old4d, old2d, fresh}},
		{"state=deferred", []string{old30m}},
		{"state=held", []string{old2h}},
		{"state=active", nil},
		{"state=bogus", []string{old4d, old2d, old2h, old30m, fresh}},
		{"domain=one.example", []string{old4d, old2h, fresh}},
		{"domain=TWO.example", []string{old2d, old30m, fresh}},
		{"domain=three.example", nil},
		{"campaign=spring", []string{old4d, old2h}},
		{"campaign=fall", []string{fresh}},
		{"older=5m", []string{old4d, old2d, old2h, old30m}},
		{"older=1h", []string{old4d, old2d, old2h}},
		{"older=1d", []string{old4d, old2d}},
		{"older=3d", []string{old4d}},
		{"older=1y", []string{old4d, old2d, old2h, old30m, fresh}},
		{"older=1h&domain=one.example", []string{old4d, old2h}},
		{"older=1h&state=queued&campaign=spring", []string{old4d}},
		{"state=deferred&domain=one.example", nil},
	} {
		ids, next := h.queueIDs(tc.query)
		if !slices.Equal(ids, tc.want) || next != "" {
			t.Errorf("queue?%s: %v, next %q; want %v", tc.query, ids, next, tc.want)
		}
	}
	// The filter form keeps what it was given.
	_, page := h.get("queue?state=deferred&domain=two.example&older=1h&campaign=spring")
	for _, s := range []string{`<option value="deferred" selected>`, `name="domain" value="two.example"`,
		`<option value="1h" selected>`, `name="campaign" value="spring"`} {
		if !strings.Contains(page, s) {
			t.Errorf("the filtered page lacks %s", s)
		}
	}
	// A bulk action on an age filter.
	h.post("queue", url.Values{"action": {"hold"}, "scope": {"filter"}, "older": {"1d"}})
	for id, held := range map[string]bool{old4d: true, old2d: true, old2h: true, old30m: false, fresh: false} {
		if h.job(id).Held != held {
			t.Errorf("after holding what is older than a day, %s held %v", id, !held)
		}
	}
}

func TestQueuePaging(t *testing.T) {
	h := newHarness(t)
	var all, other []string
	for i := range 130 {
		if i%3 == 0 {
			other = append(other, h.enqueueTo(nil, "x@other.example"))
			continue
		}
		all = append(all, h.enqueueTo(nil, "x@paged.example"))
	}
	check := func(query string, want []string) {
		t.Helper()
		var got []string
		after, pages := "", 0
		for {
			qs := query
			if after != "" {
				qs += "&after=" + after
			}
			ids, next := h.queueIDs(qs)
			pages++
			if len(ids) > 50 {
				t.Errorf("queue?%s: %d rows on a page", qs, len(ids))
			}
			if next != "" && len(ids) != 50 {
				t.Errorf("queue?%s: %d rows and a next page", qs, len(ids))
			}
			got = append(got, ids...)
			if next == "" || pages > 10 {
				break
			}
			if next != ids[len(ids)-1] {
				t.Errorf("queue?%s: next %s is not the last row %s", qs, next, ids[len(ids)-1])
			}
			after = next
		}
		if !slices.Equal(got, want) {
			t.Errorf("paging queue?%s: %d ids over %d pages, want %d in order", query, len(got), pages, len(want))
		}
		if wantPages := max(1, (len(want)+49)/50); pages != wantPages {
			t.Errorf("paging queue?%s: %d pages, want %d", query, pages, wantPages)
		}
	}
	everything := append(slices.Clone(all), other...)
	slices.Sort(everything)
	check("state=", everything)
	check("domain=paged.example", all)
	check("domain=other.example", other)
	// Exactly a page: no next page.
	h2 := newHarness(t)
	var fifty []string
	for range 50 {
		fifty = append(fifty, h2.enqueueTo(nil, "x@example.com"))
	}
	if ids, next := h2.queueIDs(""); !slices.Equal(ids, fifty) || next != "" {
		t.Errorf("fifty jobs: %d rows, next %q", len(ids), next)
	}
}

// The dashboard, history and events pages show what happened.
func TestPagesShowActivity(t *testing.T) {
	h := newHarness(t)
	id := h.enqueue("Autumn sale", false, "autumn", "ann@example.com")
	h.run()
	httpWait(t, "the delivery", func() bool {
		rec, err := h.store.Record(context.Background(), id)
		return err == nil && len(rec.Recipients) == 1 && rec.Recipients[0].Status == "delivered"
	})
	_, page := h.get("history")
	if !strings.Contains(page, "Autumn sale") || !strings.Contains(page, "ann@example.com") {
		t.Errorf("the history page does not show the delivery:\n%s", page)
	}
	_, page = h.get("history?recipient=ANN@example.com")
	if !strings.Contains(page, "Autumn sale") {
		t.Errorf("the history by recipient does not find it:\n%s", page)
	}
	_, page = h.get("history?recipient=bob@example.com")
	if strings.Contains(page, "Autumn sale") {
		t.Errorf("the history of bob shows ann's message")
	}
	_, page = h.get("events?type=delivered")
	if !strings.Contains(page, "ann@example.com") || !strings.Contains(page, id) {
		t.Errorf("the events page does not show the delivery:\n%s", page)
	}
	_, page = h.get("events?type=bounced")
	if strings.Contains(page, id) {
		t.Error("the bounced events show a delivery")
	}
	httpWait(t, "the dashboard's figures", func() bool {
		_, page = h.get("?range=hour")
		return strings.Contains(page, "example.com") && strings.Contains(page, "Last 24 hours, every instance")
	})
}

// gatedHistory is a history whose Records waits for gate: a history so
// large that reading a day of it takes long.
type gatedHistory struct {
	queue.HistoryStore
	gate  chan struct{}
	calls atomic.Int64
}

func (g *gatedHistory) Records(ctx context.Context, f queue.RecordFilter) ([]queue.Record, string, error) {
	if !f.Since.IsZero() {
		g.calls.Add(1)
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
	}
	return g.HistoryStore.Records(ctx, f)
}

// The dashboard does not wait for the history's figures: they are read in
// the background, once however many ask.
func TestDashboardDoesNotWaitForTheHistory(t *testing.T) {
	gh := &gatedHistory{gate: make(chan struct{})}
	h := newHarness(t, func(c *relay.Client, _ *console.Options) {
		gh.HistoryStore = c.History
		c.History = gh
	})
	for range 3 {
		t0 := time.Now()
		resp, page := h.get("")
		if resp.StatusCode != 200 || !strings.Contains(page, "being read from the history") {
			t.Fatalf("the dashboard while the figures are read: %s\n%s", resp.Status, page)
		}
		if d := time.Since(t0); d > 2*time.Second {
			t.Errorf("the dashboard took %v while the history was read", d)
		}
	}
	if n := gh.calls.Load(); n != 1 {
		t.Errorf("%d readings of the history started, want 1", n)
	}
	close(gh.gate)
	httpWait(t, "the figures", func() bool {
		_, page := h.get("")
		return strings.Contains(page, `<table class="figures">`)
	})
}
