package relay

import (
	"errors"
	"sort"

	"github.com/mxrelay/mxrelay/bounce"
	"github.com/mxrelay/mxrelay/relay/internal/smtpclient"
)

// Result reports what became of every recipient of one message. Send,
// SendRaw and Deliver return one with an entry for every envelope
// recipient, in order, whenever there are recipients; a nil Result means
// nothing was attempted because the message or the Client's configuration
// is invalid (the error says which).
type Result struct {
	// Recipients holds one outcome per envelope recipient, in the order
	// of the envelope (To, Cc, Bcc for Send).
	Recipients []RecipientResult `json:"recipients"`
	// QueueID is the id of the job holding the deferred recipients, when
	// the Client has a Store and some were deferred.
	QueueID string `json:"queue_id,omitempty"`
}

// RecipientResult is the outcome for one envelope recipient.
type RecipientResult struct {
	Recipient string  `json:"recipient"`          // the envelope recipient, as sent
	Status    Status  `json:"status"`             // Delivered, Deferred, Bounced or Suppressed
	Code      int     `json:"code,omitempty"`     // SMTP reply code, 0 if none
	Enhanced  string  `json:"enhanced,omitempty"` // "5.1.1" where the server sent one
	Message   string  `json:"message,omitempty"`  // server text or local reason
	MX        string  `json:"mx,omitempty"`       // host that answered
	Source    string  `json:"source,omitempty"`   // local address the connection came from
	TLS       TLSInfo `json:"tls"`                // how the session that carried it was protected
	// Category classifies a failure (Deferred or Bounced) from its codes
	// and text: invalid recipient, mailbox full, policy block and so on
	// (package bounce). Zero (bounce.Other) for a delivery.
	Category bounce.Category `json:"category,omitzero"`

	cause error // why it was not delivered: the original error chain
}

// Failure is the result for a recipient that was not delivered, for a
// Transport written outside this package: status (Deferred or Bounced),
// the codes and message taken from err (an *Error, or any error), and err
// kept for Err and errors.Is.
func Failure(rcpt string, status Status, err error) RecipientResult {
	r := RecipientResult{Recipient: rcpt}
	r.fail(status, err)
	return r
}

// fail records that the recipient was not delivered, and why: status,
// codes, message and host come from err (an *Error, an *smtpclient.Error
// or any other error), and err itself is kept for Err. Every outcome that
// is not a delivery goes through here.
func (r *RecipientResult) fail(status Status, err error) {
	r.Status, r.cause = status, err
	r.Code, r.Enhanced, r.Message, r.Category = 0, "", "", bounce.Other
	if err == nil {
		return
	}

	var re *Error
	var se *smtpclient.Error
	switch {
	case errors.As(err, &re):
		r.Code, r.Enhanced, r.Message = re.Code, re.Enhanced, re.Message
		if re.Message == "" && re.Err != nil {
			r.Message = re.Err.Error()
		}
		if h := hostOf(err); h != "" {
			r.MX = h
		}
	case errors.As(err, &se):
		r.Code, r.Enhanced, r.Message = se.Code, se.Enhanced, se.Message
		if r.Message == "" && se.Err != nil {
			r.Message = se.Err.Error()
		}
	default:
		r.Message = err.Error()
	}
}

// TLSInfo describes the transport security of the session that carried (or
// failed to carry) a recipient.
type TLSInfo struct {
	Version  string `json:"version,omitempty"` // "TLS 1.3"; empty: plaintext
	Verified bool   `json:"verified"`          // the certificate was verified (PKIX or DANE)
	Policy   string `json:"policy,omitempty"`  // "opportunistic", "mta-sts", "dane" or "required"
	// Fallback is set when opportunistic TLS failed and the message went
	// in plaintext on a new connection, as Postfix does: "after handshake
	// error: …".
	Fallback string `json:"fallback,omitempty"`
}

// Err returns nil when the recipient was delivered, and otherwise an *Error
// describing why not, which wraps the original cause: errors.Is finds
// ErrTLSRequired, ErrForbiddenAddress, context.Canceled and the other
// sentinels through it. (A result decoded from JSON has no cause.)
func (r *RecipientResult) Err() error {
	if r.Status == Delivered {
		return nil
	}
	return &Error{
		Recipient: r.Recipient,
		Host:      r.MX,
		Code:      r.Code,
		Enhanced:  r.Enhanced,
		Message:   r.Message,
		Permanent: r.Status == Bounced || r.Status == Suppressed,
		Err:       r.cause,
	}
}

// Count returns how many recipients have status s.
func (r *Result) Count(s Status) int {
	n := 0
	for i := range r.Recipients {
		if r.Recipients[i].Status == s {
			n++
		}
	}
	return n
}

// Err returns nil when every recipient was delivered or queued for retry;
// otherwise one error whose Unwrap() []error holds an *Error per recipient
// that was not, sorted by recipient.
func (r *Result) Err() error {
	var errs []error
	for i := range r.Recipients {
		if r.QueueID != "" && r.Recipients[i].Status == Deferred {
			continue
		}
		if err := r.Recipients[i].Err(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool {
		return errs[i].(*Error).Recipient < errs[j].(*Error).Recipient
	})
	return errors.Join(errs...)
}
