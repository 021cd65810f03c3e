package relay

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/mxrelay/mxrelay/bounce"
	"github.com/mxrelay/mxrelay/report"
)

// EventType names a state change of a message for one recipient.
type EventType int

// Event types.
const (
	EventQueued       EventType = iota + 1 // stored in the queue (Enqueue, or Send's deferrals)
	EventAttempt                           // a delivery attempt begins
	EventDelivered                         // the receiving server accepted it (2xx)
	EventDeferred                          // a temporary failure; NextAttempt says when the queue retries
	EventBounced                           // a permanent failure (5xx, null MX, ...)
	EventExpired                           // the queue gave up: the message outlived its lifetime
	EventSuppressed                        // not sent: the recipient is on the suppression list
	EventUnsubscribed                      // the recipient unsubscribed (List, How say from what and how)
	EventComplained                        // the recipient reported the message as spam (an ARF report; Feedback)
	EventDelayed                           // a later MTA reports it is still trying (a delay DSN; Async, DSN)
	EventAutoReplied                       // an auto-reply came back (vacation, out of office); never a bounce
	EventUnmatched                         // mail came back that is none of the above (a human reply, say); Inbound names it
	EventOpened                            // the tracking image was fetched (Machine says whether by a person)
	EventClicked                           // a tracked link was followed (URL; Machine)
	EventApproved                          // an operator approved a held message (Client.Approve; Operator)
	EventRejected                          // an operator rejected a held message, which was removed (Client.Reject; Operator)
	EventBackoff                           // a back-off rule slowed or suspended an MX host, or bounced a recipient (Backoff; MX; the reply)
	EventAlert                             // an alert fired or resolved (Alert; see AlertOptions)
)

var eventNames = [...]string{"", "queued", "attempt", "delivered", "deferred", "bounced", "expired", "suppressed", "unsubscribed",
	"complained", "delayed", "auto_replied", "unmatched", "opened", "clicked", "approved", "rejected", "backoff", "alert"}

// String returns the event type's name, such as "delivered".
func (t EventType) String() string {
	if t > 0 && int(t) < len(eventNames) {
		return eventNames[t]
	}
	return "unknown"
}

// MarshalText encodes the type as its name.
func (t EventType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Event is one state change, as delivered to Client.Events.
type Event struct {
	Type        EventType         `json:"type"`                  // what happened
	Time        time.Time         `json:"time"`                  // when it happened
	MessageID   string            `json:"message_id,omitempty"`  // queue job id; "" for a Send not queued
	Recipient   string            `json:"recipient,omitempty"`   // "" for EventAttempt
	Domain      string            `json:"domain,omitempty"`      // the recipient's domain
	MX          string            `json:"mx,omitempty"`          // the host that answered
	Source      string            `json:"source,omitempty"`      // the local address used
	Code        int               `json:"code,omitempty"`        // SMTP reply code, as in RecipientResult
	Enhanced    string            `json:"enhanced,omitempty"`    // enhanced status code, as in RecipientResult
	Message     string            `json:"message,omitempty"`     // server text or local reason
	TLS         TLSInfo           `json:"tls"`                   // the session's TLS, where there was one
	NextAttempt time.Time         `json:"next_attempt,omitzero"` // EventDeferred of a queued message
	Metadata    map[string]string `json:"metadata,omitempty"`    // the caller's, from EnqueueOptions or SendOptions
	Latency     time.Duration     `json:"latency,omitempty"`     // EventDelivered: since the message was sent or queued
	// List is the list (topic) of the message, SendOptions.List; for
	// EventUnsubscribed the list left, "" for all mail.
	List string `json:"list,omitempty"`
	// Campaign is the message's campaign, SendOptions.Campaign.
	Campaign string `json:"campaign,omitempty"`
	// URL is the target of the link followed, for EventClicked.
	URL string `json:"url,omitempty"`
	// UserAgent and ClientAddr describe who fetched the image or followed
	// the link (EventOpened, EventClicked); ClientAddr is truncated as
	// TrackingOptions says.
	UserAgent  string `json:"user_agent,omitempty"`
	ClientAddr string `json:"client_addr,omitempty"`
	// Machine marks an open or a click made by a machine rather than a
	// person: an image proxy fetching on delivery, a link scanner (see
	// package track); MachineReason says which.
	Machine       bool   `json:"machine,omitempty"`
	MachineReason string `json:"machine_reason,omitempty"`
	// How says, for EventUnsubscribed, how: "one-click" (RFC 8058 POST),
	// "page" (the confirmation or preferences page), "mail" (the mailto:
	// address) or "api".
	How string `json:"how,omitempty"`
	// Category classifies a failure (EventDeferred, EventBounced,
	// EventExpired, EventDelayed): invalid recipient, mailbox full, policy
	// block and so on (see package bounce).
	Category bounce.Category `json:"category,omitzero"`
	// Async marks an event from mail that came back later
	// (ProcessInbound, ServeInbound) rather than from an SMTP reply: an
	// EventBounced from a DSN or a text bounce, EventDelayed,
	// EventComplained, EventAutoReplied, EventUnmatched, and an
	// EventUnsubscribed by mail.
	Async bool `json:"async,omitempty"`
	// DSN is the recipient's part of a delivery status notification, for
	// an asynchronous EventBounced or EventDelayed: Action, Status,
	// Diagnostic-Code, Remote-MTA, Final- and Original-Recipient.
	DSN *report.Recipient `json:"dsn,omitempty"`
	// Feedback is the complaint report (RFC 5965) of EventComplained.
	Feedback *report.FeedbackReport `json:"feedback,omitempty"`
	// Inbound identifies the message that came back, for Client.Inbound
	// (kept for EventUnmatched) and the logs.
	Inbound string `json:"inbound,omitempty"`
	// Operator is who approved or rejected the message (EventApproved,
	// EventRejected).
	Operator string `json:"operator,omitempty"`
	// Backoff is the back-off rule's action, for EventBackoff: the rule,
	// the action, until when.
	Backoff *Backoff `json:"backoff,omitempty"`
	// Alert is the alert that fired or resolved, for EventAlert.
	Alert *Alert `json:"alert,omitempty"`

	cause  error // a deferral's or bounce's original error, for Err
	unique bool  // EventOpened, EventClicked: the first by a person (or by a machine) for this recipient of this message
	first  bool  // the event that counts a recipient as sent (Stats' Sent)
}

// Err returns nil for an event that reports no failure (queued, attempt,
// delivered) and otherwise an *Error for the recipient, which wraps the
// original cause where the attempt that failed is known (errors.Is finds
// ErrTLSRequired, ErrForbiddenAddress and the other sentinels through it).
func (e Event) Err() error {
	switch e.Type {
	case EventDeferred, EventBounced, EventExpired, EventSuppressed, EventDelayed:
	default:
		return nil
	}
	return &Error{Recipient: e.Recipient, Host: e.MX, Code: e.Code, Enhanced: e.Enhanced,
		Message: e.Message, Permanent: e.Type != EventDeferred && e.Type != EventDelayed, Err: e.cause}
}

// DefaultEventBuffer is the number of events waiting for Client.Events
// beyond which new ones are dropped, when Client.EventBuffer is zero.
const DefaultEventBuffer = 4096

// eventSink hands events to the hook from a goroutine of its own, through
// a bounded buffer, so that a slow hook never holds up delivery. The
// goroutine runs only while there are events to hand over.
type eventSink struct {
	mu      sync.Mutex
	ch      chan Event
	running bool
	dropped atomic.Int64
}

// emit records e in the statistics and passes it to the hook, if any.
func (c *Client) emit(e Event) {
	c.stats.record(&e)
	c.recent.add(&e)
	c.observeAlert(&e)
	c.feedWebhooks(&e)
	if c.Events == nil {
		return
	}
	s := &c.events
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		n := c.EventBuffer
		if n <= 0 {
			n = DefaultEventBuffer
		}
		s.ch = make(chan Event, n)
	}
	select {
	case s.ch <- e:
	default:
		s.dropped.Add(1)
		return
	}
	if !s.running {
		s.running = true
		go c.dispatch()
	}
}

func (c *Client) dispatch() {
	s := &c.events
	for {
		s.mu.Lock()
		select {
		case e := <-s.ch:
			s.mu.Unlock()
			c.Events(e)
		default:
			s.running = false
			s.mu.Unlock()
			return
		}
	}
}

// resultEvent turns one recipient's result into an event.
func resultEvent(r *RecipientResult, msgID string, meta map[string]string, start time.Time) Event {
	e := Event{
		Time: time.Now(), MessageID: msgID, Recipient: r.Recipient, Domain: domainOf(r.Recipient),
		MX: r.MX, Source: r.Source, Code: r.Code, Enhanced: r.Enhanced, Message: r.Message,
		TLS: r.TLS, Metadata: meta, List: meta[listKey], Campaign: meta[campaignKey], Category: r.Category, cause: r.cause,
	}
	switch r.Status {
	case Delivered:
		e.Type = EventDelivered
		if !start.IsZero() {
			e.Latency = e.Time.Sub(start)
		}
	case Bounced:
		e.Type = EventBounced
	case Suppressed:
		e.Type = EventSuppressed
	default:
		e.Type = EventDeferred
	}
	return e
}

func domainOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == '@' {
			return addr[i+1:]
		}
	}
	return ""
}
