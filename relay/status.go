package relay

import "fmt"

// Status is what became of one recipient.
type Status int

const (
	// Deferred: a temporary failure (a 4xx reply, a timeout, a connection
	// fault, a DNS failure). The delivery may succeed later; with a Store the
	// recipient is queued and retried.
	Deferred Status = iota
	// Delivered: the receiving server accepted the message for this
	// recipient with a 2xx reply to the end of data.
	Delivered
	// Bounced: a permanent failure (a 5xx reply, a null MX, a domain that
	// does not exist). Retrying will not help.
	Bounced
	// Suppressed: the recipient is on the suppression list (it
	// unsubscribed, complained or bounced hard before), so nothing was
	// sent to it and no connection made for it. Final, like Bounced.
	Suppressed
)

var statusNames = [...]string{Deferred: "deferred", Delivered: "delivered", Bounced: "bounced", Suppressed: "suppressed"}

// String returns "delivered", "deferred", "bounced" or "suppressed".
func (s Status) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// MarshalText encodes the status as its name, so that results encode to
// JSON as "delivered" rather than a number.
func (s Status) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(statusNames) {
		return nil, fmt.Errorf("relay: unknown status %d", int(s))
	}
	return []byte(statusNames[s]), nil
}

// UnmarshalText decodes a status name written by MarshalText.
func (s *Status) UnmarshalText(b []byte) error {
	for i, n := range statusNames {
		if n == string(b) {
			*s = Status(i)
			return nil
		}
	}
	return fmt.Errorf("relay: unknown status %q", b)
}
