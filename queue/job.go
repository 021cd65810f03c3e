package queue

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// RecipientState is where one recipient of a job stands.
type RecipientState uint8

// Recipient states. Pending and Deferred recipients are "remaining": the
// next attempt is for them. Delivered and Bounced are final.
const (
	Pending   RecipientState = iota // not tried yet
	Delivered                       // accepted by the receiving server (2xx)
	Deferred                        // tried; a temporary failure, will be retried
	Bounced                         // failed permanently (5xx, or the job expired)
)

var recipientStateNames = [...]string{"pending", "delivered", "deferred", "bounced"}

// String returns "pending", "delivered", "deferred" or "bounced".
func (s RecipientState) String() string {
	if int(s) < len(recipientStateNames) {
		return recipientStateNames[s]
	}
	return fmt.Sprintf("RecipientState(%d)", uint8(s))
}

// Final reports whether the recipient needs no further attempt.
func (s RecipientState) Final() bool { return s == Delivered || s == Bounced }

// Recipient is one envelope recipient of a job with its own state.
type Recipient struct {
	Addr  string         // envelope address (RFC 5321 forward-path, without <>)
	State RecipientState // where it stands
	Reply string         // last server reply or local reason; empty before the first attempt
}

// Lease is a job's claim by one worker. The store sets it in Claim;
// Finish must be given the same Token, which fences out stale workers.
type Lease struct {
	Owner string    // who claimed the job (Queue.Owner)
	Token string    // unique for each claim; set by the store
	Until time.Time // the job may be claimed again after this instant
}

// Job is one message for its remaining recipients.
//
// From, Recipients' addresses, Message, Created, RoutingKey and Metadata are
// fixed at Enqueue. Recipients' states, Attempts, NextAttempt and LastError
// change with each attempt; Held with Hold and Release; Lease with Claim.
type Job struct {
	ID          string            // unique, assigned by Enqueue; sorts by creation time
	From        string            // envelope sender; "" is the null sender <>
	Recipients  []Recipient       // in the order given at Enqueue
	Message     []byte            // the whole message (header and body), as sent
	Created     time.Time         // when the job was enqueued
	Attempts    int               // delivery attempts made so far
	NextAttempt time.Time         // the job is due at this instant
	LastError   string            // the reason of the last temporary failure
	Held        bool              // a held job is never claimed (review before sending)
	RoutingKey  string            // groups jobs for the per-key limit: the recipient domain
	Metadata    map[string]string // the caller's correlation data, returned in events
	Lease       Lease             // set while a worker holds the job
}

// NewJob returns a job for msg from the envelope sender from to the
// recipients to, ready for Queue.Enqueue.
func NewJob(from string, to []string, msg []byte) *Job {
	j := &Job{From: from, Message: msg, Recipients: make([]Recipient, len(to))}
	for i, a := range to {
		j.Recipients[i].Addr = a
	}
	return j
}

// Remaining returns the addresses still to be delivered (Pending or
// Deferred), in order.
func (j *Job) Remaining() []string {
	var out []string
	for _, r := range j.Recipients {
		if !r.State.Final() {
			out = append(out, r.Addr)
		}
	}
	return out
}

// Done reports whether every recipient is final (Delivered or Bounced).
func (j *Job) Done() bool {
	for _, r := range j.Recipients {
		if !r.State.Final() {
			return false
		}
	}
	return true
}

// Clone returns a deep copy of j. Stores hand out clones so that callers
// and the store never share slices or maps.
func (j *Job) Clone() *Job {
	if j == nil {
		return nil
	}
	c := *j
	c.Recipients = append([]Recipient(nil), j.Recipients...)
	if j.Message != nil {
		c.Message = append([]byte(nil), j.Message...)
	}
	if j.Metadata != nil {
		c.Metadata = make(map[string]string, len(j.Metadata))
		for k, v := range j.Metadata {
			c.Metadata[k] = v
		}
	}
	return &c
}

// Validate checks what Enqueue requires of a job: a message, at least one
// recipient, no recipient twice (domains compared without case), each
// address of the form local@domain (the sender may be "", the null path),
// with no CR, LF or NUL, and no <, > or space outside a quoted local
// part. Errors
// match ErrNoMessage, ErrNoRecipients, ErrDuplicateRecipient or ErrInvalid
// with errors.Is.
func (j *Job) Validate() error {
	if j == nil || len(j.Message) == 0 {
		return ErrNoMessage
	}
	if len(j.Recipients) == 0 {
		return ErrNoRecipients
	}
	if j.Attempts < 0 {
		return fmt.Errorf("%w: negative Attempts", ErrInvalid)
	}
	if badAddr(j.From) || (j.From != "" && DomainOf(j.From) == "") {
		return fmt.Errorf("%w: sender %q", ErrInvalid, j.From)
	}
	seen := make(map[string]struct{}, len(j.Recipients))
	for _, r := range j.Recipients {
		if badAddr(r.Addr) || DomainOf(r.Addr) == "" {
			return fmt.Errorf("%w: recipient %q", ErrInvalid, r.Addr)
		}
		k := normalizeAddr(r.Addr)
		if _, dup := seen[k]; dup {
			return fmt.Errorf("%w: %q", ErrDuplicateRecipient, r.Addr)
		}
		seen[k] = struct{}{}
	}
	return nil
}

// badAddr reports an address Validate refuses. A quoted local part (RFC
// 5321 §4.1.2, `"john smith"@example.com`) may hold spaces and angle
// brackets; the relay checks its full syntax before sending.
func badAddr(a string) bool {
	if strings.ContainsAny(a, "\r\n\x00") {
		return true
	}
	if strings.HasPrefix(a, `"`) {
		for i := 1; i < len(a); i++ {
			if a[i] == '\\' {
				i++
			} else if a[i] == '"' {
				a = a[i+1:]
				break
			}
		}
	}
	return strings.ContainsAny(a, "<> ")
}

// normalizeAddr lower-cases the domain: RFC 5321 §2.4 makes domains case
// insensitive, while the local part is the receiving server's business.
func normalizeAddr(a string) string {
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		return a[:i] + strings.ToLower(a[i:])
	}
	return a
}

// DomainOf returns the lower-cased domain of addr, the default routing key.
func DomainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[i+1:])
	}
	return ""
}

// NewID returns a new job id: 32 hex digits, the first 16 the creation time
// in nanoseconds, so ids sort by creation time; the rest random.
func NewID(now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	_, _ = rand.Read(b[8:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// IDTime returns the instant NewID wrote into id, and false for an id
// NewID did not make (not 32 lower-case hex digits). Stores use it to
// bound a walk over ids by time.
func IDTime(id string) (time.Time, bool) {
	if len(id) != 32 {
		return time.Time{}, false
	}
	var n uint64
	for i := range 16 {
		c := id[i]
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | uint64(c-'a'+10)
		default:
			return time.Time{}, false
		}
	}
	for i := 16; i < 32; i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return time.Time{}, false
		}
	}
	return time.Unix(0, int64(n)), true
}
