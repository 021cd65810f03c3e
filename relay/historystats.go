package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// HistoryStats are the counts of Stats taken from the History rather than
// from one process's events: with several instances sharing one store
// (pgstore), they are every instance's figures. They count what the
// history keeps: each recipient's final outcome (Sent, Delivered,
// Bounced, Suppressed, Expired) and the later notes (bounces that came
// back, Complained, Unsubscribed, Delayed, AutoReplied, Opened, Clicked).
// Deferrals and attempts, which the history does not keep, are only in
// Stats.
type HistoryStats struct {
	// Since and Until bound the records counted: created in [Since,
	// Until), whole hours.
	Since      time.Time         `json:"since"`
	Until      time.Time         `json:"until"`
	Total      Counts            `json:"total"`
	ByCampaign map[string]Counts `json:"by_campaign"`
	// Hours holds the counts of each hour of [Since, Until), oldest
	// first, each outcome and note counted in the hour it happened.
	Hours []Point `json:"hours"`
	// Records is how many records were read.
	Records int `json:"records"`
}

// maxStatsHours bounds HistoryStats' time series, and maxStatsRecords the
// records one call reads.
const (
	maxStatsHours   = 31 * 24
	maxStatsRecords = 10_000_000
)

// HistoryStats counts the records of messages created in [since, until)
// (at most 31 days): the figures of Stats, from the shared History. It
// reads every record in the range, so it costs what their number costs;
// a dashboard calls it for the last day or week, not on every request.
func (c *Client) HistoryStats(ctx context.Context, since, until time.Time) (*HistoryStats, error) {
	if c.History == nil {
		return nil, errors.New("relay: no History")
	}
	if !since.Before(until) || until.Sub(since) > maxStatsHours*time.Hour {
		return nil, fmt.Errorf("relay: HistoryStats: want since before until, at most %d hours apart", maxStatsHours)
	}
	since, until = since.Truncate(time.Hour), until.Truncate(time.Hour).Add(time.Hour)
	hs := &HistoryStats{Since: since, Until: until, ByCampaign: map[string]Counts{}}
	n := int(until.Sub(since) / time.Hour)
	hours := make([]Counts, n)
	hour := func(t time.Time) *Counts {
		if t.Before(since) || !t.Before(until) {
			return nil
		}
		return &hours[int(t.Sub(since)/time.Hour)]
	}
	f := queue.RecordFilter{Since: since, Until: until, Limit: 1000}
	for hs.Records < maxStatsRecords {
		recs, next, err := c.History.Records(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("relay: reading the history: %w", err)
		}
		for i := range recs {
			camp := hs.ByCampaign[recs[i].Campaign]
			for _, r := range recs[i].Recipients {
				countRecipient(&hs.Total, &r, nil)
				countRecipient(&camp, &r, nil)
				countRecipient(nil, &r, hour)
			}
			if recs[i].Campaign != "" {
				hs.ByCampaign[recs[i].Campaign] = camp
			}
		}
		hs.Records += len(recs)
		if next == "" {
			break
		}
		f.Before = next
	}
	for i, c := range hours {
		hs.Hours = append(hs.Hours, Point{Start: since.Add(time.Duration(i) * time.Hour).UTC(), Counts: c})
	}
	return hs, nil
}

// countRecipient adds one recipient's outcome and notes to into, or, with
// hour, to the counts of the hour each happened in.
func countRecipient(into *Counts, r *queue.RecipientRecord, hour func(time.Time) *Counts) {
	at := func(t time.Time) *Counts {
		if hour != nil {
			return hour(t)
		}
		return into
	}
	// An entry still waiting ("queued", once approved) or "rejected" in
	// review was never sent: it counts nothing yet.
	if c := at(r.Time); c != nil {
		switch r.Status {
		case "delivered":
			c.Sent++
			c.Delivered++
		case "bounced":
			c.Sent++
			c.Bounced++
		case "suppressed":
			c.Sent++
			c.Suppressed++
		case "expired":
			c.Sent++
			c.Expired++
		}
	}
	opened, clicked := false, false
	for _, n := range r.Notes {
		c := at(n.Time)
		if c == nil {
			continue
		}
		switch n.Type {
		case EventBounced.String():
			c.Bounced++
		case EventComplained.String():
			c.Complained++
		case EventUnsubscribed.String():
			c.Unsubscribed++
		case EventDelayed.String():
			c.Delayed++
		case EventAutoReplied.String():
			c.AutoReplied++
		case EventOpened.String():
			switch {
			case n.Machine:
				c.OpenedMachine++
			case !opened:
				opened = true
				c.OpenedUnique++
				fallthrough
			default:
				c.Opened++
			}
		case EventClicked.String():
			switch {
			case n.Machine:
				c.ClickedMachine++
			case !clicked:
				clicked = true
				c.ClickedUnique++
				fallthrough
			default:
				c.Clicked++
			}
		}
	}
}
