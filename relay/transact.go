package relay

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/relay/internal/smtpclient"
)

// defaultRcptMax is how many recipients go in one transaction when the
// server announces no LIMITS RCPTMAX: RFC 5321 §4.5.3.1.8 makes every
// server accept at least 100.
const defaultRcptMax = 100

// maxTransactions bounds the transactions of one attempt on one session
// (splitting by RCPTMAX and re-sending after 452 replies).
const maxTransactions = 50

// transact sends the message to every recipient over s, in as many
// transactions as the server's recipient limit needs, and records each
// recipient's outcome. Recipients refused as "too many recipients" (see
// tooMany) after others were accepted go again in the next transaction;
// when a transaction accepts none of them they are deferred.
//
// It reports false, recording nothing, when s was reused from the pool and
// turned out to be dead before the server answered anything: the caller
// then tries a new connection.
func (a *attempt) transact(ctx context.Context, s *session, d *destination) bool {
	reused := s.uses > 0
	s.uses++
	max := s.cl.RcptMax()
	if max <= 0 || max > defaultRcptMax {
		max = defaultRcptMax
	}
	pending := make([]int, len(a.rcpts))
	for i := range pending {
		pending[i] = i
	}
	for n := 0; len(pending) > 0; n++ {
		if n == maxTransactions || ctx.Err() != nil {
			break
		}
		batch := pending[:min(max, len(pending))]
		rest := pending[len(batch):]
		env := &smtpclient.Envelope{From: a.from, To: make([]string, len(batch)), SMTPUTF8: a.utf8, DSN: dsnParams(a.envID)}
		for j, i := range batch {
			env.To[j] = a.rcpts[i]
		}
		tx, err := s.cl.Send(ctx, env, a.data)
		if n == 0 && reused && isSessionFault(err) && (tx == nil || tx.Mail.Code == 0) {
			return false
		}
		if tx != nil && tx.Delivered() > 0 {
			d.succeeded()
		}
		if saw421(tx, err) {
			d.pushedBack(time.Now())
			a.t.shareBackoff(d)
		}
		ruled := a.backoff(ctx, d, err)
		if tx == nil {
			// Nothing was sent (invalid envelope) or the session broke
			// before MAIL: every recipient of the batch gets the reason.
			for _, i := range batch {
				a.setErr(i, s, err)
				a.bounceByRule(i, ruled)
			}
			if isSessionFault(err) {
				a.deferRest(rest, s, err)
				return true
			}
			pending = rest
			continue
		}
		var again []int
		for j, i := range batch {
			rr := tx.Rcpts[j]
			if rr.Err == nil {
				a.setDelivered(i, s, tx.Final)
				continue
			}
			if r := a.backoff(ctx, d, rr.Err); r != nil && r.Bounce {
				a.setErr(i, s, rr.Err)
				a.bounceByRule(i, r)
				continue
			}
			if tooMany(rr.Err) {
				if tx.Delivered() > 0 {
					again = append(again, i)
					continue
				}
				// None taken in this transaction: a later attempt, not
				// a bounce, even for 552 (§4.5.3.1.10).
				a.setErr(i, s, rr.Err)
				a.results[i].Status = Deferred
				continue
			}
			a.setErr(i, s, rr.Err)
		}
		if err != nil && isSessionFault(err) {
			a.deferRest(append(again, rest...), s, err)
			return true
		}
		pending = append(again, rest...)
		if r, until := d.ruleInForce(time.Now()); r != nil && r.Suspend {
			// The host asked us to stop: the rest waits for the queue,
			// and the session is not kept.
			s.retire = true
			a.deferRest(pending, s, &Error{Host: s.host, Enhanced: "4.4.5",
				Message: "suspended by back-off rule " + r.Name + " until " + until.UTC().Format(time.RFC3339)})
			return true
		}
	}
	a.deferRest(pending, s, ctx.Err())
	return true
}

// dsnParams are the DSN parameters (RFC 3461) for an envelope id: ENVID,
// ORCPT for every recipient so that a DSN names the address as sent, and
// RET=HDRS, since a bounce needs only the returned header to be matched.
// nil for "" (no DSN parameters at all).
func dsnParams(envID string) *smtpclient.DSN {
	if envID == "" {
		return nil
	}
	return &smtpclient.DSN{EnvelopeID: envID, Return: "HDRS", OriginalRecipient: true}
}

// saw421 reports whether the server answered 421 ("closing the channel",
// often "too many connections" or "slow down") anywhere in a transaction.
func saw421(tx *smtpclient.TxResult, err error) bool {
	var se *smtpclient.Error
	if errors.As(err, &se) && se.Code == 421 {
		return true
	}
	if tx == nil {
		return false
	}
	if tx.Mail.Code == 421 || tx.Data.Code == 421 || tx.Final.Code == 421 {
		return true
	}
	for _, r := range tx.Rcpts {
		if r.Reply.Code == 421 {
			return true
		}
	}
	return false
}

func (a *attempt) deferRest(idx []int, s *session, err error) {
	if err == nil {
		err = errors.New("not attempted: too many transactions")
	}
	for _, i := range idx {
		a.setErr(i, s, err)
		a.results[i].Status = Deferred
	}
}

func (a *attempt) setDelivered(i int, s *session, final smtpclient.Reply) {
	r := &a.results[i]
	r.Status = Delivered
	r.Code, r.Enhanced, r.Message = final.Code, final.Enhanced, final.Text()
	r.MX, r.TLS, r.Source = s.host, s.tls, s.local.String()
}

// bounceByRule makes recipient i's failure permanent when back-off rule r
// says retrying will not succeed.
func (a *attempt) bounceByRule(i int, r *BackoffRule) {
	if r == nil || !r.Bounce {
		return
	}
	res := &a.results[i]
	if res.Status == Deferred {
		res.Status = Bounced
		res.Message += ruleNote(r)
	}
}

func (a *attempt) setErr(i int, s *session, err error) {
	r := &a.results[i]
	r.MX, r.TLS, r.Source = s.host, s.tls, s.local.String()
	st := Deferred
	var se *smtpclient.Error
	if errors.As(err, &se) && se.Permanent() {
		st = Bounced
	}
	r.fail(st, err)
}

// tooMany reports a recipient to send in another transaction: one held
// back by RCPTMAX, or refused at RCPT with 452, 451 4.5.3 or 552, the
// replies RFC 5321 §4.5.3.1.10 names for "too many recipients" (552 being
// the old form, which clients should treat as temporary).
func tooMany(err error) bool {
	if errors.Is(err, smtpclient.ErrTooManyRecipients) {
		return true
	}
	var se *smtpclient.Error
	if !errors.As(err, &se) || se.Command != "RCPT TO" {
		return false
	}
	switch se.Code {
	case 452: // also "insufficient storage"; a full mailbox (4.2.2) is not
		return !strings.HasPrefix(se.Enhanced, "4.2.")
	case 552:
		return !strings.HasPrefix(se.Enhanced, "5.2.")
	case 451:
		return se.Enhanced == "4.5.3"
	}
	return false
}

// isSessionFault reports an error that ended the session (timeouts,
// broken connections, protocol violations), as opposed to a reply.
func isSessionFault(err error) bool {
	if err == nil {
		return false
	}
	var se *smtpclient.Error
	if errors.As(err, &se) && se.Code != 0 {
		return se.Code == 421
	}
	return !errors.As(err, &se)
}
