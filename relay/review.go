package relay

import (
	"context"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/mxrelay/mxrelay/queue"
)

// ReviewOptions say which queued messages wait for an operator's approval
// (Approve) before they are sent.
type ReviewOptions struct {
	// Campaigns holds every message enqueued with a Campaign
	// (EnqueueOptions.Campaign) until it is approved, as if
	// EnqueueOptions.Hold were set. Send, which makes its attempt at
	// once, is never held: enqueue what must be reviewed.
	Campaigns bool
}

// ErrNotHeld: Approve or Reject of a queued message that is not held
// for review.
var ErrNotHeld = errors.New("relay: message is not held for review")

// ErrInvalidOperator: the operator name given to Approve or Reject is
// empty, too long, or holds a control character or invalid UTF-8.
var ErrInvalidOperator = errors.New("relay: invalid operator name")

// maxOperator bounds an operator's name, and maxRejectReason a
// rejection's reason, in bytes.
const (
	maxOperator     = 200
	maxRejectReason = 1000
)

// Approve releases the held queued message id for delivery, on the word
// of the operator by (a name, as the console's authorisation says it).
// With a History, each recipient still to be delivered gets an entry
// with Status "queued" and a note of type "approved" naming by, before
// the message is released, so that the record says who let it go and
// when; its outcome later replaces the status and keeps the note. Each
// such recipient gets an EventApproved, emitted before the release, so
// that it comes before the events of the delivery. Two operators
// approving one message at the same instant may both be recorded.
// ErrNotHeld for a message that is
// not held, queue.ErrNotFound for an unknown id, ErrNoStore without a
// Store, ErrInvalidOperator for a bad name.
func (c *Client) Approve(ctx context.Context, id, by string) error {
	return c.review(ctx, id, by, "", true)
}

// Reject removes the held queued message id without sending it, on the
// word of the operator by, for reason (may be empty). With a History,
// each recipient still to be delivered is kept with Status "rejected",
// the reason as its Reply and a note of type "rejected" naming by. Each
// gets an EventRejected. Errors as for Approve; a reason over 1,000 bytes
// or with a control character other than a tab is ErrInvalidOperator too.
func (c *Client) Reject(ctx context.Context, id, by, reason string) error {
	return c.review(ctx, id, by, reason, false)
}

func (c *Client) review(ctx context.Context, id, by, reason string, approve bool) error {
	if c.Store == nil {
		return ErrNoStore
	}
	if err := checkOperator(by, maxOperator, "operator name"); err != nil {
		return err
	}
	if reason != "" {
		if err := checkOperator(reason, maxRejectReason, "rejection reason"); err != nil {
			return err
		}
	}
	q := c.Queue()
	job, err := q.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("relay: review of %q: %w", id, err)
	}
	if !job.Held {
		return fmt.Errorf("relay: review of %q: %w", id, ErrNotHeld)
	}
	now := c.clock()
	typ, status, reply := EventApproved, "queued", ""
	if !approve {
		typ, status, reply = EventRejected, "rejected", reason
	}
	if c.History != nil {
		o := originOf(job)
		rec := c.newRecord(job.Message, o, now)
		rec.From = job.From
		for _, r := range job.Recipients {
			if r.State.Final() {
				continue
			}
			rec.Recipients = append(rec.Recipients, queue.RecipientRecord{Addr: r.Addr, Status: status,
				Reply: reply, Time: now, Attempts: job.Attempts,
				Notes: []queue.Note{{Type: typ.String(), Time: now, Detail: by}}})
		}
		// The record comes first: a message never goes out (or away)
		// without the history saying who decided.
		if err := c.History.Keep(ctx, rec); err != nil {
			return fmt.Errorf("relay: review of %q: keeping the record: %w", id, err)
		}
	}
	msg := typ.String() + " by " + by
	if reason != "" {
		msg += ": " + reason
	}
	emit := func() {
		for _, r := range job.Recipients {
			if r.State.Final() {
				continue
			}
			c.emit(Event{Type: typ, Time: now, MessageID: id, Recipient: r.Addr, Domain: domainOf(r.Addr),
				Message: msg, Operator: by, Metadata: job.Metadata, List: job.Metadata[listKey], Campaign: job.Metadata[campaignKey]})
		}
	}
	if approve {
		// Before the release, as the record is: a worker may deliver the
		// message at once, and its events must come after the approval.
		emit()
		err = q.Release(ctx, id)
	} else {
		err = q.Cancel(ctx, id)
	}
	if err != nil {
		return fmt.Errorf("relay: review of %q: %w", id, err)
	}
	if !approve {
		emit()
	}
	return nil
}

// CheckOperator reports whether Approve and Reject would take name as an
// operator's: 1 to 200 bytes of UTF-8 without a control character but a
// tab; ErrInvalidOperator otherwise. A console checks the name its
// authorisation gives before it offers any action.
func CheckOperator(name string) error { return checkOperator(name, maxOperator, "operator name") }

// checkOperator validates an operator's name or a reason: not empty, at
// most max bytes, valid UTF-8, no control character but a tab.
func checkOperator(s string, max int, what string) error {
	if s == "" || len(s) > max || !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s %q: want 1 to %d bytes of UTF-8", ErrInvalidOperator, what, s, max)
	}
	for _, r := range s {
		if r != '\t' && unicode.IsControl(r) {
			return fmt.Errorf("%w: %s %q holds a control character", ErrInvalidOperator, what, s)
		}
	}
	return nil
}
