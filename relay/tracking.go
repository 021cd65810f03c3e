package relay

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/mxrelay/mxrelay/track"
)

// Metadata keys under which a job keeps its campaign and whether it is
// tracked.
const (
	campaignKey = reservedPrefix + "campaign"
	trackKey    = reservedPrefix + "track"
)

// TrackingOptions tune open and click tracking, which SendOptions.Track
// and EnqueueOptions.Track turn on for a message. Each recipient's copy
// then has its own links: every http and https link of the HTML part goes
// through a signed redirect under PublicURL ("/c/<token>", the target
// sealed inside, so the endpoint never redirects anywhere else), and a
// 1×1 image ("/o/<token>") ends the HTML body. mailto:, tel:, anchors,
// the unsubscribe links and links with the attribute
// data-mxrelay-notrack are left alone. The rewriting happens before DKIM
// signing. Handler serves both endpoints; each request emits EventOpened
// or EventClicked and is noted in the History, marked Machine when an
// image proxy or a link scanner made it (package track says how it
// tells, and what cannot be told: a reader whose images are off never
// opens).
type TrackingOptions struct {
	// Text rewrites the links of the text/plain part too. Off by
	// default: a reader of plain text sees the long redirect URL.
	Text bool
	// ClientAddr says how much of a client's address events and the
	// history keep: "" or "truncated" (the /24 of IPv4, the /48 of IPv6),
	// "full", or "none".
	ClientAddr string
}

// checkTracking validates what a tracked message needs.
func (c *Client) checkTracking(on bool, campaign string) error {
	if len(campaign) > 200 || strings.ContainsAny(campaign, "\r\n\x00") {
		return fmt.Errorf("%w: campaign name of %d bytes, or with CR, LF or NUL", ErrInvalidMessage, len(campaign))
	}
	switch c.Tracking.ClientAddr {
	case "", "truncated", "full", "none":
	default:
		return fmt.Errorf("%w: Tracking.ClientAddr %q: want truncated, full or none", ErrInvalidConfig, c.Tracking.ClientAddr)
	}
	if !on {
		return nil
	}
	if c.PublicURL == "" {
		return fmt.Errorf("%w: a tracked message needs Client.PublicURL for its links", ErrInvalidConfig)
	}
	return c.checkLinks()
}

// personaliseTracking rewrites one recipient's copy for tracking: its
// links and the image, each with a token of its own.
//
// With tmpl (newTrackTemplate of data), the HTML is not parsed again.
func (c *Client) personaliseTracking(data []byte, rcpt, msgID string, tmpl *trackTemplate) ([]byte, error) {
	base, err := c.publicURL()
	if err != nil {
		return nil, err
	}
	prefix := base.String() + "/"
	sent := c.clock().Unix()
	rewrite := func(u string) (string, bool) {
		if strings.HasPrefix(u, prefix) {
			return "", false // our own unsubscribe and preferences links
		}
		tok, err := c.seal(link{kind: linkClick, addr: rcpt, msgID: msgID, url: u, sent: sent})
		if err != nil {
			return "", false // a URL too long to seal stays as it is
		}
		return prefix + "c/" + tok, true
	}
	otok, err := c.seal(link{kind: linkOpen, addr: rcpt, msgID: msgID, sent: sent})
	if err != nil {
		return nil, err
	}
	pixel := prefix + "o/" + otok
	if tmpl != nil && !c.Tracking.Text {
		return tmpl.copyFor(func(u string) string {
			t, _ := rewrite(u)
			return t
		}, pixel), nil
	}
	html := func(b []byte, _ string) ([]byte, bool, error) {
		out, err := track.RewriteHTML(b, rewrite, pixel)
		return out, false, err
	}
	var text partFunc
	if c.Tracking.Text {
		text = func(b []byte, _ string) ([]byte, bool, error) {
			return []byte(track.RewriteText(string(b), rewrite)), false, nil
		}
	}
	return rewriteParts(data, html, text)
}

// serveTrack answers the open image and the click redirect.
func (c *Client) serveTrack(w http.ResponseWriter, r *http.Request, kind, token string) {
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	l, err := c.open(strings.TrimSuffix(token, ".gif"))
	want := byte(linkOpen)
	if kind == "c" {
		want = linkClick
	}
	if err != nil || l.kind != want || (want == linkClick && !safeTarget(l.url)) {
		http.Error(w, "This link is not valid: it may have been cut short or changed.", http.StatusBadRequest)
		return
	}
	e := Event{Type: EventOpened, Time: c.clock(), MessageID: l.msgID, Recipient: l.addr, Domain: domainOf(l.addr),
		UserAgent: r.UserAgent(), ClientAddr: c.clientAddr(r)}
	req := track.Request{Kind: track.Open, Method: r.Method, UserAgent: r.UserAgent(), RemoteIP: remoteIP(r), Header: r.Header}
	if l.sent > 0 {
		req.SinceSend = e.Time.Sub(time.Unix(l.sent, 0))
	}
	if want == linkClick {
		e.Type, e.URL, req.Kind = EventClicked, l.url, track.Click
	}
	req.Seen = c.seen.add(l.msgID, l.addr, kind+l.url)
	v := track.Judge(req)
	e.Machine, e.MachineReason = v.Machine, v.Reason
	// Unique per recipient of a message, a person's counted apart from a
	// machine's: an image proxy's fetch does not hide a later read.
	who := "h"
	if v.Machine {
		who = "m"
	}
	e.unique = c.seen.add(l.msgID, l.addr, kind+"\x00"+who) == 0
	c.emit(e)
	c.noteEvent(context.WithoutCancel(r.Context()), &e)

	h.Set("Cache-Control", "no-store, no-cache, must-revalidate, private")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "0")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	if want == linkClick {
		// Exactly the URL that was sealed: never a parameter of the request.
		http.Redirect(w, r, l.url, http.StatusFound)
		return
	}
	gif := track.PixelGIF()
	h.Set("Content-Type", "image/gif")
	h.Set("Content-Length", fmt.Sprint(len(gif)))
	if r.Method == http.MethodGet {
		w.Write(gif)
	}
}

// safeTarget reports whether a sealed click target may be redirected to:
// an absolute http or https URL (the rewriter seals nothing else).
func safeTarget(u string) bool {
	lu := strings.ToLower(u)
	return (strings.HasPrefix(lu, "https://") || strings.HasPrefix(lu, "http://")) && !strings.ContainsAny(u, "\r\n")
}

// remoteIP is the address of the client of r.
func remoteIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// clientAddr is the client's address as Tracking.ClientAddr keeps it.
func (c *Client) clientAddr(r *http.Request) string {
	a := remoteIP(r)
	if !a.IsValid() {
		return ""
	}
	switch c.Tracking.ClientAddr {
	case "full":
		return a.String()
	case "none":
		return ""
	}
	bits := 24
	if a.Is6() {
		bits = 48
	}
	p, _ := a.Prefix(bits)
	return p.String()
}

// seenSet counts the earlier requests for the same open or link, so that
// Stats counts unique opens and clicks and track.Judge knows repeats. It
// lives in memory and is bounded: after a restart, or beyond the bound,
// a repeat counts as new.
type seenSet struct {
	mu sync.Mutex
	m  map[string]int
}

const maxSeen = 1 << 20

func (s *seenSet) add(msgID, addr, what string) int {
	k := msgID + "\x00" + strings.ToLower(addr) + "\x00" + what
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || len(s.m) >= maxSeen {
		s.m = make(map[string]int)
	}
	n := s.m[k]
	s.m[k] = n + 1
	return n
}
