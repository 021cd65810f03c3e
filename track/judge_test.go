package track_test

import (
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/track"
)

const (
	chromeUA  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	safariUA  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
	gmailUA   = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
	yahooUA   = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
	outlookUA = "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C; .NET4.0E; Microsoft Outlook 16.0.17328; ms-office; MSOffice 16)"
	cubotUA   = "Mozilla/5.0 (Linux; Android 9; CUBOT_X19) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36"
)

var (
	homeIP  = netip.MustParseAddr("203.0.113.7")
	appleIP = netip.MustParseAddr("17.58.100.3")
	eopIP   = netip.MustParseAddr("104.47.11.62")
)

func TestJudge(t *testing.T) {
	minute := time.Minute
	tests := []struct {
		name string
		r    track.Request
		want track.Verdict
	}{
		// People.
		{"browser click", track.Request{Kind: track.Click, UserAgent: chromeUA, RemoteIP: homeIP, SinceSend: 2 * time.Hour}, track.Verdict{}},
		{"mail app open", track.Request{Kind: track.Open, UserAgent: safariUA, RemoteIP: homeIP, SinceSend: minute}, track.Verdict{}},
		{"unknown time", track.Request{Kind: track.Click, UserAgent: chromeUA}, track.Verdict{}},
		{"Cubot phone is not a bot", track.Request{Kind: track.Click, UserAgent: cubotUA, SinceSend: minute}, track.Verdict{}},
		{"Apple UA, other network, click", track.Request{Kind: track.Click, UserAgent: safariUA, RemoteIP: appleIP, SinceSend: minute}, track.Verdict{}},

		// Rule 1: HEAD.
		{"HEAD click", track.Request{Kind: track.Click, Method: "HEAD", UserAgent: chromeUA, SinceSend: time.Hour}, track.Verdict{true, track.ReasonScannerHead}},
		{"head open", track.Request{Kind: track.Open, Method: "head", UserAgent: safariUA}, track.Verdict{true, track.ReasonScannerHead}},

		// Rule 2: prefetch headers.
		{"Sec-Purpose", track.Request{Kind: track.Click, UserAgent: chromeUA, Header: http.Header{"Sec-Purpose": {"prefetch;prerender"}}}, track.Verdict{true, track.ReasonPrefetch}},
		{"X-Purpose preview", track.Request{Kind: track.Click, UserAgent: safariUA, Header: http.Header{"X-Purpose": {"preview"}}}, track.Verdict{true, track.ReasonPrefetch}},
		{"ordinary headers", track.Request{Kind: track.Click, UserAgent: chromeUA, Header: http.Header{"Accept-Language": {"en"}}}, track.Verdict{}},

		// Rule 3: scanner User-Agents.
		{"no UA click", track.Request{Kind: track.Click, SinceSend: time.Hour}, track.Verdict{true, track.ReasonScannerUA}},
		{"Barracuda", track.Request{Kind: track.Click, UserAgent: "Barracuda Sentinel (EE)"}, track.Verdict{true, track.ReasonScannerUA}},
		{"Proofpoint", track.Request{Kind: track.Click, UserAgent: "Mozilla/5.0 (compatible; Proofpoint URL Defense)"}, track.Verdict{true, track.ReasonScannerUA}},
		{"Mimecast", track.Request{Kind: track.Click, UserAgent: "Mimecast Ltd"}, track.Verdict{true, track.ReasonScannerUA}},
		{"BingPreview", track.Request{Kind: track.Click, UserAgent: "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534+ (KHTML, like Gecko) BingPreview/1.0b"}, track.Verdict{true, track.ReasonScannerUA}},
		{"Office existence check", track.Request{Kind: track.Click, UserAgent: "Microsoft Office Existence Discovery"}, track.Verdict{true, track.ReasonScannerUA}},
		{"curl", track.Request{Kind: track.Click, UserAgent: "curl/8.5.0"}, track.Verdict{true, track.ReasonScannerUA}},
		{"python-requests open", track.Request{Kind: track.Open, UserAgent: "python-requests/2.31.0"}, track.Verdict{true, track.ReasonScannerUA}},
		{"Go", track.Request{Kind: track.Click, UserAgent: "Go-http-client/1.1"}, track.Verdict{true, track.ReasonScannerUA}},
		{"headless Chrome", track.Request{Kind: track.Click, UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36"}, track.Verdict{true, track.ReasonScannerUA}},
		{"GMass-reported opener", track.Request{Kind: track.Open, UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0"}, track.Verdict{true, track.ReasonScannerUA}},

		// Rule 4: Microsoft 365's mail servers.
		{"Safe Links from EOP", track.Request{Kind: track.Click, UserAgent: chromeUA, RemoteIP: eopIP, SinceSend: time.Hour}, track.Verdict{true, track.ReasonScannerIP}},
		{"EOP over IPv6", track.Request{Kind: track.Click, UserAgent: chromeUA, RemoteIP: netip.MustParseAddr("2a01:111:f403:c000::1")}, track.Verdict{true, track.ReasonScannerIP}},
		{"EOP as mapped IPv4", track.Request{Kind: track.Click, UserAgent: chromeUA, RemoteIP: netip.MustParseAddr("::ffff:40.107.1.1")}, track.Verdict{true, track.ReasonScannerIP}},

		// Rule 5: bots.
		{"no UA open", track.Request{Kind: track.Open}, track.Verdict{true, track.ReasonBotUA}},
		{"Googlebot", track.Request{Kind: track.Click, UserAgent: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}, track.Verdict{true, track.ReasonBotUA}},
		{"crawler", track.Request{Kind: track.Open, UserAgent: "ExampleCrawler/1.0"}, track.Verdict{true, track.ReasonBotUA}},
		{"spider", track.Request{Kind: track.Click, UserAgent: "Baiduspider"}, track.Verdict{true, track.ReasonBotUA}},
		{"link preview", track.Request{Kind: track.Click, UserAgent: "Mozilla/5.0 (compatible; LinkPreview/2.0)"}, track.Verdict{true, track.ReasonBotUA}},

		// Rule 6: Apple MPP.
		{"MPP UA", track.Request{Kind: track.Open, UserAgent: "Mozilla/5.0", RemoteIP: homeIP, SinceSend: time.Hour}, track.Verdict{true, track.ReasonAppleMPP}},
		{"bare UA click", track.Request{Kind: track.Click, UserAgent: "Mozilla/5.0", SinceSend: time.Hour}, track.Verdict{true, track.ReasonBotUA}},
		{"Apple network open", track.Request{Kind: track.Open, UserAgent: safariUA, RemoteIP: appleIP, SinceSend: time.Hour}, track.Verdict{true, track.ReasonAppleMPP}},
		{"Apple network mapped", track.Request{Kind: track.Open, UserAgent: safariUA, RemoteIP: netip.MustParseAddr("::ffff:17.1.2.3")}, track.Verdict{true, track.ReasonAppleMPP}},

		// Rule 7: proxies.
		{"Gmail open", track.Request{Kind: track.Open, UserAgent: gmailUA, SinceSend: 20 * minute}, track.Verdict{false, track.ReasonGmailProxy}},
		{"Gmail first fetch on delivery", track.Request{Kind: track.Open, UserAgent: gmailUA, SinceSend: 3 * time.Second}, track.Verdict{true, track.ReasonGmailProxy}},
		{"Gmail refetch soon after", track.Request{Kind: track.Open, UserAgent: gmailUA, SinceSend: 9 * time.Second, Seen: 1}, track.Verdict{false, track.ReasonGmailProxy}},
		{"Gmail proxy click", track.Request{Kind: track.Click, UserAgent: gmailUA, SinceSend: time.Hour}, track.Verdict{true, track.ReasonGmailProxy}},
		{"Yahoo open", track.Request{Kind: track.Open, UserAgent: yahooUA, SinceSend: time.Hour}, track.Verdict{false, track.ReasonYahooProxy}},
		{"Yahoo fast", track.Request{Kind: track.Open, UserAgent: yahooUA, SinceSend: time.Second}, track.Verdict{true, track.ReasonYahooProxy}},
		{"Yahoo click", track.Request{Kind: track.Click, UserAgent: yahooUA}, track.Verdict{true, track.ReasonYahooProxy}},
		{"Outlook open", track.Request{Kind: track.Open, UserAgent: outlookUA, SinceSend: time.Hour}, track.Verdict{false, track.ReasonOutlookProxy}},
		{"Outlook click", track.Request{Kind: track.Click, UserAgent: outlookUA, SinceSend: time.Hour}, track.Verdict{true, track.ReasonOutlookProxy}},

		// Rule 8: too soon after delivery.
		{"fast click", track.Request{Kind: track.Click, UserAgent: chromeUA, SinceSend: 2 * time.Second}, track.Verdict{true, track.ReasonScannerFast}},
		{"fast second click", track.Request{Kind: track.Click, UserAgent: chromeUA, SinceSend: 4 * time.Second, Seen: 1}, track.Verdict{true, track.ReasonScannerFast}},
		{"fast open", track.Request{Kind: track.Open, UserAgent: safariUA, SinceSend: time.Second}, track.Verdict{true, track.ReasonScannerFast}},
		{"just after the window", track.Request{Kind: track.Click, UserAgent: chromeUA, SinceSend: track.ScannerWindow}, track.Verdict{}},
		{"negative time is unknown", track.Request{Kind: track.Click, UserAgent: chromeUA, SinceSend: -time.Second}, track.Verdict{}},

		// Order: the first rule that matches decides.
		{"HEAD before UA", track.Request{Kind: track.Click, Method: "HEAD", UserAgent: "curl/8.5.0"}, track.Verdict{true, track.ReasonScannerHead}},
		{"scanner UA before Apple IP", track.Request{Kind: track.Open, UserAgent: "curl/8.5.0", RemoteIP: appleIP}, track.Verdict{true, track.ReasonScannerUA}},
		{"bot before proxy", track.Request{Kind: track.Open, UserAgent: "SomeBot " + gmailUA}, track.Verdict{true, track.ReasonBotUA}},
	}
	for _, tt := range tests {
		if got := track.Judge(tt.r); got != tt.want {
			t.Errorf("%s: Judge = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[track.Kind]string{track.Open: "open", track.Click: "click", 0: "Kind(0)", 7: "Kind(7)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}
