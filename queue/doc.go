// Package queue is mxrelay's in-process retrying queue: it stores messages
// (jobs) through a pluggable Store, hands each due job to a Deliverer, and
// acts on the per-recipient outcome.
//
// # Jobs and outcomes
//
// A Job is one message for its remaining recipients. Each attempt reports
// an Outcome per recipient:
//
//   - Delivered (2xx): the recipient is done.
//   - Bounced (5xx, or a permanent local reason): the recipient is done and
//     keeps its reply; it is never retried.
//   - Deferred (4xx, timeouts, connection faults, and any recipient the
//     Deliverer did not report — an unknown outcome is temporary): the job
//     is rescheduled by the RetryPolicy.
//
// A job whose age passes the policy's lifetime expires after its last
// failed attempt: its remaining recipients bounce with a reason that says so
// (RFC 5321 §4.5.4.1: give up after no less than 4–5 days). When every
// recipient is final the job leaves the store.
//
// # Failure rules
//
// Enqueue returns only once the Store holds the job durably. Workers claim
// due jobs with a lease; a worker (or process) that dies leaves its jobs to
// be claimed again when the lease ends, so delivery is at least once: a
// crash after the remote server accepted a message and before the outcome
// was recorded delivers it again on the next attempt. A duplicate is
// acceptable, a loss is not. Finish is fenced by the lease token, so a stale
// worker never overwrites a newer outcome.
//
// # Limits and scheduling
//
// Workers caps the jobs in flight in one process; PerKey caps them per
// routing key (the recipient domain), counted by the store so the cap holds
// across processes sharing it. A key at its cap is skipped, never waited
// for, so other keys are not starved. Enqueue, Release and RetryNow wake
// idle workers at once; retries this queue scheduled wake it on time; polling
// (PollInterval) remains as the fallback. Memory holds only the jobs in
// flight: stores find due jobs through an index.
//
// # Stores
//
// MemoryStore keeps jobs in memory (lost on exit). The subpackage
// queue/boltstore is the embedded durable default; queue/pgstore shares one
// queue between processes through PostgreSQL. queue/queuetest.TestStore is
// the conformance suite every Store passes, including users' own.
//
// Optional Store capabilities, found by type assertion:
//
//   - Waker: signals jobs made due by other processes (LISTEN/NOTIFY).
//   - PutLeaser: Put that also leases the new job; Enqueue hands a job so
//     leased straight to an idle worker of Run, with no Claim between.
//   - FinishClaimer: Finish that also claims; a worker records its attempt
//     and takes its next job in one write.
//   - io.Closer: the owner of the store closes it; the Queue never does.
//
// # Events
//
// Hooks receive enqueued, attempt started, delivered, bounced, retry
// scheduled (with its time), expired, and store errors: the raw material for
// statistics and alerts.
package queue
