package queue

import (
	"context"
	"time"
)

// Deliverer makes one delivery attempt of a job. relay.Client implements it.
type Deliverer interface {
	// Deliver tries job.Message from job.From to job.Remaining() and
	// reports an Outcome for each of those recipients. It must return
	// when ctx ends (the context ends before the job's lease does). A
	// recipient without an outcome counts as Deferred.
	Deliver(ctx context.Context, job *Job) []Outcome
}

// DelivererFunc adapts a function to the Deliverer interface.
type DelivererFunc func(ctx context.Context, job *Job) []Outcome

// Deliver calls f(ctx, job).
func (f DelivererFunc) Deliver(ctx context.Context, job *Job) []Outcome { return f(ctx, job) }

// Outcome is the result of an attempt for one recipient.
type Outcome struct {
	Recipient string         // the address, as in the job
	Status    RecipientState // Delivered, Deferred or Bounced
	Reply     string         // the server's reply or a local reason
}

// Outcomes returns the same outcome for every remaining recipient of job:
// for a failure that concerns the whole attempt (no route, connection
// refused).
func Outcomes(job *Job, status RecipientState, reply string) []Outcome {
	rem := job.Remaining()
	out := make([]Outcome, len(rem))
	for i, a := range rem {
		out[i] = Outcome{Recipient: a, Status: status, Reply: reply}
	}
	return out
}

// Hooks are optional functions the queue calls as jobs move, from the
// goroutine that moved them; nil ones are skipped. They must not block for
// long. The *Job they receive is the queue's copy, valid during the call:
// read it, do not keep or change it (its Message may be nil).
type Hooks struct {
	Enqueued       func(job *Job)                       // stored durably
	AttemptStarted func(job *Job)                       // about to call Deliver
	Delivered      func(job *Job, rcpt Recipient)       // one recipient accepted
	Bounced        func(job *Job, rcpt Recipient)       // one recipient failed permanently
	RetryScheduled func(job *Job, at time.Time)         // temporary failure; next attempt at
	Expired        func(job *Job, rcpts []Recipient)    // lifetime passed; these now bounced
	Error          func(job *Job, op string, err error) // a store operation failed (job may be nil)
}
