package console

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
)

// Thresholds of the dashboard's rates and alerts. Complaints: Gmail's
// and Yahoo's bulk-sender rules (February 2024) ask senders to stay
// under 0.1% of delivered mail and never reach 0.3%. Bounces: no
// provider publishes a figure; 2% and 5% are the usual guidance of
// sending services, and above them a list needs cleaning.
const (
	complaintWarn = 0.001
	complaintStop = 0.003
	bounceWarn    = 0.02
	bounceStop    = 0.05
	queueAgeWarn  = 24 * time.Hour
)

// ranges the dashboard offers.
var ranges = []struct{ Key, Label string }{{"hour", "Last hour"}, {"day", "Last day"}, {"week", "Last week"}}

type dashboardData struct {
	Range, RangeLabel string
	Ranges            []struct{ Key, Label string }
	Charts            []chart
	Window            relay.Counts
	BounceRate        float64
	ComplaintRate     float64
	BounceLevel       string
	ComplaintLevel    string
	Queue             queue.Stats
	QueueErr          string
	Oldest            time.Time
	Since             time.Time
	Busiest, Failing  []destRow
	BusiestMX         []destRow
	FailingMX         []destRow
	Alerts            []alert
	Backoffs          []relay.Backoff // Client.Backoffs: the MX hosts slowed down now
	Firing            []relay.Alert   // Client.FiringAlerts: the alerts of Client.Alerts firing now
	Shared            *relay.HistoryStats
	SharedErr         string
	HasHistory        bool
	Dropped           int64
}

type destRow struct {
	Name                         string
	Delivered, Deferred, Bounced int64
	Attempted                    int64
	FailRate                     float64
}

type alert struct {
	Level, Text string
}

func (k *server) dashboard(w http.ResponseWriter, r *http.Request, _ string) {
	d := &dashboardData{Range: r.URL.Query().Get("range"), Ranges: ranges}
	st := k.c.Stats()
	var points []relay.Point
	step := time.Hour
	switch d.Range {
	case "hour":
		points, step = tail(st.Minutes, 60), time.Minute
	case "week":
		points = st.Hours
	default:
		d.Range = "day"
		points = tail(st.Hours, 24)
	}
	for _, rg := range ranges {
		if rg.Key == d.Range {
			d.RangeLabel = rg.Label
		}
	}
	var start time.Time
	if len(points) > 0 {
		start = points[0].Start
	}
	series := []struct {
		name, class string
		get         func(c *relay.Counts) int64
	}{
		{"Sent", "sent", func(c *relay.Counts) int64 { return c.Sent }},
		{"Delivered", "delivered", func(c *relay.Counts) int64 { return c.Delivered }},
		{"Deferred", "deferred", func(c *relay.Counts) int64 { return c.Deferred }},
		{"Bounced", "bounced", func(c *relay.Counts) int64 { return c.Bounced }},
		{"Complained", "complained", func(c *relay.Counts) int64 { return c.Complained }},
		{"Opened", "opened", func(c *relay.Counts) int64 { return c.Opened }},
		{"Clicked", "clicked", func(c *relay.Counts) int64 { return c.Clicked }},
	}
	for _, s := range series {
		vals := make([]int64, len(points))
		for i := range points {
			vals[i] = s.get(&points[i].Counts)
		}
		d.Charts = append(d.Charts, barChart(s.name, s.class, start, step, vals))
	}
	for i := range points {
		addCounts(&d.Window, &points[i].Counts)
	}
	d.BounceRate = rate(d.Window.Bounced, d.Window.Delivered+d.Window.Bounced)
	d.ComplaintRate = rate(d.Window.Complained, d.Window.Delivered)
	d.BounceLevel = level(d.BounceRate, bounceWarn, bounceStop)
	d.ComplaintLevel = level(d.ComplaintRate, complaintWarn, complaintStop)
	d.Since, d.Dropped = st.Since, st.EventsDropped

	d.Busiest, d.Failing = destinations(st.ByDomain)
	d.BusiestMX, d.FailingMX = destinations(st.ByMX)

	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if q := k.c.Queue(); q != nil {
		qs, err := q.Stats(ctx)
		if err != nil {
			d.QueueErr = err.Error()
		}
		d.Queue = qs
		if jobs, _, err := q.List(ctx, queue.ListRequest{Limit: 1}); err == nil && len(jobs) > 0 {
			d.Oldest = jobs[0].Created
		}
	} else {
		d.QueueErr = "no Store: this client does not queue"
	}
	if k.c.History != nil {
		d.HasHistory = true
		d.Shared, d.SharedErr = k.sharedDay(ctx)
	}
	d.Alerts = k.alerts(d)
	// Both are read from memory: no DNS, no store.
	d.Backoffs, d.Firing = k.c.Backoffs(), k.c.FiringAlerts()
	k.render(w, r, "dashboard", "Dashboard", d)
}

// The shared figures are HistoryStats of the last 24 hours, every
// instance's. Reading them costs a walk over the history's records of the
// day, and in a store that applies the time range on the way (boltstore)
// over the whole history: seconds for a year of it. So they are computed
// in the background, at most once every sharedEvery, and a page shows the
// last figures at once; only the first computation is waited for, and
// for no longer than sharedWait.
const (
	sharedEvery = time.Minute
	sharedWait  = 50 * time.Millisecond
	sharedLimit = 5 * time.Minute // bounds one computation
)

// sharedDay returns the last figures computed, and starts a computation
// when they are older than sharedEvery and none is running.
func (k *server) sharedDay(ctx context.Context) (*relay.HistoryStats, string) {
	k.histMu.Lock()
	if (k.histAt.IsZero() || k.now().Sub(k.histAt) > sharedEvery) && k.histRun == nil {
		k.histRun = make(chan struct{})
		go k.computeShared(k.histRun)
	}
	run, first := k.histRun, k.histAt.IsZero()
	k.histMu.Unlock()
	if first && run != nil {
		t := time.NewTimer(sharedWait)
		select {
		case <-run:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	k.histMu.Lock()
	defer k.histMu.Unlock()
	switch {
	case k.histAt.IsZero():
		return nil, "The figures of the last 24 hours are being read from the history; reload in a moment."
	case k.histErr != nil:
		return nil, k.histErr.Error()
	}
	return k.histDay, ""
}

// computeShared computes the shared figures and closes done.
func (k *server) computeShared(done chan struct{}) {
	defer close(done)
	ctx, cancel := context.WithTimeout(context.Background(), sharedLimit)
	defer cancel()
	now := k.now()
	hs, err := k.c.HistoryStats(ctx, now.Add(-24*time.Hour), now)
	k.histMu.Lock()
	k.histDay, k.histErr, k.histAt, k.histRun = hs, err, k.now(), nil
	k.histMu.Unlock()
}

// alerts are what the figures call for now.
func (k *server) alerts(d *dashboardData) []alert {
	var out []alert
	add := func(lv, text string) { out = append(out, alert{lv, text}) }
	switch d.ComplaintLevel {
	case "stop":
		add("error", "Complaint rate "+pct(d.ComplaintRate)+" is at or over 0.3%: Gmail and Yahoo block senders there. Stop the campaign and check consent.")
	case "warn":
		add("warning", "Complaint rate "+pct(d.ComplaintRate)+" is over 0.1%, the rate Gmail asks senders to stay under.")
	}
	switch d.BounceLevel {
	case "stop":
		add("error", "Bounce rate "+pct(d.BounceRate)+" is over 5%: the recipient list needs cleaning.")
	case "warn":
		add("warning", "Bounce rate "+pct(d.BounceRate)+" is over 2%.")
	}
	if !d.Oldest.IsZero() && k.now().Sub(d.Oldest) > queueAgeWarn {
		add("warning", "The oldest queued message was queued "+ago(k.now(), d.Oldest)+".")
	}
	if d.Queue.Corrupt > 0 {
		add("error", group(int64(d.Queue.Corrupt))+" queue records cannot be read (see the store's recovery steps).")
	}
	if d.Dropped > 0 {
		add("warning", group(d.Dropped)+" events were dropped because the Events hook fell behind.")
	}
	if d.QueueErr != "" && k.c.Queue() != nil {
		add("error", "The queue cannot be read: "+d.QueueErr)
	}
	return out
}

func tail(p []relay.Point, n int) []relay.Point {
	if len(p) > n {
		return p[len(p)-n:]
	}
	return p
}

func rate(n, of int64) float64 {
	if of <= 0 {
		return 0
	}
	return float64(n) / float64(of)
}

func level(r, warn, stop float64) string {
	switch {
	case r >= stop:
		return "stop"
	case r > warn:
		return "warn"
	}
	return "ok"
}

func addCounts(into, c *relay.Counts) {
	into.Sent += c.Sent
	into.Delivered += c.Delivered
	into.Deferred += c.Deferred
	into.Bounced += c.Bounced
	into.Complained += c.Complained
	into.Opened += c.Opened
	into.Clicked += c.Clicked
	into.Suppressed += c.Suppressed
	into.Expired += c.Expired
	into.Unsubscribed += c.Unsubscribed
}

// destinations are the ten busiest and the ten most failing of m.
func destinations(m map[string]relay.Counts) (busiest, failing []destRow) {
	rows := make([]destRow, 0, len(m))
	for name, c := range m {
		r := destRow{Name: name, Delivered: c.Delivered, Deferred: c.Deferred, Bounced: c.Bounced}
		r.Attempted = c.Delivered + c.Deferred + c.Bounced
		r.FailRate = rate(c.Deferred+c.Bounced, r.Attempted)
		if r.Attempted > 0 {
			rows = append(rows, r)
		}
	}
	slices.SortFunc(rows, func(a, b destRow) int {
		return cmp.Or(cmp.Compare(b.Attempted, a.Attempted), cmp.Compare(a.Name, b.Name))
	})
	busiest = slices.Clone(rows[:min(10, len(rows))])
	slices.SortFunc(rows, func(a, b destRow) int {
		return cmp.Or(cmp.Compare(b.Deferred+b.Bounced, a.Deferred+a.Bounced), cmp.Compare(a.Name, b.Name))
	})
	for _, r := range rows {
		if len(failing) == 10 || r.Deferred+r.Bounced == 0 {
			break
		}
		failing = append(failing, r)
	}
	return busiest, failing
}
