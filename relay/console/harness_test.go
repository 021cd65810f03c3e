package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/console"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// The operator the harness's console admits.
const (
	testUser = "ops"
	testPass = "correct horse battery staple"
)

// harness is a client on relaytest with a MemoryStore for its queue,
// history and suppressions, and its console on an httptest server under
// /console/.
type harness struct {
	t     *testing.T
	srv   *relaytest.Server
	c     *relay.Client
	store *queue.MemoryStore
	web   *httptest.Server
	base  string // the console's URL
	http  *http.Client
}

func newHarness(t *testing.T, configure ...func(*relay.Client, *console.Options)) *harness {
	t.Helper()
	srv, err := relaytest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if _, err := srv.AddHost("mx.example.com", relaytest.HostConfig{}); err != nil {
		t.Fatal(err)
	}
	srv.AddDomain("example.com", "mx.example.com")
	store := &queue.MemoryStore{}
	c := srv.Client()
	c.Store, c.History, c.Suppressions = store, store, store
	o := console.Options{Path: "/console/", Authorize: console.BasicAuth(testUser, testPass), Title: "Test console"}
	for _, f := range configure {
		f(c, &o)
	}
	h, err := console.New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", h)
	web := httptest.NewServer(mux)
	t.Cleanup(web.Close)
	return &harness{t: t, srv: srv, c: c, store: store, web: web, base: web.URL + "/console/", http: newClient()}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// run starts the client's queue until the test ends.
func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.c.Run(ctx) }()
	h.t.Cleanup(func() { cancel(); <-done })
}

// enqueue queues a message to the recipients, held when held is set.
func (h *harness) enqueue(subject string, held bool, campaign string, to ...string) string {
	h.t.Helper()
	m := &mime.Message{From: mail.Address{Name: "Shop", Address: "shop@sender.example"}, Subject: subject,
		Text: "Hello,\r\n\r\nthis is " + subject + ".\r\n", HTML: "<p>Hello, this is <b>" + subject + "</b>.</p>"}
	for _, a := range to {
		m.To = append(m.To, mail.Address{Address: a})
	}
	id, err := h.c.EnqueueWith(testCtx(h.t), m, &relay.EnqueueOptions{Hold: held, Campaign: campaign})
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// get fetches a console path as the operator and returns the response
// and its body.
func (h *harness) get(path string) (*http.Response, string) {
	h.t.Helper()
	req, _ := http.NewRequest("GET", h.base+path, nil)
	req.SetBasicAuth(testUser, testPass)
	return h.do(req)
}

func (h *harness) do(req *http.Request) (*http.Response, string) {
	h.t.Helper()
	return h.doWith(h.http, req)
}

// doWith sends req with the HTTP client c and returns the response and
// its body.
func (h *harness) doWith(c *http.Client, req *http.Request) (*http.Response, string) {
	h.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, string(b)
}

var tokenRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// token reads a form token from a page the operator fetched.
func (h *harness) token() string {
	h.t.Helper()
	_, body := h.get("queue")
	m := tokenRE.FindStringSubmatch(body)
	if m == nil {
		h.t.Fatal("no CSRF token on the queue page")
	}
	return m[1]
}

// post sends a form as the operator from the console's own origin, with
// the token unless the form sets csrf itself.
func (h *harness) post(path string, form url.Values) (*http.Response, string) {
	h.t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", h.token())
	}
	req, _ := http.NewRequest("POST", h.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", h.web.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.SetBasicAuth(testUser, testPass)
	return h.do(req)
}
