package relay

import (
	"context"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// Mailbox-full strikes. A full mailbox is often emptied in a day, so one
// "over quota" reply says little; a mailbox that stays full for days has
// usually been abandoned. Each mailbox-full failure (a 4.2.2 or 5.2.2
// reply, or a DSN saying so) is recorded as a strike: an entry in the
// suppression store under the reserved scope strikeScope, which no list
// can be named (list names may not start with "mxrelay."), so it never
// stops mail itself. Its Created is the first failure of the run and its
// Expires the last failure plus strikeGap, so that a mailbox that accepts
// mail for a while starts afresh. A failure that comes while a run has
// lasted MailboxFullDays or longer puts the address on the list for all
// mail, with reason HardBounced.
const (
	strikeScope = "mxrelay.mailbox-full"
	strikeGap   = 4 * 24 * time.Hour
)

// DefaultMailboxFullDays is how long a mailbox must stay full, failure
// after failure, before it is suppressed, when
// SuppressionOptions.MailboxFullDays is 0.
const DefaultMailboxFullDays = 3

// strike records a mailbox-full failure of the address with suppression
// key key, and returns the all-mail entry to add when the mailbox has
// been full for long enough.
func (c *Client) strike(ctx context.Context, key, source string, now time.Time) (queue.Suppression, bool) {
	days := c.Suppression.MailboxFullDays
	if days == 0 {
		days = DefaultMailboxFullDays
	}
	if days < 0 {
		return queue.Suppression{}, false
	}
	run := queue.Suppression{Address: key, Scope: strikeScope, Reason: queue.HardBounced,
		Source: "mailbox full: " + source, Created: now}
	hits, err := c.Suppressions.Suppressed(ctx, strikeScope, []string{key}, now)
	if err != nil {
		c.logger().Warn("suppression list: reading mailbox-full strikes failed", "err", err)
		return queue.Suppression{}, false
	}
	for _, h := range hits {
		if h.Scope == strikeScope {
			run.Created = h.Created
		}
	}
	if now.Sub(run.Created) >= time.Duration(days)*24*time.Hour {
		if _, err := c.Suppressions.Unsuppress(ctx, key, strikeScope); err != nil {
			c.logger().Warn("suppression list: clearing mailbox-full strikes failed", "err", err)
		}
		return queue.Suppression{Address: key, Reason: queue.HardBounced, Created: now,
			Source: "mailbox full since " + run.Created.UTC().Format(time.DateOnly) + ": " + source}, true
	}
	run.Expires = now.Add(strikeGap)
	if err := c.Suppressions.Suppress(ctx, run); err != nil {
		c.logger().Warn("suppression list: recording a mailbox-full strike failed", "err", err)
	}
	return queue.Suppression{}, false
}
