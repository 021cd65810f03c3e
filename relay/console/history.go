package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/mxrelay/mxrelay/queue"
)

type historyData struct {
	Recipient, Campaign string
	Records             []queue.Record
	Next, Query         string
	NoHistory           bool
	Err                 string
}

func (k *server) historyPage(w http.ResponseWriter, r *http.Request, _ string) {
	v := r.URL.Query()
	d := &historyData{Recipient: strings.TrimSpace(v.Get("recipient")), Campaign: strings.TrimSpace(v.Get("campaign"))}
	q := url.Values{}
	if d.Recipient != "" {
		q.Set("recipient", d.Recipient)
	}
	if d.Campaign != "" {
		q.Set("campaign", d.Campaign)
	}
	d.Query = q.Encode()
	if k.c.History == nil {
		d.NoHistory = true
		k.render(w, r, "history", "History", d)
		return
	}
	recs, next, err := k.c.History.Records(r.Context(), queue.RecordFilter{Before: v.Get("before"),
		Recipient: d.Recipient, Campaign: d.Campaign, Limit: pageSize})
	if err != nil {
		d.Err = err.Error()
	}
	d.Records, d.Next = recs, next
	k.render(w, r, "history", "History", d)
}
