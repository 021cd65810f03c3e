package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// queueFilter is what the queue page shows: a state, a domain, a
// campaign and a minimum age, from the page's query or a bulk form.
type queueFilter struct {
	State    string // "", "queued", "deferred", "active", "held"
	Domain   string
	Campaign string
	Older    string // a key of ages
	After    string // the cursor
}

// ages the queue page filters by.
var ages = []struct{ Key, Label string }{{"", "any age"}, {"5m", "older than 5 minutes"},
	{"1h", "older than 1 hour"}, {"1d", "older than 1 day"}, {"3d", "older than 3 days"}}

var ageDur = map[string]time.Duration{"5m": 5 * time.Minute, "1h": time.Hour, "1d": 24 * time.Hour, "3d": 72 * time.Hour}

var states = []string{"", "queued", "deferred", "active", "held"}

func filterFrom(v url.Values) queueFilter {
	f := queueFilter{State: v.Get("state"), Domain: strings.ToLower(strings.TrimSpace(v.Get("domain"))),
		Campaign: strings.TrimSpace(v.Get("campaign")), Older: v.Get("older"), After: v.Get("after")}
	if _, ok := ageDur[f.Older]; !ok {
		f.Older = ""
	}
	switch f.State {
	case "queued", "deferred", "active", "held":
	default:
		f.State = ""
	}
	return f
}

// query writes f back as a URL query, without the cursor.
func (f queueFilter) query() string {
	v := url.Values{}
	for k, s := range map[string]string{"state": f.State, "domain": f.Domain, "campaign": f.Campaign, "older": f.Older} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v.Encode()
}

func (f queueFilter) storeState() queue.State {
	switch f.State {
	case "queued", "deferred":
		return queue.StateQueued
	case "active":
		return queue.StateActive
	case "held":
		return queue.StateHeld
	}
	return queue.StateAny
}

// match reports whether j passes f, and stop whether no later job can
// (jobs come in order of creation, so past the age cutoff none is older).
func (f queueFilter) match(j *queue.Job, now time.Time) (ok, stop bool) {
	if d, has := ageDur[f.Older]; has && j.Created.After(now.Add(-d)) {
		return false, true
	}
	switch {
	case f.State == "deferred" && j.Attempts == 0:
		return false, false
	case f.State == "queued" && j.Attempts > 0:
		return false, false
	case f.Domain != "" && !hasDomain(j, f.Domain):
		return false, false
	case f.Campaign != "" && j.Metadata["mxrelay.campaign"] != f.Campaign:
		return false, false
	}
	return true, false
}

func hasDomain(j *queue.Job, d string) bool {
	if strings.EqualFold(j.RoutingKey, d) {
		return true
	}
	for _, r := range j.Recipients {
		if strings.EqualFold(queue.DomainOf(r.Addr), d) {
			return true
		}
	}
	return false
}

// Paging: a page shows pageSize jobs and reads at most scanBudget
// records to find them, so that a filter matching little of a large
// queue still answers at once (the page then offers to look further).
const (
	pageSize   = 50
	scanBudget = 5000
	bulkMax    = 10000 // jobs one bulk action on a filter changes
)

// scan lists the jobs f matches from its cursor: at most limit of them,
// reading at most budget records. next is the cursor to go on from, ""
// at the end; scanned how many records were read.
func (k *server) scan(ctx context.Context, f queueFilter, limit, budget int) (jobs []*queue.Job, next string, scanned int, err error) {
	q := k.c.Queue()
	now := k.now()
	after := f.After
	for scanned < budget {
		page, nxt, err := q.List(ctx, queue.ListRequest{State: f.storeState(), After: after, Limit: min(500, budget-scanned)})
		if err != nil {
			return nil, "", scanned, err
		}
		for i, j := range page {
			scanned++
			ok, stop := f.match(j, now)
			if stop {
				return jobs, "", scanned, nil
			}
			if ok {
				jobs = append(jobs, j)
				if len(jobs) == limit {
					if i == len(page)-1 && nxt == "" {
						return jobs, "", scanned, nil
					}
					return jobs, j.ID, scanned, nil
				}
			}
		}
		if nxt == "" {
			return jobs, "", scanned, nil
		}
		after = nxt
	}
	return jobs, after, scanned, nil
}

type queueRow struct {
	ID, Subject, From, State, Campaign, Domain string
	Recipients                                 []queue.Recipient
	Created, Next                              time.Time
	Attempts                                   int
	LastError                                  string
}

type queueData struct {
	F           queueFilter
	States      []string
	Ages        []struct{ Key, Label string }
	Rows        []queueRow
	Next, Query string
	Scanned     int
	Short       bool // the budget ran out before the page filled
	Stats       queue.Stats
	NoQueue     bool
	Err         string
	Self        string
}

func (k *server) queuePage(w http.ResponseWriter, r *http.Request, _ string) {
	d := &queueData{F: filterFrom(r.URL.Query()), States: states, Ages: ages}
	d.Query = d.F.query()
	d.Self = k.base + "queue"
	if d.Query != "" {
		d.Self += "?" + d.Query
	}
	q := k.c.Queue()
	if q == nil {
		d.NoQueue = true
		k.render(w, r, "queue", "Queue", d)
		return
	}
	ctx := r.Context()
	d.Stats, _ = q.Stats(ctx)
	jobs, next, scanned, err := k.scan(ctx, d.F, pageSize, scanBudget)
	if err != nil {
		d.Err = err.Error()
	}
	d.Next, d.Scanned = next, scanned
	d.Short = next != "" && len(jobs) < pageSize
	for _, j := range jobs {
		row := k.row(j)
		// List leaves the message out; the subject needs its header.
		if full, err := q.Get(ctx, j.ID); err == nil {
			row.Subject = headerOf(full.Message).subject()
		}
		d.Rows = append(d.Rows, row)
	}
	k.render(w, r, "queue", "Queue", d)
}

func (k *server) row(j *queue.Job) queueRow {
	st := queue.StateOf(j).String()
	if st == "queued" && j.Attempts > 0 {
		st = "deferred"
	}
	return queueRow{ID: j.ID, From: j.From, State: st, Campaign: j.Metadata["mxrelay.campaign"],
		Domain: j.RoutingKey, Recipients: j.Recipients,
		Created: j.Created, Next: j.NextAttempt, Attempts: j.Attempts, LastError: j.LastError}
}

// queueAction applies a bulk action to the selected ids, or to every job
// the filter matches (at most bulkMax).
func (k *server) queueAction(w http.ResponseWriter, r *http.Request, op string) {
	act := r.PostFormValue("action")
	f := filterFrom(r.PostForm)
	backTo := k.base + "queue"
	if qs := f.query(); qs != "" {
		backTo += "?" + qs
	}
	q := k.c.Queue()
	if q == nil {
		k.back(w, r, backTo, "", "this client has no queue")
		return
	}
	var ids []string
	if r.PostFormValue("scope") == "filter" {
		f.After = ""
		jobs, _, _, err := k.scan(r.Context(), f, bulkMax, 10*bulkMax)
		if err != nil {
			k.back(w, r, backTo, "", "listing the queue failed: "+err.Error())
			return
		}
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
	} else {
		ids = r.PostForm["id"]
	}
	if len(ids) == 0 {
		k.back(w, r, backTo, "", "no message selected")
		return
	}
	done, failed := k.apply(r.Context(), op, act, ids, r.PostFormValue("reason"))
	k.back(w, r, backTo, done, failed)
}

// apply runs act on ids and says what came of it.
func (k *server) apply(ctx context.Context, op, act string, ids []string, reason string) (done, failed string) {
	q := k.c.Queue()
	var do func(id string) error
	verb := ""
	switch act {
	case "hold":
		do, verb = func(id string) error { return q.Hold(ctx, id) }, "held"
	case "release":
		do, verb = func(id string) error { return q.Release(ctx, id) }, "released"
	case "cancel":
		do, verb = func(id string) error { return q.Cancel(ctx, id) }, "cancelled"
	case "retry":
		do, verb = func(id string) error { return q.RetryNow(ctx, id) }, "due now"
	case "approve":
		do, verb = func(id string) error { return k.c.Approve(ctx, id, op) }, "approved"
	case "reject":
		do, verb = func(id string) error { return k.c.Reject(ctx, id, op, reason) }, "rejected"
	default:
		return "", fmt.Sprintf("unknown action %q", act)
	}
	n, bad := 0, 0
	var first error
	for _, id := range ids {
		if err := do(id); err != nil {
			bad++
			if first == nil && !errors.Is(err, queue.ErrNotFound) {
				first = err
			}
			continue
		}
		n++
	}
	k.logAction(op, act, "messages", n, "failed", bad)
	done = fmt.Sprintf("%s %s: %s", plural(n, "message"), verb, shortIDs(ids, 3))
	if n == 0 {
		done = ""
	}
	if bad > 0 {
		failed = fmt.Sprintf("%s could not be %s", plural(bad, "message"), verb)
		if first != nil {
			failed += ": " + first.Error()
		} else {
			failed += " (no longer queued)"
		}
	}
	return done, failed
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return group(int64(n)) + " " + what + "s"
}

func shortIDs(ids []string, n int) string {
	if len(ids) <= n {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:n], ", ") + fmt.Sprintf(" and %d more", len(ids)-n)
}
