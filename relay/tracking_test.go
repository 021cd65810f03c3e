package relay_test

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

const trackedHTML = `<!doctype html>
<html><body>
<p>Hello &amp; welcome. <a href="https://shop.example/offer?a=1&amp;b=2">See the offer</a>.</p>
<p><a href="mailto:help@shop.example">Write to us</a> · <a href="#top">Top</a> ·
<a data-mxrelay-notrack href="https://shop.example/account">Your account</a></p>
<p>Ünïcödé text, and a long line: ` + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" + `</p>
</body></html>`

// trackHarness is a list harness (Handler on a loopback server, link
// keys, a two-key signer) with the memory store as history too.
func trackHarness(t *testing.T) (*relaytest.Server, *relay.Client, *queue.MemoryStore, map[string]string, *eventLog) {
	t.Helper()
	s, c, _, store, txt := listHarness(t)
	c.History = store
	events := newEventLog()
	c.Events = events.hook
	return s, c, store, txt, events
}

// htmlPart returns the decoded HTML part of a received message.
func htmlPart(t *testing.T, data []byte) string {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ct := p.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/html") {
			b, _ := io.ReadAll(p.Body)
			return string(b)
		}
	}
	t.Fatalf("no HTML part in\n%s", data)
	return ""
}

var hrefRE = regexp.MustCompile(`href="([^"]*)"`)

func sendTracked(t *testing.T, s *relaytest.Server, c *relay.Client, rcpt string) (string, *relaytest.Message) {
	t.Helper()
	m := testMessage(rcpt)
	m.HTML = trackedHTML
	res, err := c.SendWith(ctx(t), m, &relay.SendOptions{Track: true, Campaign: "spring"})
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range s.Messages() {
		if msg.To[0] == rcpt {
			return res.Recipients[0].Recipient, msg
		}
	}
	t.Fatalf("no message for %s", rcpt)
	return "", nil
}

func TestTrackingRewritesAndSigns(t *testing.T) {
	s, c, _, txt, _ := trackHarness(t)
	_, ann := sendTracked(t, s, c, "ann@example.com")
	_, bob := sendTracked(t, s, c, "bob@example.com")
	html := htmlPart(t, ann.Data)
	var hrefs []string
	for _, m := range hrefRE.FindAllStringSubmatch(html, -1) {
		hrefs = append(hrefs, m[1])
	}
	if len(hrefs) != 4 || !strings.HasPrefix(hrefs[0], c.PublicURL+"/c/") || hrefs[1] != "mailto:help@shop.example" ||
		hrefs[2] != "#top" || hrefs[3] != "https://shop.example/account" {
		t.Errorf("links %q", hrefs)
	}
	if strings.Contains(html, "data-mxrelay-notrack") {
		t.Error("the opt-out attribute is still in the copy")
	}
	if !strings.Contains(html, `<img src="`+c.PublicURL+`/o/`) || !strings.Contains(html, "Ünïcödé text") || !strings.Contains(html, "Hello &amp; welcome.") {
		t.Errorf("copy:\n%s", html)
	}
	// Each recipient has links of its own, and the text part is as written.
	if htmlPart(t, bob.Data) == html {
		t.Error("two recipients got the same links")
	}
	if !bytes.Contains(ann.Data, []byte("A dot line above.")) {
		t.Error("the text part changed")
	}
	// The signature covers the rewritten copy: dkimpy verifies it.
	dkimpyVerify(t, [][]byte{ann.Data, bob.Data}, txt)
}

func TestTrackingEndpoints(t *testing.T) {
	s, c, store, _, events := trackHarness(t)
	var mu sync.Mutex
	now := time.Now()
	relay.SetClock(c, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	_, ann := sendTracked(t, s, c, "ann@example.com")
	// The reader comes a minute after delivery, later than any scanner.
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	html := htmlPart(t, ann.Data)
	click := hrefRE.FindStringSubmatch(html)[1]
	open := regexp.MustCompile(`<img src="([^"]+)"`).FindStringSubmatch(html)[1]
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	get := func(method, u, ua string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, u, nil)
		req.Header.Set("User-Agent", ua)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	const browserUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"

	// A scanner's HEAD first: counted as a machine.
	if resp := get(http.MethodHead, click, "Mozilla/5.0"); resp.StatusCode != http.StatusFound {
		t.Errorf("HEAD: %s", resp.Status)
	}
	resp := get(http.MethodGet, click, browserUA)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "https://shop.example/offer?a=1&b=2" {
		t.Errorf("click: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	resp = get(http.MethodGet, open, browserUA)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/gif" || !strings.Contains(resp.Header.Get("Cache-Control"), "no-cache") {
		t.Errorf("open: %s %v", resp.Status, resp.Header)
	}
	get(http.MethodGet, open, browserUA) // a second open: not unique

	// A tampered token, a truncated one, and an unsubscribe token at the
	// click endpoint: 400, never a redirect.
	tok := click[strings.LastIndex(click, "/")+1:]
	flipped := []byte(tok)
	flipped[len(flipped)/2] ^= 1
	unsub := sendList(t, s, c, "cat@example.com", "news")
	for _, u := range []string{
		c.PublicURL + "/c/" + string(flipped),
		c.PublicURL + "/c/" + tok[:len(tok)/2],
		c.PublicURL + "/c/" + unsub[strings.LastIndex(unsub, "/")+1:],
		c.PublicURL + "/o/" + tok, // a click token at the open endpoint
	} {
		if resp := get(http.MethodGet, u, browserUA); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %s to %q", u, resp.Status, resp.Header.Get("Location"))
		}
	}
	if resp := get(http.MethodPost, click, browserUA); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST to a click link: %s", resp.Status)
	}

	e := events.waitFor(t, relay.EventClicked, "ann@example.com")
	if e.URL != "https://shop.example/offer?a=1&b=2" || !e.Machine || e.MachineReason == "" || e.ClientAddr != "127.0.0.0/24" {
		t.Errorf("first click event %+v", e)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Total.Opened < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := c.Stats().Total
	if st.Clicked != 1 || st.ClickedUnique != 1 || st.ClickedMachine != 1 || st.Opened != 2 || st.OpenedUnique != 1 {
		t.Errorf("stats %+v", st)
	}
	if cs := c.Stats().ByCampaign["spring"]; cs.Sent != 1 || cs.Delivered != 1 {
		t.Errorf("campaign stats %+v", cs)
	}
	recs, _, err := store.Records(ctx(t), queue.RecordFilter{Recipient: "ann@example.com"})
	if err != nil || len(recs) != 1 {
		t.Fatalf("history %v %+v", err, recs)
	}
	var types []string
	for _, n := range recs[0].Recipients[0].Notes {
		types = append(types, n.Type)
		if n.Type == "clicked" && n.Detail != "https://shop.example/offer?a=1&b=2" {
			t.Errorf("click note %+v", n)
		}
	}
	if strings.Join(types, " ") != "clicked clicked opened opened" {
		t.Errorf("notes %q", types)
	}

	// The same figures from the history, as every instance sharing the
	// store would count them.
	mu.Lock()
	at := now
	mu.Unlock()
	hs, err := c.HistoryStats(ctx(t), at.Add(-time.Hour), at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ht := hs.Total
	// Two records: ann's tracked message, and cat's list message.
	if ht.Sent != 2 || ht.Delivered != 2 || ht.Opened != 2 || ht.OpenedUnique != 1 || ht.Clicked != 1 || ht.ClickedUnique != 1 || ht.ClickedMachine != 1 ||
		hs.ByCampaign["spring"].Delivered != 1 || hs.Records != 2 {
		t.Errorf("history stats %+v", hs)
	}
	var sum int64
	for _, p := range hs.Hours {
		sum += p.Counts.Opened
	}
	if sum != 2 || len(hs.Hours) != 3 {
		t.Errorf("%d hours, %d opens in them", len(hs.Hours), sum)
	}
}

func TestTrackingNeedsConfig(t *testing.T) {
	s := newHarness(t)
	c := s.Client()
	m := testMessage("ann@example.com")
	if _, err := c.SendWith(ctx(t), m, &relay.SendOptions{Track: true}); err == nil {
		t.Error("tracking without PublicURL and LinkKeys was accepted")
	}
	if _, err := c.SendWith(ctx(t), m, &relay.SendOptions{Campaign: "a\r\nb"}); err == nil {
		t.Error("a campaign with CRLF was accepted")
	}
}

// A queued tracked message is kept unsigned and rewritten at each attempt.
func TestTrackingQueued(t *testing.T) {
	s, c, _, txt, events := trackHarness(t)
	c.Store = c.Suppressions.(*queue.MemoryStore)
	runClient(t, c)
	m := testMessage("ann@example.com")
	m.HTML = trackedHTML
	if _, err := c.EnqueueWith(ctx(t), m, &relay.EnqueueOptions{Track: true}); err != nil {
		t.Fatal(err)
	}
	events.waitFor(t, relay.EventDelivered, "ann@example.com")
	msgs := s.Messages()
	if len(msgs) != 1 || !strings.Contains(htmlPart(t, msgs[0].Data), c.PublicURL+"/c/") {
		t.Fatalf("%d messages", len(msgs))
	}
	dkimpyVerify(t, [][]byte{msgs[0].Data}, txt)
}
