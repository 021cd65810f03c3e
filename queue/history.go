package queue

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// HistoryStore keeps the history of messages: each message's record, with
// every recipient's final outcome and what was heard of it later
// (bounces that came back, complaints, unsubscribes, opens, clicks), for
// as long as the application retains them. relay.Client writes it and
// removes what is older than its Retention. MemoryStore, boltstore and
// pgstore implement it beside the queue; queuetest.TestHistory checks
// them. Implementations must be safe for concurrent use, honour ctx, and
// keep what they return as durably as their queue does.
//
// Addresses in records are matched without regard to ASCII case (the
// store folds them for its index and for Forget), since a mailbox
// provider does not tell "Ann@" from "ann@". Times are kept to at least
// the microsecond.
type HistoryStore interface {
	// Keep adds records or merges them into the stored ones with the
	// same ID (MergeRecord): a non-zero field of rec replaces the stored
	// one (Metadata as a whole), each of rec's Recipients replaces the
	// stored entry for the same address (whose Notes are kept, rec's
	// appended), and the other stored entries stay. So a message whose
	// recipients finish at different times is kept recipient by
	// recipient. Every record needs an ID and every entry an Addr
	// (CheckRecord); any invalid record gives ErrInvalid and none is
	// stored.
	Keep(ctx context.Context, recs ...Record) error

	// Record returns the record with id, or ErrNotFound.
	Record(ctx context.Context, id string) (*Record, error)

	// Records lists records, newest first (in descending ID order, which
	// is the order of creation), at most f.Limit of them (0 → 100), with
	// the filters of f, after the cursor f.Before; and the cursor of the
	// next page: the ID of the last record listed, or "" when no record
	// is left (as Store.List does). With f.Recipient, each record holds
	// only that address's entry, and the lookup uses an index: it stays
	// fast with millions of records. A negative Limit gives ErrInvalid.
	Records(ctx context.Context, f RecordFilter) (recs []Record, next string, err error)

	// Note appends n to the entry for addr in record id: ErrNotFound
	// when there is no such record or the record has no such recipient,
	// ErrInvalid for a note that CheckRecord would refuse. It changes
	// nothing else: Updated stays as it was.
	Note(ctx context.Context, id, addr string, n Note) error

	// Expire removes the records last updated before cutoff, at most
	// limit of them (limit <= 0 gives ErrInvalid), oldest first, and
	// returns how many it removed; the caller calls again while that is
	// limit.
	Expire(ctx context.Context, cutoff time.Time, limit int) (int, error)

	// Forget erases addr from the history: its entry (with its notes) is
	// removed from every record, and a record left with no recipient is
	// removed. It returns the records as they were, each holding only
	// addr's entry, so that the caller can say what was erased.
	Forget(ctx context.Context, addr string) ([]Record, error)
}

// Record is the history of one message.
type Record struct {
	ID         string            `json:"id"`                   // the queue job id, or the id Send gave the message
	MessageID  string            `json:"message_id,omitempty"` // the Message-ID header, without angle brackets
	From       string            `json:"from,omitempty"`       // the envelope sender as given ("" for a bounce)
	Subject    string            `json:"subject,omitempty"`    // the Subject, decoded
	Campaign   string            `json:"campaign,omitempty"`   // the campaign the message counts towards
	List       string            `json:"list,omitempty"`       // the list (topic) of a list message
	Metadata   map[string]string `json:"metadata,omitempty"`   // the caller's correlation data
	Created    time.Time         `json:"created"`              // when the message was sent or queued
	Updated    time.Time         `json:"updated"`              // the last change; Expire goes by it
	Recipients []RecipientRecord `json:"recipients"`           // one per recipient, in the order they finished
}

// RecipientRecord is what became of one recipient of a message.
type RecipientRecord struct {
	Addr        string    `json:"addr"`                   // the envelope recipient, as sent
	Status      string    `json:"status"`                 // "delivered", "bounced", "suppressed" or "expired"
	Code        int       `json:"code,omitempty"`         // the SMTP reply code
	Enhanced    string    `json:"enhanced,omitempty"`     // the enhanced status code
	Category    string    `json:"category,omitempty"`     // the failure's category (package bounce)
	Reply       string    `json:"reply,omitempty"`        // the server's text or the local reason
	MX          string    `json:"mx,omitempty"`           // the host that answered
	Source      string    `json:"source,omitempty"`       // the local address the connection came from
	TLSVersion  string    `json:"tls_version,omitempty"`  // "TLS 1.3"; "" for plaintext
	TLSVerified bool      `json:"tls_verified,omitempty"` // the certificate was verified
	TLSPolicy   string    `json:"tls_policy,omitempty"`   // "opportunistic", "mta-sts", "dane", "required"
	Time        time.Time `json:"time"`                   // when the outcome was final
	Attempts    int       `json:"attempts,omitempty"`     // delivery attempts made for it
	Notes       []Note    `json:"notes,omitempty"`        // what was heard later, oldest first
}

// Note is something heard of a recipient after its outcome: a bounce or
// delay notice that came back, a complaint, an unsubscribe, an auto-reply,
// an open or a click.
type Note struct {
	Type      string    `json:"type"`                 // the event's name: "bounced", "complained", "opened", "clicked", ...
	Time      time.Time `json:"time"`                 // when it happened
	Detail    string    `json:"detail,omitempty"`     // the URL of a click, the status of a bounce, the feedback type of a complaint
	Machine   bool      `json:"machine,omitempty"`    // an open or click made by a machine (an image proxy, a link scanner)
	UserAgent string    `json:"user_agent,omitempty"` // the client's User-Agent, for opens and clicks
	Client    string    `json:"client,omitempty"`     // the client's address, as far as it is kept
}

// RecordFilter selects records for HistoryStore.Records.
type RecordFilter struct {
	// Before is the cursor: list records with IDs before it (the next
	// value a previous page returned); "" starts with the newest.
	Before string
	// Recipient, when set, lists only records with an entry for that
	// address (matched without regard to ASCII case), each holding only
	// that entry.
	Recipient string
	// Campaign, when set, lists only records of that campaign.
	Campaign string
	// Since and Until, when set, list only records created at or after
	// Since and before Until.
	Since, Until time.Time
	// Limit is the page size; 0 → DefaultRecordLimit.
	Limit int
}

// DefaultRecordLimit is the page size of HistoryStore.Records when
// RecordFilter.Limit is 0.
const DefaultRecordLimit = 100

// Match reports whether r passes the filters of f other than Recipient,
// the cursor and the limit.
func (f *RecordFilter) Match(r *Record) bool {
	switch {
	case f.Campaign != "" && r.Campaign != f.Campaign:
		return false
	case !f.Since.IsZero() && r.Created.Before(f.Since):
		return false
	case !f.Until.IsZero() && !r.Created.Before(f.Until):
		return false
	}
	return true
}

// FoldAddr is how history stores compare addresses: ASCII lower case.
// Other bytes are kept as they are, so that "ÄB" and "Äb" fold alike.
func FoldAddr(addr string) string {
	for i := 0; i < len(addr); i++ {
		if c := addr[i]; c >= 'A' && c <= 'Z' {
			b := []byte(addr)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return addr
}

// CheckRecord validates a record as Keep must: an ID, an Addr on every
// recipient entry, and strings a store can hold (valid UTF-8, no NUL byte).
func CheckRecord(r *Record) error {
	if r.ID == "" {
		return fmt.Errorf("%w: history record without an ID", ErrInvalid)
	}
	bad := func(s string) bool { return strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) }
	if bad(r.ID) || bad(r.MessageID) || bad(r.From) || bad(r.Subject) || bad(r.Campaign) || bad(r.List) {
		return fmt.Errorf("%w: history record %q holds a NUL byte or invalid UTF-8", ErrInvalid, r.ID)
	}
	for k, v := range r.Metadata {
		if bad(k) || bad(v) {
			return fmt.Errorf("%w: history record %q: metadata holds a NUL byte or invalid UTF-8", ErrInvalid, r.ID)
		}
	}
	for i := range r.Recipients {
		o := &r.Recipients[i]
		if o.Addr == "" {
			return fmt.Errorf("%w: history record %q: a recipient without an address", ErrInvalid, r.ID)
		}
		if bad(o.Addr) || bad(o.Status) || bad(o.Reply) || bad(o.MX) || bad(o.Category) ||
			bad(o.Enhanced) || bad(o.Source) || bad(o.TLSVersion) || bad(o.TLSPolicy) {
			return fmt.Errorf("%w: history record %q: the entry for %q holds a NUL byte or invalid UTF-8", ErrInvalid, r.ID, o.Addr)
		}
		for _, n := range o.Notes {
			if bad(n.Type) || bad(n.Detail) || bad(n.UserAgent) || bad(n.Client) {
				return fmt.Errorf("%w: history record %q: a note for %q holds a NUL byte or invalid UTF-8", ErrInvalid, r.ID, o.Addr)
			}
		}
	}
	return nil
}

// MergeRecord merges rec into old as HistoryStore.Keep does and returns
// the result; old may be nil, which merges rec into an empty record (so
// that two entries of rec for one address become one either way). Stores
// may use it to implement Keep. The result may share Metadata and Notes
// with old and rec.
func MergeRecord(old *Record, rec *Record) Record {
	if old == nil {
		old = &Record{ID: rec.ID}
	}
	out := *old
	out.Recipients = append([]RecipientRecord(nil), old.Recipients...)
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&out.MessageID, rec.MessageID)
	set(&out.From, rec.From)
	set(&out.Subject, rec.Subject)
	set(&out.Campaign, rec.Campaign)
	set(&out.List, rec.List)
	if rec.Metadata != nil {
		out.Metadata = rec.Metadata
	}
	if !rec.Created.IsZero() {
		out.Created = rec.Created
	}
	if !rec.Updated.IsZero() {
		out.Updated = rec.Updated
	}
	for _, o := range rec.Recipients {
		found := false
		for i := range out.Recipients {
			if FoldAddr(out.Recipients[i].Addr) == FoldAddr(o.Addr) {
				o.Notes = append(append([]Note(nil), out.Recipients[i].Notes...), o.Notes...)
				out.Recipients[i] = o
				found = true
				break
			}
		}
		if !found {
			out.Recipients = append(out.Recipients, o)
		}
	}
	return out
}
