package console

import (
	"net/http"
	"strings"

	"github.com/mxrelay/mxrelay/relay"
)

type eventsData struct {
	Recipient, Domain, Type string
	Live                    bool
	Types                   []string
	Events                  []relay.Event
	Query                   string
}

// eventTypes the filter offers, in the order of a message's life, then
// those of the MX hosts (back-off rules) and of the alerts.
var eventTypes = []string{"queued", "attempt", "delivered", "deferred", "bounced", "expired", "suppressed",
	"unsubscribed", "complained", "delayed", "auto_replied", "unmatched", "opened", "clicked", "approved", "rejected",
	"backoff", "alert"}

// eventsShown bounds the rows of the events page.
const eventsShown = 200

func (k *server) eventsPage(w http.ResponseWriter, r *http.Request, _ string) {
	v := r.URL.Query()
	d := &eventsData{Recipient: strings.ToLower(strings.TrimSpace(v.Get("recipient"))),
		Domain: strings.ToLower(strings.TrimSpace(v.Get("domain"))), Type: v.Get("type"),
		Live: v.Get("live") == "1", Types: eventTypes}
	q := r.URL.Query()
	q.Del("live")
	d.Query = q.Encode()
	for _, e := range k.c.RecentEvents() {
		switch {
		case d.Type != "" && e.Type.String() != d.Type:
			continue
		case d.Recipient != "" && !strings.Contains(strings.ToLower(e.Recipient), d.Recipient):
			continue
		case d.Domain != "" && !strings.EqualFold(e.Domain, d.Domain) && !strings.EqualFold(e.MX, d.Domain):
			continue
		}
		d.Events = append(d.Events, e)
		if len(d.Events) == eventsShown {
			break
		}
	}
	k.render(w, r, "events", "Events", d)
}
