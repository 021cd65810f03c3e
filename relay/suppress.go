package relay

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/bounce"
	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/queue"
)

// ErrSuppressed: the recipient is on the suppression list; nothing was
// sent to it. The *Error for such a recipient wraps it.
var ErrSuppressed = errors.New("relay: recipient suppressed")

// SuppressionOptions tune how Client.Suppressions matches and keeps
// addresses.
type SuppressionOptions struct {
	// CaseSensitiveLocalParts matches local parts as written. By default
	// the whole address is matched without regard to case: RFC 5321 lets
	// a server tell "Ann@" from "ann@", but almost none does, and an
	// opt-out must not be dodged by a capital letter. The domain is always
	// matched without case, in A-label form (IDN domains converted).
	CaseSensitiveLocalParts bool
	// HashKey, when set, stores each address as a keyed hash
	// (HMAC-SHA-256, truncated to 128 bits) instead of the address: the
	// list still stops mail to every address on it, and erasing an address
	// elsewhere keeps its opt-out, but the list can no longer be read back
	// as addresses (listing shows hashes, and an operator cannot search it
	// by part of an address). Keep the key for as long as the list: a new
	// key makes every entry unreachable.
	HashKey []byte
	// MailboxFullDays is how many days a mailbox must go on refusing mail
	// as full (4.2.2, 5.2.2, or a DSN saying so) before it is suppressed
	// for all mail, as an abandoned mailbox; a failure-free gap of four
	// days starts the count again. 0 → DefaultMailboxFullDays; negative →
	// never.
	MailboxFullDays int
}

// hashPrefix marks a hashed entry's Address.
const hashPrefix = "h1:"

// suppressionKey is the Address an entry for addr has in the store.
func (c *Client) suppressionKey(addr string) (string, error) {
	n, err := mime.NormalizeAddress(addr)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrInvalidEnvelope, addr, err)
	}
	if !c.Suppression.CaseSensitiveLocalParts {
		n = strings.ToLower(n)
	}
	if k := c.Suppression.HashKey; len(k) > 0 {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(n))
		return hashPrefix + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16]), nil
	}
	return n, nil
}

// Suppress puts addr on the suppression list for list ("" → all mail),
// with reason (queue.Manual for an operator's entry) and source (what
// caused it, for the record; "" → "api"). It needs Client.Suppressions.
// An entry with reason queue.Unsubscribed emits EventUnsubscribed with How
// "api", as the unsubscribe links do with theirs.
func (c *Client) Suppress(ctx context.Context, addr, list string, reason queue.SuppressReason, source string) error {
	if c.Suppressions == nil {
		return ErrNoSuppressions
	}
	if err := checkList(list); err != nil {
		return err
	}
	key, err := c.suppressionKey(addr)
	if err != nil {
		return err
	}
	if source == "" {
		source = "api"
	}
	if err := c.Suppressions.Suppress(ctx, queue.Suppression{Address: key, Scope: list, Reason: reason, Source: source, Created: time.Now()}); err != nil {
		return err
	}
	if reason == queue.Unsubscribed {
		c.emit(Event{Type: EventUnsubscribed, Time: time.Now(), Recipient: addr, Domain: domainOf(addr), List: list, How: "api"})
	}
	return nil
}

// Unsuppress takes addr off the suppression list for list ("" → the
// all-mail entry), reporting whether it was on it.
func (c *Client) Unsuppress(ctx context.Context, addr, list string) (bool, error) {
	if c.Suppressions == nil {
		return false, ErrNoSuppressions
	}
	key, err := c.suppressionKey(addr)
	if err != nil {
		return false, err
	}
	return c.Suppressions.Unsuppress(ctx, key, list)
}

// ErrNoSuppressions: a suppression call on a Client without Suppressions.
var ErrNoSuppressions = errors.New("relay: no suppression list (Client.Suppressions is nil)")

// suppressed looks up every recipient of one attempt in one call and
// marks those on the list in res. A failed lookup defers every recipient:
// mail is never sent to an address that might have opted out.
func (c *Client) suppressed(ctx context.Context, list string, to []string, res *Result) {
	if c.Suppressions == nil {
		return
	}
	keys := make([]string, len(to))
	var ask []string
	for i, r := range to {
		k, err := c.suppressionKey(r)
		if err != nil {
			continue // bounced by splitByDomain
		}
		keys[i] = k
		ask = append(ask, k)
	}
	if len(ask) == 0 {
		return
	}
	hits, err := c.Suppressions.Suppressed(ctx, list, ask, time.Now())
	if err != nil {
		for i, r := range to {
			res.Recipients[i] = RecipientResult{Recipient: r}
			res.Recipients[i].fail(Deferred, &Error{Recipient: r, Enhanced: "4.3.0",
				Message: "suppression list unavailable: " + err.Error(), Err: err})
		}
		return
	}
	if len(hits) == 0 {
		return
	}
	byKey := make(map[string]*queue.Suppression, len(hits))
	for i := range hits {
		h := &hits[i]
		// The all-mail entry wins over the list's: it says more.
		if old, ok := byKey[h.Address]; !ok || (old.Scope != "" && h.Scope == "") {
			byKey[h.Address] = h
		}
	}
	for i, r := range to {
		h, ok := byKey[keys[i]]
		if !ok || keys[i] == "" {
			continue
		}
		scope := "all mail"
		if h.Scope != "" {
			scope = "list " + h.Scope
		}
		res.Recipients[i] = RecipientResult{Recipient: r}
		res.Recipients[i].fail(Suppressed, &Error{Recipient: r, Enhanced: "5.7.1", Permanent: true,
			Message: fmt.Sprintf("suppressed for %s: %s (%s)", scope, h.Reason, h.Created.UTC().Format(time.DateOnly)),
			Err:     ErrSuppressed})
	}
}

// feedBounces feeds the failures of one attempt to the suppression list
// (see feed).
func (c *Client) feedBounces(ctx context.Context, res *Result, msgID string) {
	if c.Suppressions == nil {
		return
	}
	src := msgID
	if src == "" {
		src = "bounce"
	}
	var fails []failure
	for i := range res.Recipients {
		r := &res.Recipients[i]
		if r.Status != Bounced && r.Status != Deferred {
			continue
		}
		if r.Category != bounce.InvalidRecipient && r.Category != bounce.UnknownDomain && r.Category != bounce.MailboxFull {
			continue
		}
		fails = append(fails, failure{addr: r.Recipient, class: bounce.Classify(r.Code, r.Enhanced, r.Message),
			source: src + ": " + r.reply()})
	}
	c.feed(ctx, fails)
}

// failure is one recipient's failure, for feed.
type failure struct {
	addr   string
	class  bounce.Class
	source string // the message and the reply, for the entry's Source
}

// feed puts on the suppression list, for all mail, the addresses whose
// failure says they do not exist (bounce.Class.Suppress: invalid
// recipient, unknown domain), and counts mailbox-full failures towards a
// suppression after MailboxFullDays (see strike). Policy, reputation and
// content refusals are about the sender, not the address, and are never
// fed. Synchronous replies and bounces that come back later both go
// through here.
func (c *Client) feed(ctx context.Context, fails []failure) {
	if c.Suppressions == nil || len(fails) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx)
	var entries []queue.Suppression
	now := c.clock()
	for _, f := range fails {
		key, err := c.suppressionKey(f.addr)
		if err != nil {
			continue
		}
		switch {
		case f.class.Suppress:
			entries = append(entries, queue.Suppression{Address: key, Reason: queue.HardBounced, Source: f.source, Created: now})
		case f.class.Category == bounce.MailboxFull:
			if e, ok := c.strike(ctx, key, f.source, now); ok {
				entries = append(entries, e)
			}
		}
	}
	if len(entries) == 0 {
		return
	}
	if err := c.Suppressions.Suppress(ctx, entries...); err != nil {
		c.logger().Warn("suppression list: recording bounces failed", "err", err, "count", len(entries))
	}
}

// logger is Logger, or a silent one.
func (c *Client) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return discardLogger
}
