package console

import (
	"bytes"
	"context"
	"errors"
	"html"
	stdmime "mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/lint"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
)

type messageData struct {
	ID        string
	Job       *queue.Job
	Row       queueRow
	Record    *queue.Record
	Msg       *parsed
	Size      int
	Subject   string
	From, To  string
	Images    bool
	Blocked   int
	Preview   string // the frame's URL
	DKIM      dkimStatus
	Lint      []lint.Finding
	Plan      *relay.RoutePlan
	PlanErr   string
	Entries   []entryView
	Held      bool
	NotFound  bool
	RecordErr string
}

// entryView is one recipient on the message page: its queue state and
// its history.
type entryView struct {
	Addr, State, Reply string
	Record             *queue.RecipientRecord
}

func (k *server) messagePage(w http.ResponseWriter, r *http.Request, _ string) {
	id := r.PathValue("id")
	d := &messageData{ID: id, Images: r.URL.Query().Get("images") == "1"}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if q := k.c.Queue(); q != nil {
		job, err := q.Get(ctx, id)
		switch {
		case err == nil:
			d.Job, d.Row, d.Held = job, k.row(job), job.Held
		case !errors.Is(err, queue.ErrNotFound):
			k.fail(w, r, http.StatusInternalServerError, "reading the queue: "+err.Error())
			return
		}
	}
	if k.c.History != nil {
		rec, err := k.c.History.Record(ctx, id)
		switch {
		case err == nil:
			d.Record = rec
		case !errors.Is(err, queue.ErrNotFound):
			d.RecordErr = err.Error()
		}
	}
	if d.Job == nil && d.Record == nil {
		d.NotFound = true
		k.renderStatus(w, r, http.StatusNotFound, "message", "Message not found", d)
		return
	}
	byAddr := map[string]*queue.RecipientRecord{}
	if d.Record != nil {
		for i := range d.Record.Recipients {
			byAddr[queue.FoldAddr(d.Record.Recipients[i].Addr)] = &d.Record.Recipients[i]
		}
		d.Subject, d.From = d.Record.Subject, d.Record.From
	}
	if d.Job != nil {
		job := d.Job
		d.Msg = parseMessage(job.Message)
		d.Size = len(job.Message)
		d.Subject = d.Msg.Header.subject()
		d.From = d.Msg.Header.get("From")
		d.To = d.Msg.Header.get("To")
		_, d.Blocked = previewHTML(d.Msg.HTML, d.Msg.Parts, k.trackBase(), d.Images)
		d.Preview = k.base + "message/" + id + "/preview"
		if d.Images {
			d.Preview += "?images=1"
		}
		d.DKIM = k.dkimOf(ctx, job)
		d.Lint = lint.Raw(job.Message, &lint.Options{List: job.Metadata["mxrelay.list"] != ""})
		if len(job.Remaining()) > 0 {
			if p, err := k.c.PlanJob(ctx, job); err != nil {
				d.PlanErr = err.Error()
			} else {
				d.Plan = p
			}
		}
		for _, rc := range job.Recipients {
			st := rc.State.String()
			d.Entries = append(d.Entries, entryView{Addr: rc.Addr, State: st, Reply: rc.Reply, Record: byAddr[queue.FoldAddr(rc.Addr)]})
			delete(byAddr, queue.FoldAddr(rc.Addr))
		}
	}
	if d.Record != nil {
		for i := range d.Record.Recipients {
			e := &d.Record.Recipients[i]
			if _, left := byAddr[queue.FoldAddr(e.Addr)]; left {
				d.Entries = append(d.Entries, entryView{Addr: e.Addr, State: e.Status, Reply: e.Reply, Record: e})
			}
		}
	}
	title := d.Subject
	if title == "" {
		title = "Message " + id
	}
	k.render(w, r, "message", title, d)
}

// trackBase is the prefix of the client's open-tracking image URLs.
func (k *server) trackBase() string {
	if k.c.PublicURL == "" {
		return ""
	}
	return strings.TrimSuffix(k.c.PublicURL, "/") + "/o/"
}

// previewCSP is the preview frame's policy: a sandboxed document (no
// script, an opaque origin, no forms, no popups) that loads nothing but
// data: images and inline styles, framed only by the console.
func previewCSP(images bool) string {
	img := "data: cid:"
	if images {
		img += " https: http:"
	}
	return "sandbox; default-src 'none'; img-src " + img + "; style-src 'unsafe-inline'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
}

// preview serves a queued message's HTML part (or its text) as the
// preview frame's document.
func (k *server) preview(w http.ResponseWriter, r *http.Request, _ string) {
	images := r.URL.Query().Get("images") == "1"
	h := w.Header()
	h.Set("Content-Security-Policy", previewCSP(images))
	h.Set("X-Frame-Options", "SAMEORIGIN")
	job := k.job(w, r)
	if job == nil {
		return
	}
	p := parseMessage(job.Message)
	var doc string
	if p.HTML != "" {
		doc, _ = previewHTML(p.HTML, p.Parts, k.trackBase(), images)
	} else {
		var b bytes.Buffer
		b.WriteString(`<!doctype html><meta charset="utf-8"><pre style="white-space:pre-wrap;font:14px/1.5 ui-monospace,monospace;margin:1rem">`)
		b.WriteString(html.EscapeString(p.Text))
		b.WriteString(`</pre>`)
		doc = b.String()
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.Write([]byte(doc))
}

// part serves one attachment for download, never for display: its
// claimed type is not trusted with the console's origin.
func (k *server) part(w http.ResponseWriter, r *http.Request, _ string) {
	w.Header().Set("Content-Security-Policy", "sandbox; default-src 'none'")
	job := k.job(w, r)
	if job == nil {
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	p := parseMessage(job.Message)
	if err != nil || n < 0 || n >= len(p.Parts) {
		k.fail(w, r, http.StatusNotFound, "no such part")
		return
	}
	pt := &p.Parts[n]
	name := pt.Name
	if name == "" {
		name = "part-" + strconv.Itoa(n)
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", stdmime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Content-Length", strconv.Itoa(len(pt.data)))
	w.Write(pt.data)
}

// job reads the queued job the path names, or answers 404 and returns
// nil.
func (k *server) job(w http.ResponseWriter, r *http.Request) *queue.Job {
	q := k.c.Queue()
	if q == nil {
		k.fail(w, r, http.StatusNotFound, "this client has no queue")
		return nil
	}
	job, err := q.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, queue.ErrNotFound) {
			code = http.StatusNotFound
		}
		k.fail(w, r, code, "no queued message "+r.PathValue("id"))
		return nil
	}
	return job
}

// messageAction applies one action to the message.
func (k *server) messageAction(w http.ResponseWriter, r *http.Request, op string) {
	id := r.PathValue("id")
	done, failed := k.apply(r.Context(), op, r.PostFormValue("action"), []string{id}, r.PostFormValue("reason"))
	k.back(w, r, k.base+"message/"+id, done, failed)
}
