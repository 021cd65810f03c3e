package pgstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mxrelay/mxrelay/queue"
)

// jobCols are the columns scanRow reads, in order; {m} is the message
// column or NULL (List leaves the message out).
const jobCols = `id, sender, rcpt_addr, rcpt_state, rcpt_reply, {m}, created, attempts,
	next_attempt, last_error, held, routing_key, metadata, lease_owner, lease_token, lease_until`

// row is one job as its columns are stored.
type row struct {
	id, sender     string
	addrs, replies []string
	states         []int16
	message        []byte
	created, next  time.Time
	attempts       int32
	lastError      string
	held           bool
	key            string
	metadata       []byte
	owner, token   *string
	until          *time.Time
}

// dest returns scan destinations for jobCols, after extra ones.
func (r *row) dest(extra ...any) []any {
	return append(extra, &r.id, &r.sender, &r.addrs, &r.states, &r.replies, &r.message,
		&r.created, &r.attempts, &r.next, &r.lastError, &r.held, &r.key, &r.metadata,
		&r.owner, &r.token, &r.until)
}

// job decodes r; a record that breaks the format gives a
// *queue.CorruptError.
func (r *row) job() (*queue.Job, error) {
	j := &queue.Job{
		ID:          r.id,
		From:        r.sender,
		Message:     r.message,
		Created:     r.created,
		Attempts:    int(r.attempts),
		NextAttempt: r.next,
		LastError:   r.lastError,
		Held:        r.held,
		RoutingKey:  r.key,
	}
	if len(r.addrs) != len(r.states) || len(r.addrs) != len(r.replies) {
		return nil, &queue.CorruptError{ID: r.id, Err: fmt.Errorf("pgstore: %d recipients, %d states, %d replies",
			len(r.addrs), len(r.states), len(r.replies))}
	}
	j.Recipients = make([]queue.Recipient, len(r.addrs))
	for i, a := range r.addrs {
		st := queue.RecipientState(r.states[i])
		if r.states[i] < 0 || st > queue.Bounced {
			return nil, &queue.CorruptError{ID: r.id, Err: fmt.Errorf("pgstore: recipient %q has state %d", a, r.states[i])}
		}
		j.Recipients[i] = queue.Recipient{Addr: a, State: st, Reply: r.replies[i]}
	}
	if r.metadata != nil {
		// A JSON object (a table constraint); a value someone stored
		// that is not a string is kept as its JSON text.
		var m map[string]json.RawMessage
		if err := json.Unmarshal(r.metadata, &m); err != nil {
			return nil, &queue.CorruptError{ID: r.id, Err: fmt.Errorf("pgstore: metadata: %w", err)}
		}
		j.Metadata = make(map[string]string, len(m))
		for k, v := range m {
			var str string
			if json.Unmarshal(v, &str) != nil {
				str = string(v)
			}
			j.Metadata[k] = str
		}
	}
	if r.token != nil && r.until != nil {
		j.Lease.Token = *r.token
		j.Lease.Until = *r.until
		if r.owner != nil {
			j.Lease.Owner = *r.owner
		}
	}
	return j, nil
}

// scanJobs reads rows of jobCols (after extra leading columns, which
// extraFn receives per row) and decodes them, stopping at a corrupt one
// only if stopOnCorrupt.
func scanJobs(rows pgx.Rows, extra func() []any, each func(*queue.Job, error)) error {
	defer rows.Close()
	for rows.Next() {
		var r row
		var ex []any
		if extra != nil {
			ex = extra()
		}
		if err := rows.Scan(r.dest(ex...)...); err != nil {
			return err
		}
		each(r.job())
	}
	return rows.Err()
}

// params are a job's column values for INSERT, in insertCols order.
const insertCols = `id, sender, rcpt_addr, rcpt_state, rcpt_reply, message, created, attempts,
	next_attempt, last_error, held, routing_key, metadata, due`

// numInsertParams is the number of bind parameters one job takes (due
// reuses next_attempt's).
const numInsertParams = 13

func insertParams(j *queue.Job) ([]any, error) {
	addrs := make([]string, len(j.Recipients))
	states := make([]int16, len(j.Recipients))
	replies := make([]string, len(j.Recipients))
	for i, r := range j.Recipients {
		addrs[i], states[i], replies[i] = r.Addr, int16(r.State), r.Reply
	}
	var meta []byte
	if j.Metadata != nil {
		var err error
		if meta, err = json.Marshal(j.Metadata); err != nil {
			return nil, fmt.Errorf("pgstore: metadata of %s: %w", j.ID, err)
		}
	}
	// A copy: a Put abandoned by its context may still be committed after
	// the caller has reused the slice.
	msg := append([]byte{}, j.Message...)
	return []any{j.ID, j.From, addrs, states, replies, msg, j.Created, int32(j.Attempts),
		j.NextAttempt, j.LastError, j.Held, j.RoutingKey, meta}, nil
}
