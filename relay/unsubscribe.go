package relay

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

//go:embed pages
var pageFiles embed.FS

var pageTemplates = template.Must(template.ParseFS(pageFiles, "pages/*.html"))

// Handler serves the endpoints list messages link to, under PublicURL's
// path; mount it there, for PublicURL "https://example.org/mail":
//
//	mux.Handle("/mail/", client.Handler())
//
// It serves:
//
//   - POST <path>/u/<token> with List-Unsubscribe=One-Click in the body,
//     what Gmail and Yahoo send for RFC 8058 one-click unsubscribe: it
//     suppresses the recipient for the message's list at once and answers
//     200, with no cookie, no authentication and no redirect.
//   - GET <path>/u/<token>: a confirmation page with a button, which
//     POSTs the same URL. A GET never unsubscribes, since link scanners
//     and prefetchers fetch every URL of a message.
//   - GET and POST <path>/p/<token>: the preferences page, a checkbox for
//     each list of Pages.Lists and one for all mail from this sender.
//   - GET and HEAD <path>/c/<token> and <path>/o/<token>: a tracked
//     message's click redirect (302 to exactly the URL sealed in the
//     token) and open image (see TrackingOptions); these need no
//     Suppressions.
//
// A token that does not open with LinkKeys, is malformed or truncated gets
// 400 and changes nothing. Every unsubscribe emits EventUnsubscribed.
// Responses forbid framing, caching, referrers and scripts. Handler needs
// Suppressions, PublicURL and LinkKeys: without them every request gets
// 503.
func (c *Client) Handler() http.Handler {
	return http.HandlerFunc(c.serveLink)
}

// page is what a page template is given.
type page struct {
	Lang, Title, Sender, Base string
	T                         map[string]string
	Message, Address          string
	Action, Prefs             string
	Lists                     []prefList
	AllStopped, AllLocked     bool
	Locked, Saved             bool
}

// prefList is one list on the preferences page.
type prefList struct {
	Name, Title string
	On, Locked  bool // received; fixed by a bounce, complaint or operator
}

func (c *Client) serveLink(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")

	base, err := c.publicURL()
	if err != nil {
		http.Error(w, "mail links are not configured", http.StatusServiceUnavailable)
		return
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, base.Path+"/"); ok && (strings.HasPrefix(rest, "c/") || strings.HasPrefix(rest, "o/")) {
		c.serveTrack(w, r, rest[:1], rest[2:])
		return
	}
	lang, t := c.strings(r.Header.Get("Accept-Language"))
	if c.Suppressions == nil {
		http.Error(w, "mail links are not configured", http.StatusServiceUnavailable)
		return
	}
	pg := &page{Lang: lang, T: t, Sender: c.Pages.SenderName, Base: base.Path}
	if pg.Sender == "" {
		pg.Sender = base.Hostname()
	}
	rest, ok := strings.CutPrefix(r.URL.Path, base.Path+"/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if rest == "style.css" && r.Method == http.MethodGet {
		h.Set("Content-Type", "text/css; charset=utf-8")
		h.Set("Cache-Control", "public, max-age=86400")
		b, _ := pageFiles.ReadFile("pages/style.css")
		w.Write(b)
		return
	}
	kind, token, ok := strings.Cut(rest, "/")
	if !ok || (kind != "u" && kind != "p") || strings.Contains(token, "/") {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		h.Set("Allow", "GET, POST")
		c.renderError(w, pg, http.StatusMethodNotAllowed, t["error_method"])
		return
	}
	l, err := c.open(token)
	if err != nil || l.kind != linkUnsubscribe {
		c.renderError(w, pg, http.StatusBadRequest, t["error_link"])
		return
	}
	pg.Address = l.addr
	pg.Action = base.Path + "/" + kind + "/" + token
	pg.Prefs = base.Path + "/p/" + token
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		// RFC 8058 allows both form encodings for the one-click POST.
		parse := r.ParseForm
		if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
			parse = func() error { return r.ParseMultipartForm(64 << 10) }
		}
		if err := parse(); err != nil {
			c.renderError(w, pg, http.StatusBadRequest, t["error_link"])
			return
		}
	}
	if kind == "p" {
		c.servePrefs(w, r, pg, l)
		return
	}
	if r.Method == http.MethodGet {
		pg.Title = t["confirm_title"]
		pg.T = withTitle(t, c.listName(l.list, t))
		c.render(w, "confirm.html", pg, http.StatusOK)
		return
	}
	how := "page"
	if r.PostForm.Get("List-Unsubscribe") == "One-Click" {
		how = "one-click"
	}
	if err := c.unsubscribe(r.Context(), l, l.list, how); err != nil {
		c.renderError(w, pg, http.StatusServiceUnavailable, t["error_temporary"])
		return
	}
	if how == "one-click" {
		// RFC 8058 §3.2: the POST's answer is for a machine; no page,
		// no redirect.
		h.Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, t["one_click_done"]+"\n")
		return
	}
	pg.Title = t["done_title"]
	pg.Message = strings.ReplaceAll(t["done_text"], "%s", c.listName(l.list, t))
	if l.list == "" {
		pg.Message = t["done_all"]
	}
	c.render(w, "done.html", pg, http.StatusOK)
}

// listName is a list's title for the pages; for a link without a list,
// all mail.
func (c *Client) listName(list string, t map[string]string) string {
	if list == "" {
		return t["prefs_all"]
	}
	return c.listTitle(list)
}

// withTitle fills the list title into the confirmation text.
func withTitle(t map[string]string, title string) map[string]string {
	out := maps.Clone(t)
	out["confirm_text"] = strings.ReplaceAll(t["confirm_text"], "%s", title)
	return out
}

// unsubscribe suppresses l's recipient for list ("" → all mail) and emits
// the event.
func (c *Client) unsubscribe(ctx context.Context, l link, list, how string) error {
	key, err := c.suppressionKey(l.addr)
	if err != nil {
		return err
	}
	src := l.msgID
	if src == "" {
		src = "link"
	}
	err = c.Suppressions.Suppress(ctx, queue.Suppression{Address: key, Scope: list, Reason: queue.Unsubscribed,
		Source: how + ": " + src, Created: time.Now()})
	if err != nil {
		c.logger().Warn("unsubscribe not recorded", "err", err, "list", list)
		return err
	}
	e := Event{Type: EventUnsubscribed, Time: time.Now(), MessageID: l.msgID, Recipient: l.addr,
		Domain: domainOf(l.addr), List: list, How: how}
	c.emit(e)
	c.noteEvent(ctx, &e)
	return nil
}

// servePrefs shows and saves the preferences of l's recipient.
func (c *Client) servePrefs(w http.ResponseWriter, r *http.Request, pg *page, l link) {
	t := pg.T
	pg.Title = t["prefs_title"]
	lists, all, err := c.preferences(r.Context(), l)
	if err != nil {
		c.renderError(w, pg, http.StatusServiceUnavailable, t["error_temporary"])
		return
	}
	if r.Method == http.MethodPost {
		want := r.PostForm["list"]
		for _, pl := range lists {
			on := slices.Contains(want, pl.Name)
			switch {
			case pl.Locked || on == pl.On:
			case on:
				_, err = c.Unsuppress(r.Context(), l.addr, pl.Name)
			default:
				err = c.unsubscribe(r.Context(), l, pl.Name, "page")
			}
			if err != nil {
				c.renderError(w, pg, http.StatusServiceUnavailable, t["error_temporary"])
				return
			}
		}
		stop := r.PostForm.Get("all") == "stop"
		if all != 0 && all != queue.Unsubscribed {
			stop = true // locked
		}
		switch {
		case stop && all == 0:
			err = c.unsubscribe(r.Context(), l, "", "page")
		case !stop && all == queue.Unsubscribed:
			_, err = c.Unsuppress(r.Context(), l.addr, "")
		}
		if err != nil {
			c.renderError(w, pg, http.StatusServiceUnavailable, t["error_temporary"])
			return
		}
		if lists, all, err = c.preferences(r.Context(), l); err != nil {
			c.renderError(w, pg, http.StatusServiceUnavailable, t["error_temporary"])
			return
		}
		pg.Saved = true
	}
	pg.Lists = lists
	pg.AllStopped = all != 0
	pg.AllLocked = all != 0 && all != queue.Unsubscribed
	pg.Locked = pg.AllLocked
	for _, pl := range lists {
		pg.Locked = pg.Locked || pl.Locked
	}
	c.render(w, "prefs.html", pg, http.StatusOK)
}

// preferences reads the recipient's entries: each list offered, whether
// it is received, and why the all-mail entry exists (0: none).
func (c *Client) preferences(ctx context.Context, l link) ([]prefList, queue.SuppressReason, error) {
	key, err := c.suppressionKey(l.addr)
	if err != nil {
		return nil, 0, err
	}
	entries, err := c.Suppressions.Suppressions(ctx, queue.SuppressionFilter{Address: key, Limit: 1000})
	if err != nil {
		return nil, 0, err
	}
	now := time.Now()
	by := make(map[string]queue.SuppressReason)
	for _, e := range entries {
		if e.Active(now) {
			by[e.Scope] = e.Reason
		}
	}
	offered := slices.Clone(c.Pages.Lists)
	if l.list != "" && !slices.ContainsFunc(offered, func(x List) bool { return x.Name == l.list }) {
		offered = append(offered, List{Name: l.list})
	}
	var out []prefList
	for _, x := range offered {
		reason := by[x.Name]
		title := x.Title
		if title == "" {
			title = x.Name
		}
		out = append(out, prefList{Name: x.Name, Title: title, On: reason == 0,
			Locked: reason != 0 && reason != queue.Unsubscribed})
	}
	return out, by[""], nil
}

func (c *Client) render(w http.ResponseWriter, name string, pg *page, status int) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pageTemplates.ExecuteTemplate(w, name, pg); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		c.logger().Warn("rendering a page", "page", name, "err", err)
	}
}

func (c *Client) renderError(w http.ResponseWriter, pg *page, status int, msg string) {
	pg.Title, pg.Message = pg.T["error_title"], msg
	c.render(w, "error.html", pg, status)
}
