package relay

import (
	"slices"
	"sync"
	"time"
)

// KeptMessage is a message that came back and matched nothing (a reply
// from a person, say), kept in memory for a look: Client.Unmatched.
type KeptMessage struct {
	ID       string      `json:"id"`       // as in InboundResult.ID and Event.Inbound
	Received time.Time   `json:"received"` // when it was processed
	Kind     InboundKind `json:"kind"`     // InboundUnmatched, or a report that matched no message
	To       string      `json:"to"`       // the address it came to, "" when not known
	From     string      `json:"from"`     // its From address
	Subject  string      `json:"subject"`  // its subject
	Data     []byte      `json:"-"`        // the message as received
}

// DefaultKeepUnmatched is how many unmatched messages Client.Unmatched
// keeps when InboundOptions.KeepUnmatched is 0.
const DefaultKeepUnmatched = 100

// keptStore is a ring of the latest unmatched messages.
type keptStore struct {
	mu   sync.Mutex
	msgs []KeptMessage // oldest first
}

// keep adds m, dropping the oldest beyond the bound.
func (c *Client) keep(m KeptMessage) {
	n := c.Inbound.KeepUnmatched
	if n == 0 {
		n = DefaultKeepUnmatched
	}
	if n < 0 {
		return
	}
	m.Data = slices.Clone(m.Data)
	s := &c.kept
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) >= n {
		s.msgs = slices.Delete(s.msgs, 0, len(s.msgs)-n+1)
	}
	s.msgs = append(s.msgs, m)
}

// Unmatched returns the unmatched messages that came back (newest first),
// as ProcessInbound and ServeInbound kept them: the latest
// InboundOptions.KeepUnmatched, in memory only, so that an operator can
// look at a reply from a person or a report of a shape not understood.
func (c *Client) Unmatched() []KeptMessage {
	s := &c.kept
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.msgs)
	slices.Reverse(out)
	return out
}
