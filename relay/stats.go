package relay

import (
	"encoding/json"
	"math"
	"sync"
	"time"
)

// Counts are event counts, one per recipient and event (an attempt counts
// once per domain attempted).
type Counts struct {
	Queued    int64 `json:"queued"`    // EventQueued
	Attempts  int64 `json:"attempts"`  // EventAttempt
	Delivered int64 `json:"delivered"` // EventDelivered
	Deferred  int64 `json:"deferred"`  // EventDeferred
	Bounced   int64 `json:"bounced"`   // EventBounced, synchronous and later (Event.Async)
	Expired   int64 `json:"expired"`   // EventExpired
	// Suppressed counts recipients not sent to because of the
	// suppression list (EventSuppressed).
	Suppressed int64 `json:"suppressed"`
	// Unsubscribed counts unsubscribes (EventUnsubscribed).
	Unsubscribed int64 `json:"unsubscribed"`
	// Complained counts spam complaints (EventComplained).
	Complained int64 `json:"complained"`
	// Delayed counts delay notices from later MTAs (EventDelayed).
	Delayed int64 `json:"delayed"`
	// AutoReplied counts auto-replies (EventAutoReplied).
	AutoReplied int64 `json:"auto_replied"`
	// Unmatched counts mail that came back and matched nothing
	// (EventUnmatched).
	Unmatched int64 `json:"unmatched"`
	// Sent counts the recipients given to Send, SendRaw and Enqueue.
	Sent int64 `json:"sent"`
	// Opened counts opens by people (EventOpened not Machine), and
	// OpenedUnique the recipients of a message who opened it, once each;
	// OpenedMachine counts the fetches of image proxies and scanners.
	Opened        int64 `json:"opened"`
	OpenedUnique  int64 `json:"opened_unique"`
	OpenedMachine int64 `json:"opened_machine"`
	// Clicked, ClickedUnique and ClickedMachine count clicks the same
	// way (EventClicked).
	Clicked        int64 `json:"clicked"`
	ClickedUnique  int64 `json:"clicked_unique"`
	ClickedMachine int64 `json:"clicked_machine"`
}

// BounceRate is bounced ÷ (delivered + bounced + expired), 0 when nothing
// has ended yet.
func (c Counts) BounceRate() float64 {
	n := c.Delivered + c.Bounced + c.Expired
	if n == 0 {
		return 0
	}
	return float64(c.Bounced+c.Expired) / float64(n)
}

// Latency summarises the time from Send or Enqueue to delivery, over every
// delivered recipient. Percentiles are known within 10%. In JSON the
// durations are milliseconds: {"count":n,"p50_ms":…,"p90_ms":…,"p99_ms":…,
// "max_ms":…}.
type Latency struct {
	Count         int64         // delivered recipients measured
	P50, P90, P99 time.Duration // percentiles
	Max           time.Duration // the longest
}

// latencyJSON is Latency's JSON form.
type latencyJSON struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func ms(d time.Duration) float64     { return float64(d) / float64(time.Millisecond) }
func fromMS(v float64) time.Duration { return time.Duration(math.Round(v * float64(time.Millisecond))) }

// MarshalJSON writes the durations as milliseconds.
func (l Latency) MarshalJSON() ([]byte, error) {
	return json.Marshal(latencyJSON{l.Count, ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (l *Latency) UnmarshalJSON(b []byte) error {
	var j latencyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*l = Latency{Count: j.Count, P50: fromMS(j.P50), P90: fromMS(j.P90), P99: fromMS(j.P99), Max: fromMS(j.Max)}
	return nil
}

// Stats are a Client's counters since its first event: what an application
// needs to alert on a bounce rate or a stuck destination.
type Stats struct {
	Since time.Time `json:"since"` // the first event counted
	Total Counts    `json:"total"` // every recipient and attempt
	// ByDomain counts by recipient domain and ByMX by the MX host that
	// answered. Each keeps at most StatsKeys entries: when a new key
	// would go past that, the less busy half of the keys are folded into
	// the entry StatsOther, so that memory stays bounded however many
	// domains are mailed while the busiest stay visible by name. A key
	// folded away starts again from zero if it comes back.
	ByDomain      map[string]Counts `json:"by_domain"`
	ByMX          map[string]Counts `json:"by_mx"`
	ByCampaign    map[string]Counts `json:"by_campaign"`    // by SendOptions.Campaign
	Latency       Latency           `json:"latency"`        // from send or enqueue to delivery
	EventsDropped int64             `json:"events_dropped"` // events the Events hook missed (buffer full)
	// Minutes holds the counts of each of the last SeriesMinutes minutes,
	// oldest first, and Hours those of the last SeriesHours hours, so
	// that a dashboard can draw rates over time without a database of
	// its own. They are this process's counts, as every figure of Stats
	// is: instances that share a store each count their own events, and
	// HistoryStats counts every instance's from the shared History.
	Minutes []Point `json:"minutes"`
	Hours   []Point `json:"hours"`
}

// Point is the counts of one minute or hour of Stats' time series.
type Point struct {
	Start  time.Time `json:"start"`
	Counts Counts    `json:"counts"`
}

// The lengths of Stats' time series.
const (
	SeriesMinutes = 6 * 60 // six hours by the minute
	SeriesHours   = 7 * 24 // a week by the hour
)

// bucket is one slot of a ring of series counts.
type bucket struct {
	at int64 // the minute or hour since the epoch it counts
	c  Counts
}

// StatsKeys is how many entries Stats.ByDomain and Stats.ByMX keep each,
// StatsOther included; see Stats.ByDomain. At about 300 octets an entry,
// the two cost at most some 6 MB.
const StatsKeys = 10000

// StatsOther is the key of Stats.ByDomain and Stats.ByMX under which the
// counts of the less busy keys are folded once StatsKeys is reached.
const StatsOther = "(other)"

// Latency histogram: buckets 10% apart from 1 ms, so a percentile is
// known within 10%; about 200 buckets cover up to 10 days.
const (
	latBase    = float64(time.Millisecond)
	latGrowth  = 1.1
	latBuckets = 200
)

type statsRecorder struct {
	mu       sync.Mutex
	since    time.Time
	total    Counts
	byDomain map[string]*Counts
	byMX     map[string]*Counts
	byCamp   map[string]*Counts
	maxKeys  int // bound of byDomain and byMX; 0 → StatsKeys (tests set it)
	lat      [latBuckets]int64
	latN     int64
	latMax   time.Duration
	minutes  [SeriesMinutes]bucket
	hours    [SeriesHours]bucket
}

// slot returns the ring bucket for the period at, emptied when it held an
// older one.
func slot(ring []bucket, at int64) *bucket {
	b := &ring[at%int64(len(ring))]
	if b.at != at {
		*b = bucket{at: at}
	}
	return b
}

// series returns a ring's last n periods up to now, oldest first.
func series(ring []bucket, now int64, period time.Duration) []Point {
	n := int64(len(ring))
	out := make([]Point, 0, n)
	for at := now - n + 1; at <= now; at++ {
		p := Point{Start: time.Unix(0, at*int64(period)).UTC()}
		if b := ring[((at%n)+n)%n]; b.at == at {
			p.Counts = b.c
		}
		out = append(out, p)
	}
	return out
}

func (s *statsRecorder) record(e *Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.since.IsZero() {
		s.since = e.Time
		s.byDomain = make(map[string]*Counts)
		s.byMX = make(map[string]*Counts)
	}
	add(&s.total, e)
	if e.Domain != "" {
		add(s.bounded(s.byDomain, e.Domain), e)
	}
	if e.MX != "" {
		add(s.bounded(s.byMX, e.MX), e)
	}
	if e.Campaign != "" {
		if s.byCamp == nil {
			s.byCamp = make(map[string]*Counts)
		}
		add(counts(s.byCamp, e.Campaign), e)
	}
	t := e.Time.UnixNano()
	add(&slot(s.minutes[:], t/int64(time.Minute)).c, e)
	add(&slot(s.hours[:], t/int64(time.Hour)).c, e)
	if e.Type == EventDelivered && e.Latency > 0 {
		i := 0
		if d := float64(e.Latency); d > latBase {
			i = min(latBuckets-1, int(math.Log(d/latBase)/math.Log(latGrowth))+1)
		}
		s.lat[i]++
		s.latN++
		s.latMax = max(s.latMax, e.Latency)
	}
}

// counts returns the entry of key in m, created on first use.
func counts(m map[string]*Counts, key string) *Counts {
	c := m[key]
	if c == nil {
		c = new(Counts)
		m[key] = c
	}
	return c
}

func add(c *Counts, e *Event) {
	if e.first {
		c.Sent++
	}
	switch e.Type {
	case EventQueued:
		c.Queued++
	case EventAttempt:
		c.Attempts++
	case EventDelivered:
		c.Delivered++
	case EventDeferred:
		c.Deferred++
	case EventBounced:
		c.Bounced++
	case EventExpired:
		c.Expired++
	case EventSuppressed:
		c.Suppressed++
	case EventUnsubscribed:
		c.Unsubscribed++
	case EventComplained:
		c.Complained++
	case EventDelayed:
		c.Delayed++
	case EventAutoReplied:
		c.AutoReplied++
	case EventUnmatched:
		c.Unmatched++
	case EventOpened:
		switch {
		case e.Machine:
			c.OpenedMachine++
		case e.unique:
			c.OpenedUnique++
			fallthrough
		default:
			c.Opened++
		}
	case EventClicked:
		switch {
		case e.Machine:
			c.ClickedMachine++
		case e.unique:
			c.ClickedUnique++
			fallthrough
		default:
			c.Clicked++
		}
	}
}

// percentile returns the upper bound of the bucket holding the p-th
// fraction of the latencies; s.mu is held.
func (s *statsRecorder) percentile(p float64) time.Duration {
	if s.latN == 0 {
		return 0
	}
	want := int64(math.Ceil(p * float64(s.latN)))
	var seen int64
	for i, n := range s.lat {
		seen += n
		if seen >= want {
			return min(s.latMax, time.Duration(latBase*math.Pow(latGrowth, float64(i))))
		}
	}
	return s.latMax
}

// Stats returns a snapshot of the counters since the Client's first event.
func (c *Client) Stats() Stats {
	s := &c.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Stats{
		Since:         s.since,
		Total:         s.total,
		ByDomain:      make(map[string]Counts, len(s.byDomain)),
		ByMX:          make(map[string]Counts, len(s.byMX)),
		EventsDropped: c.events.dropped.Load(),
		Latency: Latency{
			Count: s.latN, Max: s.latMax,
			P50: s.percentile(0.50), P90: s.percentile(0.90), P99: s.percentile(0.99),
		},
	}
	for k, v := range s.byDomain {
		out.ByDomain[k] = *v
	}
	for k, v := range s.byMX {
		out.ByMX[k] = *v
	}
	out.ByCampaign = make(map[string]Counts, len(s.byCamp))
	for k, v := range s.byCamp {
		out.ByCampaign[k] = *v
	}
	now := c.clock().UnixNano()
	out.Minutes = series(s.minutes[:], now/int64(time.Minute), time.Minute)
	out.Hours = series(s.hours[:], now/int64(time.Hour), time.Hour)
	return out
}
