package relay_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

var linkKey = bytes.Repeat([]byte("k"), 32)

var pages = relay.Pages{SenderName: "Example Shop", Lists: []relay.List{{Name: "news", Title: "Weekly news"}, {Name: "offers", Title: "Offers"}}}

// twin is a new Client with c's list settings and the given link keys.
func twin(s *relaytest.Server, c *relay.Client, keys ...[]byte) *relay.Client {
	cc := s.Client()
	cc.Suppressions, cc.PublicURL, cc.Pages, cc.Signer = c.Suppressions, c.PublicURL, c.Pages, c.Signer
	cc.LinkKeys = keys
	return cc
}

// listHarness is a suppression harness whose Client serves its links on a
// loopback HTTP server and signs with two keys, whose records it returns.
func listHarness(t *testing.T) (*relaytest.Server, *relay.Client, *rcptLog, *queue.MemoryStore, map[string]string) {
	t.Helper()
	s, c, log, store := suppressHarness(t, nil)
	mux := http.NewServeMux()
	mux.Handle("/mail/", c.Handler())
	web := httptest.NewServer(mux)
	t.Cleanup(web.Close)
	c.PublicURL = web.URL + "/mail"
	c.LinkKeys = [][]byte{linkKey}
	c.Pages = pages
	signer, txt := twoKeySigner(t)
	c.Signer = signer
	return s, c, log, store, txt
}

var unsubRE = regexp.MustCompile(`(?m)^List-Unsubscribe: <([^>]+)>\r$`)

// unsubscribeURL is the List-Unsubscribe link of a received message.
func unsubscribeURL(t *testing.T, data []byte) string {
	t.Helper()
	m := unsubRE.FindSubmatch(data)
	if m == nil {
		t.Fatalf("no List-Unsubscribe in\n%s", data[:min(len(data), 800)])
	}
	return string(m[1])
}

func TestListMessagePersonalised(t *testing.T) {
	s, c, _, _, txt := listHarness(t)
	res, err := c.SendWith(ctx(t), testMessage("ann@example.com", "bob@example.com"), &relay.SendOptions{List: "news"})
	if err != nil {
		t.Fatalf("Send: %v %+v", err, res)
	}
	msgs := s.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want one per recipient", len(msgs))
	}
	links := map[string]bool{}
	var raw [][]byte
	for _, m := range msgs {
		if len(m.To) != 1 {
			t.Errorf("a list message went to %v in one transaction", m.To)
		}
		u := unsubscribeURL(t, m.Data)
		links[u] = true
		if !strings.HasPrefix(u, c.PublicURL+"/u/") || strings.Contains(u, "ann") || strings.Contains(u, "bob") {
			t.Errorf("link %q", u)
		}
		for _, want := range []string{"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", "\r\nList-Id: \"Weekly news\" <news.example.org>\r\n"} {
			if !bytes.Contains(m.Data, []byte(want)) {
				t.Errorf("message lacks %q", want)
			}
		}
		h := regexp.MustCompile(`[; ]h=([^;]+);`).FindSubmatch(bytes.ReplaceAll(m.Data, []byte("\r\n "), nil))
		if h == nil || !strings.Contains(strings.ToLower(string(h[1])), "list-unsubscribe:list-unsubscribe") || !strings.Contains(strings.ToLower(string(h[1])), "list-unsubscribe-post") {
			t.Errorf("h= does not cover both List-Unsubscribe fields: %s", h)
		}
		raw = append(raw, m.Data)
	}
	if len(links) != 2 {
		t.Errorf("the recipients share a link")
	}
	dkimpyVerify(t, raw, txt)
}

func TestListMessageNeedsConfig(t *testing.T) {
	s, c, _, _, _ := listHarness(t)
	m := testMessage("ann@example.com")
	for name, tc := range map[string]struct {
		setup func(c *relay.Client)
		opts  relay.SendOptions
		want  error
	}{
		"no PublicURL":       {func(c *relay.Client) { c.PublicURL = "" }, relay.SendOptions{List: "news"}, relay.ErrInvalidConfig},
		"http PublicURL":     {func(c *relay.Client) { c.PublicURL = "http://example.org/mail" }, relay.SendOptions{List: "news"}, relay.ErrInvalidConfig},
		"short key":          {func(c *relay.Client) { c.LinkKeys = [][]byte{[]byte("short")} }, relay.SendOptions{List: "news"}, relay.ErrInvalidConfig},
		"bad list name":      {nil, relay.SendOptions{List: "news\r\nBcc: x"}, relay.ErrInvalidMessage},
		"reserved metadata":  {nil, relay.SendOptions{Metadata: map[string]string{"mxrelay.list": "news"}}, relay.ErrInvalidMessage},
		"own ListUnsubcribe": {func(*relay.Client) { m.ListUnsubscribe = "https://example.org/u" }, relay.SendOptions{List: "news"}, relay.ErrInvalidMessage},
	} {
		t.Run(name, func(t *testing.T) {
			cc := twin(s, c, linkKey)
			m.ListUnsubscribe = ""
			if tc.setup != nil {
				tc.setup(cc)
			}
			if _, err := cc.SendWith(ctx(t), m, &tc.opts); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// sendList sends one list message to rcpt and returns its link.
func sendList(t *testing.T, s *relaytest.Server, c *relay.Client, rcpt, list string) string {
	t.Helper()
	before := len(s.Messages())
	if _, err := c.SendWith(ctx(t), testMessage(rcpt), &relay.SendOptions{List: list}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	msgs := s.Messages()
	if len(msgs) != before+1 {
		t.Fatalf("not delivered")
	}
	return unsubscribeURL(t, msgs[len(msgs)-1].Data)
}

func checkHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	h := resp.Header
	if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") || h.Get("X-Frame-Options") != "DENY" ||
		h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("security headers: %v", h)
	}
	if h.Get("Set-Cookie") != "" || h.Get("Location") != "" {
		t.Errorf("cookie or redirect: %v", h)
	}
}

func TestOneClickUnsubscribe(t *testing.T) {
	s, c, log, store, _ := listHarness(t)
	events := newEventLog()
	c.Events = events.hook
	u := sendList(t, s, c, "ann@example.com", "news")

	// A GET (a link scanner) shows a page and changes nothing.
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkHeaders(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<form method=\"post\"") || !strings.Contains(string(body), "Weekly news") {
		t.Errorf("GET: %d\n%s", resp.StatusCode, body)
	}
	if got, _ := store.Suppressions(ctx(t), queue.SuppressionFilter{}); len(got) != 0 {
		t.Fatalf("a GET suppressed: %+v", got)
	}

	// The RFC 8058 POST suppresses for the list at once.
	resp, err = http.Post(u, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	checkHeaders(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	got, _ := store.Suppressions(ctx(t), queue.SuppressionFilter{})
	if len(got) != 1 || got[0].Address != "ann@example.com" || got[0].Scope != "news" || got[0].Reason != queue.Unsubscribed {
		t.Fatalf("after POST: %+v", got)
	}
	e := events.waitFor(t, relay.EventUnsubscribed, "ann@example.com")
	if e.List != "news" || e.How != "one-click" || !strings.HasPrefix(e.MessageID, "<") {
		t.Errorf("event %+v", e)
	}

	// The next list message is not sent; other lists and other mail are.
	before := log.count("ann@example.com")
	res, _ := c.SendWith(ctx(t), testMessage("ann@example.com"), &relay.SendOptions{List: "news"})
	if res.Recipients[0].Status != relay.Suppressed || log.count("ann@example.com") != before {
		t.Errorf("news after unsubscribe: %+v", res.Recipients[0])
	}
	if res, _ := c.SendWith(ctx(t), testMessage("ann@example.com"), &relay.SendOptions{List: "offers"}); res.Recipients[0].Status != relay.Delivered {
		t.Errorf("offers after unsubscribing from news: %+v", res.Recipients[0])
	}
	if res, _ := c.Send(ctx(t), testMessage("ann@example.com")); res.Recipients[0].Status != relay.Delivered {
		t.Errorf("other mail after unsubscribing from news: %+v", res.Recipients[0])
	}

	// multipart/form-data is the other encoding RFC 8058 allows.
	u2 := sendList(t, s, c, "bob@example.com", "news")
	var mp bytes.Buffer
	mp.WriteString("--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n")
	resp, err = http.Post(u2, "multipart/form-data; boundary=b", &mp)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, _ := store.Suppressions(ctx(t), queue.SuppressionFilter{Address: "bob@example.com"}); resp.StatusCode != 200 || len(got) != 1 {
		t.Errorf("multipart POST: %d %+v", resp.StatusCode, got)
	}
}

// Tampered, truncated and foreign tokens are refused and change nothing;
// a token opens only its own recipient; keys rotate.
func TestLinkTokens(t *testing.T) {
	s, c, _, store, _ := listHarness(t)
	u := sendList(t, s, c, "ann@example.com", "news")
	i := strings.LastIndex(u, "/")
	base, token := u[:i+1], u[i+1:]
	flip := []byte(token)
	flip[len(flip)/2] ^= 1
	for name, bad := range map[string]string{
		"tampered":  base + string(flip),
		"truncated": base + token[:len(token)-4],
		"short":     base + "AAAA",
		"empty":     base,
		"not b64":   base + "!!!",
		"extra":     u + "/x",
	} {
		resp, err := http.Post(bad, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("%s: %d\n%s", name, resp.StatusCode, body)
		}
	}
	if got, _ := store.Suppressions(ctx(t), queue.SuppressionFilter{}); len(got) != 0 {
		t.Fatalf("a bad token suppressed: %+v", got)
	}

	// Rotation: a new first key, the old one kept, opens old links; with
	// the old key dropped they are refused.
	rotated := twin(s, c, bytes.Repeat([]byte("n"), 32), linkKey)
	dropped := twin(s, c, bytes.Repeat([]byte("n"), 32))
	for name, tc := range map[string]struct {
		c    *relay.Client
		want int
	}{"rotated": {rotated, 200}, "dropped": {dropped, 400}} {
		rec := httptest.NewRecorder()
		pu, _ := url.Parse(u)
		req := httptest.NewRequest("GET", pu.Path, nil)
		tc.c.Handler().ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s: %d, want %d", name, rec.Code, tc.want)
		}
	}
	// A link made after rotation opens with the rotated keys only.
	u2 := sendList(t, s, rotated, "bob@example.com", "news")
	pu, _ := url.Parse(u2)
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest("GET", pu.Path, nil))
	if rec.Code != 400 {
		t.Errorf("a new-key link opened with the old key alone: %d", rec.Code)
	}
	if !strings.Contains(rec.Body.String(), "Nothing was changed") {
		t.Errorf("the refusal does not explain:\n%s", rec.Body.String())
	}
}

func TestPreferencesPage(t *testing.T) {
	s, c, _, store, _ := listHarness(t)
	u := sendList(t, s, c, "ann@example.com", "news")
	prefs := strings.Replace(u, "/u/", "/p/", 1)
	// A hard bounce for one list locks it.
	if err := store.Suppress(ctx(t), queue.Suppression{Address: "ann@example.com", Scope: "offers", Reason: queue.Complained}); err != nil {
		t.Fatal(err)
	}
	get := func() string {
		resp, err := http.Get(prefs)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		checkHeaders(t, resp)
		return string(b)
	}
	page := get()
	if !strings.Contains(page, `id="list-news" name="list" value="news" checked`) || !strings.Contains(page, `value="offers" disabled`) {
		t.Errorf("page:\n%s", page)
	}
	// Leave news, stop all mail.
	resp, err := http.PostForm(prefs, url.Values{"all": {"stop"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got, _ := store.Suppressions(ctx(t), queue.SuppressionFilter{Address: "ann@example.com"})
	scopes := map[string]queue.SuppressReason{}
	for _, e := range got {
		scopes[e.Scope] = e.Reason
	}
	if scopes["news"] != queue.Unsubscribed || scopes[""] != queue.Unsubscribed || scopes["offers"] != queue.Complained {
		t.Errorf("after saving: %+v", got)
	}
	// Back to news and all mail; the complaint stays.
	resp, err = http.PostForm(prefs, url.Values{"list": {"news", "offers"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got, _ = store.Suppressions(ctx(t), queue.SuppressionFilter{Address: "ann@example.com"})
	if len(got) != 1 || got[0].Scope != "offers" || got[0].Reason != queue.Complained {
		t.Errorf("after resubscribing: %+v", got)
	}

	// German, from Accept-Language.
	req, _ := http.NewRequest("GET", prefs, nil)
	req.Header.Set("Accept-Language", "de-DE,de;q=0.9,en;q=0.5")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `lang="de"`) || !strings.Contains(string(b), "Einstellungen speichern") {
		t.Errorf("no German page:\n%s", b)
	}
}
