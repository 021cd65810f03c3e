package track

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Kind is what a tracking request is for.
type Kind int

const (
	Open  Kind = iota + 1 // a fetch of the open-tracking image
	Click                 // a follow of a rewritten link
)

func (k Kind) String() string {
	switch k {
	case Open:
		return "open"
	case Click:
		return "click"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Request is what the tracking endpoint saw of one open or click.
type Request struct {
	Kind      Kind        // Open or Click
	Method    string      // "GET" or "HEAD"; "" means GET
	UserAgent string      // the User-Agent header; "" if there was none
	RemoteIP  netip.Addr  // the client address; the zero Addr if unknown
	Header    http.Header // the request header; may be nil
	// SinceSend is the time from the message's delivery (the receiving
	// server's reply to the end of DATA) to this request; 0 if unknown.
	SinceSend time.Duration
	// Seen is how many earlier requests the caller counted for the same
	// recipient and message (and URL, for clicks). 0: this is the first.
	Seen int
}

// Verdict says whether a request was made by a person or a machine, and why.
type Verdict struct {
	// Machine is true when the request was made by software on its own:
	// a privacy proxy fetching every image, a security scanner following
	// every link, a crawler.
	Machine bool
	// Reason names the rule that decided: one of the Reason constants, or
	// "" for an ordinary request. A proxy reason can come with Machine
	// false: the fetch went through Gmail's, Yahoo's or Microsoft's
	// servers, which hide the reader, but the reader did open the message.
	Reason string
}

// The reasons Judge gives. doc.go says where each rule comes from.
const (
	ReasonAppleMPP     = "apple-mpp"     // Apple Mail Privacy Protection prefetch
	ReasonGmailProxy   = "gmail-proxy"   // Gmail's image proxy (GoogleImageProxy)
	ReasonYahooProxy   = "yahoo-proxy"   // Yahoo Mail's proxy (YahooMailProxy)
	ReasonOutlookProxy = "outlook-proxy" // Outlook or Office fetching for itself
	ReasonScannerHead  = "scanner-head"  // a HEAD request: checks a URL, renders nothing
	ReasonScannerFast  = "scanner-fast"  // within ScannerWindow of delivery
	ReasonScannerUA    = "scanner-ua"    // a security scanner's or HTTP library's User-Agent
	ReasonScannerIP    = "scanner-ip"    // from Microsoft 365's mail servers
	ReasonPrefetch     = "prefetch"      // a browser prefetch (Sec-Purpose, Purpose, X-Moz)
	ReasonBotUA        = "bot-ua"        // a crawler's or preview bot's User-Agent
)

// ScannerWindow is how soon after delivery a request is taken to be a
// security scanner's: gateways scan a message when it arrives, before the
// reader can have it, and a person needs longer than this to see a new
// message, open it and, for a click, find the link.
const ScannerWindow = 10 * time.Second

// Judge decides whether r was made by a person or a machine. The rules are
// tried in this order and the first that matches decides:
//
//  1. HEAD: machine, "scanner-head". Mail clients and browsers GET.
//  2. A prefetch header (Sec-Purpose or Purpose "prefetch", X-Moz
//     "prefetch", X-Purpose "preview"): machine, "prefetch".
//  3. A security scanner's, HTTP library's or headless browser's
//     User-Agent, or none on a click: machine, "scanner-ua".
//  4. An address Microsoft 365's mail servers send from: machine,
//     "scanner-ip".
//  5. A User-Agent saying bot, crawler, spider or preview; none on an
//     open; exactly "Mozilla/5.0" on a click: machine, "bot-ua".
//  6. Apple Mail Privacy Protection: an open with a User-Agent of exactly
//     "Mozilla/5.0", or from 17.0.0.0/8: machine, "apple-mpp".
//  7. Gmail's, Yahoo's or Outlook's own User-Agent: "gmail-proxy",
//     "yahoo-proxy", "outlook-proxy". A click is a machine (these fetch
//     images and previews; a person's click arrives from a browser). An
//     open is a person, unless it is the first request (Seen 0) and
//     within ScannerWindow of delivery: then it is a prefetch.
//  8. Within ScannerWindow of delivery: machine, "scanner-fast".
//  9. Otherwise a person, "".
func Judge(r Request) Verdict {
	ua := strings.TrimSpace(r.UserAgent)
	lua := strings.ToLower(ua)
	fast := r.SinceSend > 0 && r.SinceSend < ScannerWindow
	ip := r.RemoteIP.Unmap()

	if strings.EqualFold(r.Method, http.MethodHead) {
		return Verdict{true, ReasonScannerHead}
	}
	if isPrefetch(r.Header) {
		return Verdict{true, ReasonPrefetch}
	}
	if ua == "" && r.Kind == Click || hasAny(lua, scannerAgents) {
		return Verdict{true, ReasonScannerUA}
	}
	if inAny(ip, microsoftMail) {
		return Verdict{true, ReasonScannerIP}
	}
	bare := ua == "Mozilla/5.0"
	if ua == "" || isBotAgent(lua) || bare && r.Kind != Open {
		return Verdict{true, ReasonBotUA}
	}
	if r.Kind == Open && (bare || inAny(ip, appleMPP)) {
		return Verdict{true, ReasonAppleMPP}
	}
	if reason := proxyOf(lua); reason != "" {
		if r.Kind == Click || fast && r.Seen == 0 {
			return Verdict{true, reason}
		}
		return Verdict{false, reason}
	}
	if fast {
		return Verdict{true, ReasonScannerFast}
	}
	return Verdict{}
}

// isPrefetch reports whether h marks a speculative fetch rather than a
// navigation (Fetch Metadata's Sec-Purpose; the older Purpose and X-Moz;
// Safari's X-Purpose).
func isPrefetch(h http.Header) bool {
	if h == nil {
		return false
	}
	for _, k := range [...]string{"Sec-Purpose", "Purpose", "X-Moz", "X-Purpose"} {
		for _, v := range h.Values(k) {
			v = strings.ToLower(v)
			if strings.Contains(v, "prefetch") || strings.Contains(v, "preview") {
				return true
			}
		}
	}
	return false
}

// proxyOf returns the proxy reason for the lower-cased User-Agent lua, or "".
func proxyOf(lua string) string {
	switch {
	case hasAny(lua, gmailAgents):
		return ReasonGmailProxy
	case hasAny(lua, yahooAgents):
		return ReasonYahooProxy
	case hasAny(lua, outlookAgents):
		return ReasonOutlookProxy
	}
	return ""
}

// isBotAgent reports whether the lower-cased User-Agent lua names itself a
// bot. "bot" counts anywhere except in the phone brand Cubot
// ("Android 9; CUBOT_X19").
func isBotAgent(lua string) bool {
	if hasAny(lua, botAgents) {
		return true
	}
	for i := 0; ; {
		k := strings.Index(lua[i:], "bot")
		if k < 0 {
			return false
		}
		k += i
		if k < 2 || lua[k-2:k] != "cu" {
			return true
		}
		i = k + 3
	}
}

func hasAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func inAny(ip netip.Addr, nets []netip.Prefix) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
