package console

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	"github.com/mxrelay/mxrelay/relay"
)

type approvalsData struct {
	Campaigns []campaignGroup
	Rows      []queueRow
	More      bool
	Decisions []relay.Event
	NoQueue   bool
	Err       string
}

type campaignGroup struct {
	Name    string
	Count   int
	Subject string
	Oldest  time.Time
	Filter  string
}

// approvalsMax bounds the held messages the page reads.
const approvalsMax = 2000

func (k *server) approvalsPage(w http.ResponseWriter, r *http.Request, _ string) {
	d := &approvalsData{}
	q := k.c.Queue()
	if q == nil {
		d.NoQueue = true
		k.render(w, r, "approvals", "Approvals", d)
		return
	}
	ctx := r.Context()
	jobs, next, _, err := k.scan(ctx, queueFilter{State: "held"}, approvalsMax, approvalsMax)
	if err != nil {
		d.Err = err.Error()
	}
	d.More = next != ""
	groups := map[string]*campaignGroup{}
	for _, j := range jobs {
		row := k.row(j)
		if len(d.Rows) < pageSize {
			if full, err := q.Get(ctx, j.ID); err == nil {
				row.Subject = headerOf(full.Message).subject()
			}
			d.Rows = append(d.Rows, row)
		}
		c := row.Campaign
		if c == "" {
			continue
		}
		g := groups[c]
		if g == nil {
			g = &campaignGroup{Name: c, Oldest: j.Created, Subject: row.Subject}
			groups[c] = g
		}
		g.Count++
	}
	for _, g := range groups {
		d.Campaigns = append(d.Campaigns, *g)
	}
	slices.SortFunc(d.Campaigns, func(a, b campaignGroup) int { return cmp.Compare(a.Name, b.Name) })
	for _, e := range k.c.RecentEvents() {
		if e.Type == relay.EventApproved || e.Type == relay.EventRejected {
			d.Decisions = append(d.Decisions, e)
			if len(d.Decisions) == 20 {
				break
			}
		}
	}
	k.render(w, r, "approvals", "Approvals", d)
}

// approvalsAction approves or rejects the selected messages, or every
// held message of a campaign.
func (k *server) approvalsAction(w http.ResponseWriter, r *http.Request, op string) {
	back := k.base + "approvals"
	act := r.PostFormValue("action")
	if act != "approve" && act != "reject" {
		k.back(w, r, back, "", "unknown action")
		return
	}
	ids := r.PostForm["id"]
	if camp := r.PostFormValue("campaign"); camp != "" {
		jobs, _, _, err := k.scan(r.Context(), queueFilter{State: "held", Campaign: camp}, bulkMax, 10*bulkMax)
		if err != nil {
			k.back(w, r, back, "", "listing the held messages failed: "+err.Error())
			return
		}
		ids = ids[:0]
		for _, j := range jobs {
			ids = append(ids, j.ID)
		}
	}
	if len(ids) == 0 {
		k.back(w, r, back, "", "no message selected")
		return
	}
	done, failed := k.apply(r.Context(), op, act, ids, r.PostFormValue("reason"))
	k.back(w, r, back, done, failed)
}
