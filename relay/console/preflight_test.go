package console_test

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/console"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// preflightHarness is a harness whose client signs for example.org with
// the selector "mail", in a zone that publishes MX, SPF and DMARC but not
// the key's record: the one mistake preflight finds. It returns the TXT
// record the key needs.
func preflightHarness(t *testing.T, configure ...func(*relay.Client, *console.Options)) (*harness, string) {
	t.Helper()
	key, err := dkim.GenerateKey(dkim.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	keyTXT, err := dkim.TXTRecord(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	sign := func(c *relay.Client, _ *console.Options) {
		if c.Signer, err = dkim.NewSigner(dkim.Config{Domain: "example.org", Selector: "mail", Key: key}); err != nil {
			t.Fatal(err)
		}
	}
	h := newHarness(t, append([]func(*relay.Client, *console.Options){sign}, configure...)...)
	h.srv.DNS.Set("example.org", mxDomain("mx.example.org", "v=spf1 ip4:192.0.2.0/24 -all"))
	h.srv.DNS.Set("mx.example.org", mxtest.Domain{A: []string{"192.0.2.10"}})
	h.srv.DNS.Set("_dmarc.example.org", txtDomain("v=DMARC1; p=quarantine; rua=mailto:dmarc@example.org"))
	return h, keyTXT
}

// mxDomain is a domain with one MX host and one TXT record.
func mxDomain(host, txt string) mxtest.Domain {
	return mxtest.Domain{MX: []mx.MX{{Host: host, Pref: 10}}, TXT: []string{txt}}
}

// txtDomain is a name with one TXT record.
func txtDomain(txt string) mxtest.Domain { return mxtest.Domain{TXT: []string{txt}} }

// escaped is s as html/template writes it in text.
func escaped(s string) string { return strings.ReplaceAll(html.EscapeString(s), "+", "&#43;") }

// utc writes an instant as the console's pages do.
func utc(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

// findingRE finds the findings of a preflight page in order: severity and
// check.
var findingRE = regexp.MustCompile(`<li class="finding sev-(\w+)">\s*<p class="head"><span class="state \w+">\w+</span> <code class="check">([\w.-]+)</code>`)

// The preflight page: the form is prefilled with the signer's domain and
// runs nothing until asked; asked, it shows the missing DKIM record with
// the record to publish, errors first, and the summary.
func TestPreflightPage(t *testing.T) {
	h, keyTXT := preflightHarness(t)
	h.srv.DNS.ResetQueries()
	resp, page := h.get("preflight")
	if resp.StatusCode != 200 {
		t.Fatalf("GET preflight: %s\n%s", resp.Status, page)
	}
	if !strings.Contains(page, `name="domain" value="example.org"`) || !strings.Contains(page, `href="/console/preflight?domain=example.org"`) {
		t.Errorf("the form is not prefilled with the signer's domain:\n%s", page)
	}
	if strings.Contains(page, "checked") || strings.Contains(page, `class="finding`) {
		t.Errorf("the page without a domain shows a report:\n%s", page)
	}
	if !strings.Contains(page, `<a href="/console/preflight" aria-current="page">Preflight</a>`) {
		t.Errorf("the navigation does not mark the preflight page")
	}
	if n := h.srv.DNS.Queries(); n != 0 {
		t.Errorf("the page without a domain made %d DNS queries", n)
	}

	resp, page = h.get("preflight?domain=example.org")
	if resp.StatusCode != 200 {
		t.Fatalf("GET preflight?domain=example.org: %s\n%s", resp.Status, page)
	}
	if h.srv.DNS.Count("mail._domainkey.example.org", "TXT") == 0 {
		t.Error("the check did not look the key up")
	}
	var got []string
	for _, m := range findingRE.FindAllStringSubmatch(page, -1) {
		got = append(got, m[1]+" "+m[2])
	}
	if len(got) < 3 || got[0] != "error dkim.missing" {
		t.Fatalf("findings %q, want dkim.missing first\n%s", got, page)
	}
	// The DKIM family (with the error) comes first, errors before
	// warnings within it; every finding is shown, passes included.
	for _, want := range []string{"ok spf.ok", "warning dmarc.dkim-unaligned", "ok mx.ok", "info config.no-sources"} {
		if !strings.Contains(strings.Join(got, "\n"), want) {
			t.Errorf("findings %q lack %q", got, want)
		}
	}
	dkimH, spfH := strings.Index(page, `id="pf-dkim-h"`), strings.Index(page, `id="pf-spf-h"`)
	if dkimH < 0 || spfH < 0 || dkimH > spfH {
		t.Errorf("the DKIM section (%d) should come before SPF (%d)", dkimH, spfH)
	}
	for _, s := range []string{
		"<title>Preflight of example.org · Test console</title>",
		`<code class="copy">mail._domainkey.example.org</code>`,
		`<code class="copy">TXT</code>`,
		`<pre class="copy"><code>` + escaped(keyTXT) + `</code></pre>`,
		`mail._domainkey.example.org. IN TXT &#34;` + escaped(keyTXT) + `&#34;`,
		`1 error, 1 warning</span> · checked <time datetime="`,
		"Fix:</strong>",
	} {
		if !strings.Contains(page, s) {
			t.Errorf("the report lacks %s", s)
		}
	}
	if t.Failed() {
		t.Logf("the page:\n%s", page)
	}

	// The record published, nothing needs fixing.
	h.srv.DNS.Set("mail._domainkey.example.org", txtDomain(keyTXT))
	_, page = h.get("preflight?domain=example.org")
	if !strings.Contains(page, "0 errors, 0 warnings</span>") || !strings.Contains(page, "nothing needs fixing") {
		t.Errorf("the fixed zone's report:\n%s", page)
	}
}

// otherTransport is a Transport that is not relay.Direct: a Client
// that has it cannot be checked.
type otherTransport struct{}

func (otherTransport) Deliver(_ context.Context, env *relay.Envelope) []relay.RecipientResult {
	out := make([]relay.RecipientResult, len(env.To))
	for i, r := range env.To {
		out[i] = relay.RecipientResult{Recipient: r, Status: relay.Delivered}
	}
	return out
}

// A domain that cannot be checked, and a client that cannot be, are
// explained on the page, not a 500.
func TestPreflightErrors(t *testing.T) {
	h, _ := preflightHarness(t)
	for _, tc := range []struct {
		query string
		code  int
		want  string
	}{
		{"domain=", 400, "Enter the domain"},
		{"domain=+++", 400, "Enter the domain"},
		{"domain=bad+domain", 400, "The domain cannot be checked: "},
		{"domain=" + url.QueryEscape(xssFlash), 400, "The domain cannot be checked: "},
		{"domain=" + strings.Repeat("a", 254), 400, "longer than 253 characters"},
	} {
		resp, page := h.get("preflight?" + tc.query)
		if resp.StatusCode != tc.code || !strings.Contains(page, tc.want) || !strings.Contains(page, `role="alert"`) {
			t.Errorf("preflight?%s: %s, want %d with %q\n%s", tc.query, resp.Status, tc.code, tc.want, page)
		}
		if strings.Contains(page, "<script>alert(8)") {
			t.Errorf("preflight?%s: the domain is not escaped", tc.query)
		}
		if !strings.Contains(page, `<form class="filters" method="get" action="/console/preflight"`) {
			t.Errorf("preflight?%s: no form to try again", tc.query)
		}
	}
	_, page := h.get("preflight?domain=" + url.QueryEscape(xssFlash))
	if !strings.Contains(page, `value="&lt;script&gt;alert(8)&lt;/script&gt;"`) {
		t.Errorf("the form does not keep the domain, escaped:\n%s", page)
	}

	// A client on a transport of its own.
	other := &relay.Client{Transport: otherTransport{}}
	hd, err := console.New(other, console.Options{Path: "/", Authorize: console.BasicAuth(testUser, testPass)})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "/preflight?domain=example.org", nil)
	req.SetBasicAuth(testUser, testPass)
	rec := httptest.NewRecorder()
	hd.ServeHTTP(rec, req)
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, "This client cannot be checked: ") || !strings.Contains(body, "Direct transport") {
		t.Errorf("a client that cannot be checked: %d\n%s", rec.Code, body)
	}
	// No domain offered: the field is empty.
	req, _ = http.NewRequest("GET", "/preflight", nil)
	req.SetBasicAuth(testUser, testPass)
	rec = httptest.NewRecorder()
	hd.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `name="domain" value=""`) {
		t.Errorf("the form of a client without domains: %d\n%s", rec.Code, rec.Body.String())
	}
}

// What the DNS says reaches the page escaped: a record's text in a
// finding's Found, a fix naming another domain, a record to publish.
func TestPreflightEscaping(t *testing.T) {
	h, _ := preflightHarness(t)
	d := h.srv.DNS
	d.Set("example.org", mxDomain("mx.example.org", "v=spf1 ip4:192.0.2.0/24 <script>alert(11)</script> -all"))
	d.Set("_dmarc.example.org", txtDomain("v=DMARC1; p=none; x=<script>alert(12)</script>"))
	d.Set("example.net", mxDomain("mx.example.org", "v=spf1 -all"))
	d.Set("_dmarc.example.net", txtDomain("v=DMARC1; p=none; rua=mailto:a@<b>evil</b>.example"))
	for _, tc := range []struct {
		domain string
		raw    []string
		want   []string
	}{
		{"example.org", []string{"<script>alert(11)", "<script>alert(12)"}, []string{
			// spf.syntax: Found quotes the record.
			`&#34;v=spf1 ip4:192.0.2.0/24 &lt;script&gt;alert(11)&lt;/script&gt; -all&#34;`,
			// dmarc.no-rua: the record to publish keeps the record's tags.
			`<pre class="copy"><code>v=DMARC1; p=none; x=&lt;script&gt;alert(12)&lt;/script&gt;; rua=mailto:dmarc@example.org</code></pre>`,
		}},
		{"example.net", []string{"<b>evil"}, []string{
			// dmarc.rua-unauthorized: Fix and the record's name hold the
			// report domain.
			`have &lt;b&gt;evil&lt;/b&gt;.example publish`,
			`<code class="copy">example.net._report._dmarc.&lt;b&gt;evil&lt;/b&gt;.example</code>`,
			`rua mailto:a@&lt;b&gt;evil&lt;/b&gt;.example is in another organization`,
		}},
	} {
		resp, page := h.get("preflight?domain=" + tc.domain)
		if resp.StatusCode != 200 {
			t.Fatalf("preflight of %s: %s\n%s", tc.domain, resp.Status, page)
		}
		for _, r := range tc.raw {
			if strings.Contains(page, r) {
				t.Errorf("preflight of %s: %q unescaped", tc.domain, r)
			}
		}
		for _, w := range tc.want {
			if !strings.Contains(page, w) {
				t.Errorf("preflight of %s: lacks %s", tc.domain, w)
			}
		}
		if t.Failed() {
			t.Logf("the page:\n%s", page)
		}
	}
}

// The dashboard never runs a preflight, even with domains to check in
// Alerts.Preflight; the preflight page offers them.
func TestDashboardDoesNotPreflight(t *testing.T) {
	h, _ := preflightHarness(t, func(c *relay.Client, _ *console.Options) {
		c.Alerts = relay.AlertOptions{Rules: []relay.AlertRule{{Name: "preflight", Kind: relay.AlertPreflight}},
			Preflight: []string{"Example.NET", "example.org"}}
	})
	h.srv.DNS.ResetQueries()
	for _, p := range []string{"", "?range=hour", "events", "preflight"} {
		if resp, body := h.get(p); resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s\n%s", p, resp.Status, body)
		}
	}
	if n := h.srv.DNS.Queries(); n != 0 {
		t.Errorf("the dashboard made %d DNS queries", n)
	}
	_, page := h.get("preflight")
	if !strings.Contains(page, `name="domain" value="example.net"`) ||
		!regexp.MustCompile(`domain=example\.net">example\.net</a> · <a [^>]*domain=example\.org">`).MatchString(page) {
		t.Errorf("the preflight page offers the domains in the wrong order:\n%s", page)
	}
}

// The dashboard lists the back-offs in force and the firing alerts; the
// events page shows the back-off and alert events with their rules.
func TestDashboardBackoffsAndAlerts(t *testing.T) {
	h := newHarness(t, func(c *relay.Client, _ *console.Options) {
		c.Alerts = relay.AlertOptions{Rules: []relay.AlertRule{{Name: "backoff", Kind: relay.AlertBackoff}}}
	})
	_, page := h.get("")
	if !strings.Contains(page, "None firing.") || !strings.Contains(page, "None: no MX host is slowed down.") {
		t.Errorf("the quiet dashboard does not say there is nothing:\n%s", page)
	}
	// Yahoo's [TSS04]: the default rule yahoo-tss04 suspends the host.
	if _, err := h.srv.AddHost("mta5.am0.yahoodns.net", relaytest.HostConfig{RcptReply: func(string) *relaytest.Reply {
		return &relaytest.Reply{Code: 421, Enhanced: "4.7.0", Text: "[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints"}
	}}); err != nil {
		t.Fatal(err)
	}
	h.srv.AddDomain("yahoo.example", "mta5.am0.yahoodns.net")
	m := &mime.Message{From: mail.Address{Address: "shop@sender.example"}, To: []mail.Address{{Address: "a@yahoo.example"}}, Subject: "hi", Text: "hello"}
	if res, err := h.c.Send(testCtx(t), m); res == nil || res.Recipients[0].Status != relay.Deferred {
		t.Fatalf("the send: %+v, %v", res, err)
	}
	bs := h.c.Backoffs()
	if len(bs) != 1 || bs[0].Rule != "yahoo-tss04" {
		t.Fatalf("Backoffs: %+v", bs)
	}
	changes, err := h.c.CheckAlerts(testCtx(t))
	if err != nil || len(changes) != 1 {
		t.Fatalf("CheckAlerts: %+v, %v", changes, err)
	}
	_, page = h.get("")
	section := func(id string) string {
		i := strings.Index(page, `<section aria-labelledby="`+id+`">`)
		if i < 0 {
			t.Fatalf("no section %s:\n%s", id, page)
		}
		j := strings.Index(page[i:], "</section>")
		return page[i : i+j]
	}
	until := utc(bs[0].Until)
	back := section("backoffs-h")
	for _, s := range []string{`<td class="addr">mta5.am0.yahoodns.net</td>`, "yahoo-tss04", `<span class="state suspend">suspend</span>`,
		until + " UTC", `<td class="n">` + strconv.Itoa(bs[0].Connections) + `</td>`, "Yahoo Sender Hub"} {
		if !strings.Contains(back, s) {
			t.Errorf("the back-offs panel lacks %s:\n%s", s, back)
		}
	}
	if !regexp.MustCompile(`<td>in \d+ (h|min)<div`).MatchString(back) {
		t.Errorf("the back-offs panel does not say how long it lasts:\n%s", back)
	}
	firing := section("firing-h")
	for _, s := range []string{`<span class="state error">error</span>`, "<strong>backoff</strong>", `<span class="addr">mta5.am0.yahoodns.net</span>`,
		`<span class="tag">backoff</span>`, escaped(changes[0].Message), utc(changes[0].Since) + " UTC"} {
		if !strings.Contains(firing, s) {
			t.Errorf("the alerts panel lacks %s:\n%s", s, firing)
		}
	}

	_, page = h.get("events")
	for _, s := range []string{`<option>backoff</option>`, `<option>alert</option>`} {
		if !strings.Contains(page, s) {
			t.Errorf("the events filter lacks %s", s)
		}
	}
	_, page = h.get("events?type=backoff")
	if !strings.Contains(page, `<span class="state backoff">backoff</span>`) || !strings.Contains(page, "<strong>yahoo-tss04</strong> <span class=\"state suspend\">suspend</span> until ") ||
		!strings.Contains(page, "[TSS04]") {
		t.Errorf("the back-off event:\n%s", page)
	}
	_, page = h.get("events?type=alert")
	if !strings.Contains(page, `<span class="state alert">alert</span>`) || !strings.Contains(page, `<span class="state error">error</span> firing <strong>backoff</strong>`) ||
		!strings.Contains(page, escaped(changes[0].Message)) {
		t.Errorf("the alert event:\n%s", page)
	}
	if strings.Contains(page, escaped(changes[0].String())) {
		t.Errorf("the alert event shows the event's message (the whole alert line) rather than the alert's")
	}
}

// A back-off rule's name and source and an alert rule's name reach the
// dashboard and the events page escaped.
func TestDashboardBackoffsEscaped(t *testing.T) {
	h := newHarness(t, func(c *relay.Client, _ *console.Options) {
		c.Alerts = relay.AlertOptions{Rules: []relay.AlertRule{{Name: "<b>bo</b>", Kind: relay.AlertBackoff}}}
		c.Transport.(*relay.Direct).BackoffRules = []relay.BackoffRule{{Name: "<i>rule</i>", Match: `\[X1\]`, Suspend: true,
			For: time.Hour, Source: "<script>alert(13)</script>"}}
	})
	if _, err := h.srv.AddHost("mx.slow.example", relaytest.HostConfig{RcptReply: func(string) *relaytest.Reply {
		return &relaytest.Reply{Code: 421, Enhanced: "4.7.0", Text: "[X1] <svg onload=alert(14)>"}
	}}); err != nil {
		t.Fatal(err)
	}
	h.srv.AddDomain("slow.example", "mx.slow.example")
	m := &mime.Message{From: mail.Address{Address: "shop@sender.example"}, To: []mail.Address{{Address: "a@slow.example"}}, Subject: "hi", Text: "hello"}
	h.c.Send(testCtx(t), m)
	if changes, err := h.c.CheckAlerts(testCtx(t)); err != nil || len(changes) != 1 {
		t.Fatalf("CheckAlerts: %+v, %v", changes, err)
	}
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"", []string{"&lt;i&gt;rule&lt;/i&gt;", "&lt;script&gt;alert(13)&lt;/script&gt;", "&lt;b&gt;bo&lt;/b&gt;"}},
		{"events?type=backoff", []string{"&lt;i&gt;rule&lt;/i&gt;", "&lt;svg onload=alert(14)&gt;"}},
		{"events?type=alert", []string{"&lt;b&gt;bo&lt;/b&gt;"}},
	} {
		_, page := h.get(tc.path)
		for _, r := range []string{"<i>rule", "<script>alert(13)", "<b>bo", "<svg onload"} {
			if strings.Contains(page, r) {
				t.Errorf("GET %s: %q unescaped", tc.path, r)
			}
		}
		for _, w := range tc.want {
			if !strings.Contains(page, w) {
				t.Errorf("GET %s: lacks %s\n%s", tc.path, w, page)
			}
		}
	}
}

// A read-only console runs preflights: a GET that changes nothing.
func TestPreflightReadOnly(t *testing.T) {
	h, _ := preflightHarness(t, func(_ *relay.Client, o *console.Options) { o.ReadOnly = true })
	resp, page := h.get("preflight?domain=example.org")
	if resp.StatusCode != 200 || !strings.Contains(page, "dkim.missing") || !strings.Contains(page, "read-only") {
		t.Errorf("a read-only preflight: %s\n%s", resp.Status, page)
	}
	if csrfInputRE.MatchString(page) || postFormRE.MatchString(page) {
		t.Errorf("the read-only preflight page has a form that posts:\n%s", page)
	}
}
