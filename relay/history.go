package relay

import (
	"bytes"
	"context"
	"errors"
	stdmime "mime"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// DefaultRetention is how long the history keeps a message when
// Client.Retention is 0.
const DefaultRetention = 30 * 24 * time.Hour

// historySweep is how often Run removes records older than Retention, and
// historyBatch how many it removes in one call to the store.
const (
	historySweep = time.Hour
	historyBatch = 1000
)

// retention is Retention, or its default.
func (c *Client) retention() time.Duration {
	if c.Retention > 0 {
		return c.Retention
	}
	return DefaultRetention
}

// recordID is the id of the message's history record: the queue job id,
// or the id Send gave it.
func (o *origin) recordID() string {
	if o.id != "" {
		return o.id
	}
	return o.rec
}

// recordResult keeps the final outcomes of one attempt (delivered,
// bounced, suppressed) in the history, in one call to the store. A store
// failure is logged: the history is a record, and delivery goes on.
func (c *Client) recordResult(ctx context.Context, data []byte, o origin, res *Result) {
	if c.History == nil || o.recordID() == "" {
		return
	}
	now := c.clock()
	rec := c.newRecord(data, o, now)
	for i := range res.Recipients {
		r := &res.Recipients[i]
		var status string
		switch r.Status {
		case Delivered:
			status = "delivered"
		case Bounced:
			status = "bounced"
		case Suppressed:
			status = "suppressed"
		default:
			continue
		}
		rr := queue.RecipientRecord{Addr: r.Recipient, Status: status, Code: r.Code, Enhanced: r.Enhanced,
			Reply: r.Message, MX: r.MX, Source: r.Source, TLSVersion: r.TLS.Version, TLSVerified: r.TLS.Verified,
			TLSPolicy: r.TLS.Policy, Time: now, Attempts: o.attempts + 1}
		if r.Category != 0 {
			rr.Category = r.Category.String()
		}
		rec.Recipients = append(rec.Recipients, rr)
	}
	if len(rec.Recipients) == 0 {
		return
	}
	c.keepRecord(ctx, rec)
}

// recordExpired keeps the recipients of a job the queue gave up on.
func (c *Client) recordExpired(job *queue.Job, rcpts []queue.Recipient) {
	if c.History == nil {
		return
	}
	now := c.clock()
	o := origin{id: job.ID, meta: job.Metadata, start: job.Created, list: job.Metadata[listKey], campaign: job.Metadata[campaignKey]}
	rec := c.newRecord(job.Message, o, now)
	for _, r := range rcpts {
		rec.Recipients = append(rec.Recipients, queue.RecipientRecord{Addr: r.Addr, Status: "expired",
			Reply: r.Reply, Time: now, Attempts: job.Attempts})
	}
	c.keepRecord(context.Background(), rec)
}

// newRecord is the record of a message, without its recipients.
func (c *Client) newRecord(data []byte, o origin, now time.Time) queue.Record {
	rec := queue.Record{ID: o.recordID(), MessageID: strings.Trim(messageID(data), "<>"),
		Subject: headerText(data, "Subject"), Campaign: o.campaign, List: o.list,
		Created: o.start, Updated: now}
	for k, v := range o.meta {
		if strings.HasPrefix(k, reservedPrefix) {
			continue
		}
		if rec.Metadata == nil {
			rec.Metadata = make(map[string]string, len(o.meta))
		}
		rec.Metadata[k] = v
	}
	return rec
}

func (c *Client) keepRecord(ctx context.Context, rec queue.Record) {
	if err := c.History.Keep(context.WithoutCancel(ctx), rec); err != nil {
		c.logger().Warn("history: keeping a record failed", "err", err, "id", rec.ID)
	}
}

// noteEvent attaches a later event (a bounce that came back, a
// complaint, an unsubscribe, an open, a click) to the recipient's entry
// in the history.
func (c *Client) noteEvent(ctx context.Context, e *Event) {
	if c.History == nil || e.MessageID == "" || e.Recipient == "" {
		return
	}
	n := queue.Note{Type: e.Type.String(), Time: e.Time, UserAgent: e.UserAgent, Client: e.ClientAddr, Machine: e.Machine}
	switch {
	case e.URL != "":
		n.Detail = e.URL
	case e.Feedback != nil:
		n.Detail = e.Feedback.FeedbackType
	case e.DSN != nil:
		n.Detail = strings.TrimSpace(e.DSN.Status + " " + e.DSN.DiagnosticCode)
	case e.Type == EventUnsubscribed:
		n.Detail = strings.TrimSpace(e.How + " " + e.List)
	default:
		n.Detail = e.Message
	}
	err := c.History.Note(context.WithoutCancel(ctx), e.MessageID, e.Recipient, n)
	if err != nil && !errors.Is(err, queue.ErrNotFound) {
		c.logger().Warn("history: noting an event failed", "err", err, "id", e.MessageID, "type", n.Type)
	}
}

// sweepHistory removes the records older than Retention every
// historySweep, in batches, until ctx ends.
func (c *Client) sweepHistory(ctx context.Context) {
	if c.History == nil {
		return
	}
	t := time.NewTicker(historySweep)
	defer t.Stop()
	for {
		c.ExpireHistory(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ExpireHistory removes the history records last changed more than
// Retention ago, in batches, and returns how many it removed. Run calls it
// every hour; an application that does not call Run calls it itself.
func (c *Client) ExpireHistory(ctx context.Context) (int, error) {
	if c.History == nil {
		return 0, nil
	}
	cutoff := c.clock().Add(-c.retention())
	total := 0
	for range 10000 { // at most 10,000 batches a sweep
		n, err := c.History.Expire(ctx, cutoff, historyBatch)
		total += n
		if err != nil {
			c.logger().Warn("history: expiring records failed", "err", err)
			return total, err
		}
		if n < historyBatch {
			break
		}
	}
	return total, nil
}

// headerText is a header field of a written message, decoded (RFC 2047),
// or "".
func headerText(data []byte, name string) string {
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	prefix := []byte(name + ":")
	var val []byte
	in := false
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		switch {
		case in && len(line) > 0 && (line[0] == ' ' || line[0] == '\t'):
			val = append(val, line...)
		case in:
			in = false
		case len(line) > len(prefix) && bytes.EqualFold(line[:len(prefix)], prefix):
			val, in = append(val[:0], line[len(prefix):]...), true
		}
		if !in && val != nil {
			break
		}
	}
	s := strings.TrimSpace(string(val))
	if d, err := new(stdmime.WordDecoder).DecodeHeader(s); err == nil {
		return d
	}
	return s
}
