package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mxrelay/mxrelay/queue"
)

// cols returns jobCols with each column prefixed by p ("j.") and the
// message column or NULL.
func cols(p string, message bool) string {
	m := "NULL::bytea"
	if message {
		m = "message"
	}
	s := strings.ReplaceAll(jobCols, "{m}", m)
	fields := strings.Split(s, ",")
	for i, f := range fields {
		f = strings.TrimSpace(f)
		if !strings.HasPrefix(f, "NULL") {
			f = p + f
		}
		fields[i] = f
	}
	return strings.Join(fields, ", ")
}

// statements holds the SQL text with the schema filled in.
type statements struct {
	claim, claimPerKey     string
	get, list, stats       string
	finishDone, finishKeep string
	hold, release, cancel  string
	retry                  string
}

func prepareSQL(q string) statements {
	f := func(s string) string { return strings.ReplaceAll(s, "{s}", q) }
	exists := `SELECT (SELECT count(*) FROM u), EXISTS (SELECT 1 FROM {s}.jobs WHERE id = $1)`
	return statements{
		// Without a per-key cap: one statement, SKIP LOCKED.
		claim: f(`WITH c AS (
				SELECT id, due FROM {s}.jobs
				WHERE NOT held AND due <= $1
				ORDER BY due, id LIMIT $2
				FOR UPDATE SKIP LOCKED)
			UPDATE {s}.jobs j SET lease_owner = $3, lease_token = $4, lease_until = $5, due = $5
			FROM c WHERE j.id = c.id
			RETURNING c.due, ` + cols("j.", true)),
		claimPerKey: f(`SELECT f.old_due, ` + cols("(f.job).", true) +
			` FROM {s}.claim_keyed($1, $2, $3, $4, $5, $6, hashtext($7)) f`),
		get:        f(`SELECT ` + cols("", true) + ` FROM {s}.jobs WHERE id = $1`),
		list:       f(`SELECT ` + cols("", false) + ` FROM {s}.jobs WHERE id > $1 AND {filter} ORDER BY id LIMIT $2`),
		stats:      f(`SELECT count(*) FILTER (WHERE NOT held AND lease_token IS NULL), count(*) FILTER (WHERE NOT held AND lease_token IS NOT NULL), count(*) FILTER (WHERE held) FROM {s}.jobs`),
		finishDone: f(`WITH u AS (DELETE FROM {s}.jobs WHERE id = $1 AND lease_token = $2 RETURNING 1) ` + exists),
		finishKeep: f(`WITH u AS (UPDATE {s}.jobs SET rcpt_state = $3, rcpt_reply = $4, attempts = $5,
				next_attempt = $6, last_error = $7, due = $6,
				lease_owner = NULL, lease_token = NULL, lease_until = NULL
				WHERE id = $1 AND lease_token = $2 RETURNING 1) ` + exists),
		hold: f(`UPDATE {s}.jobs SET held = true WHERE id = $1`),
		release: f(`WITH u AS (UPDATE {s}.jobs SET held = false WHERE id = $1 RETURNING 1)
			SELECT count(*) FROM u, LATERAL (SELECT pg_notify($2, '')) n`),
		cancel: f(`DELETE FROM {s}.jobs WHERE id = $1`),
		// A leased job stays due at its lease's end; any other (held
		// ones included: Release leaves due alone) is due at $2.
		retry: f(`WITH u AS (UPDATE {s}.jobs
				SET next_attempt = $2, due = CASE WHEN lease_token IS NULL THEN $2 ELSE due END
				WHERE id = $1 RETURNING 1)
			SELECT count(*) FROM u, LATERAL (SELECT pg_notify($3, '')) n`),
	}
}

// newToken returns a random lease token, shared by the jobs of one Claim
// (fencing checks id and token together).
func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Claim implements queue.Store. Without a per-key cap it is one UPDATE of
// rows picked with FOR UPDATE SKIP LOCKED, so concurrent claimers never
// wait for each other. With r.PerKey > 0 it calls the schema's
// claim_keyed function, which reads the due routing keys from
// routing_keys, earliest first, each under its row's lock while it counts
// the key's unexpired leases (those of every process) and leases within
// the cap: the cap holds across processes, and the cost does not grow with
// the number of keys (see the package doc). Either way the jobs come back
// in due order and no transaction outlives Claim.
//
// With a per-key cap the keys are filled in the order of their earliest
// due job, each up to its budget, so when more jobs are due than r.Max a
// later job of an early key may be taken before an earlier job of another
// key.
func (s *Store) Claim(ctx context.Context, r queue.ClaimRequest) ([]*queue.Job, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if r.Max <= 0 {
		return nil, nil
	}
	token := newToken()
	until := r.Now.Add(r.Lease)
	var (
		out  []*queue.Job
		dues = map[string]time.Time{}
		err  error
	)
	collect := func(rows pgx.Rows) error {
		var due time.Time
		return scanJobs(rows, func() []any { return []any{&due} }, func(j *queue.Job, jerr error) {
			if jerr != nil {
				// A corrupt record: leave it leased (out of the way until
				// its lease ends) and report nothing; Get names it.
				return
			}
			j.Lease = queue.Lease{Owner: r.Owner, Token: token, Until: until}
			dues[j.ID] = due
			out = append(out, j)
		})
	}
	if r.PerKey <= 0 {
		err = s.leaseTx(ctx, collect, s.sql.claim, r.Now, r.Max, r.Owner, token, until)
	} else {
		err = s.leaseTx(ctx, collect, s.sql.claimPerKey, r.Now, r.Max, r.PerKey, r.Owner, token, until, s.schema)
		var pgErr *pgconn.PgError
		if err != nil && ctx.Err() == nil && errors.As(err, &pgErr) && pgErr.Code == "57014" {
			// claim_keyed's wait for a key's row (its second pass, under
			// lock_timeout) is now and then reported as a cancel "due to
			// user request" that no one sent (seen under concurrent Puts:
			// a lock timeout racing the lock's grant). The transaction
			// rolled back, nothing was leased: claim again, once.
			out, dues = out[:0], map[string]time.Time{}
			err = s.leaseTx(ctx, collect, s.sql.claimPerKey, r.Now, r.Max, r.PerKey, r.Owner, token, until, s.schema)
		}
	}
	if err != nil {
		return nil, s.dbError("claim", err)
	}
	slices.SortFunc(out, func(a, b *queue.Job) int {
		if c := dues[a.ID].Compare(dues[b.ID]); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// leaseTx runs the lease statement in one transaction sent as one batch:
// one round trip. The
// transaction commits with synchronous_commit off: it does not wait for
// the disk, so a hot routing key's lock is held for microseconds rather
// than a WAL flush. A lease lost in a database crash only makes its job
// due again early, which at-least-once delivery allows; Finish, which
// records outcomes, commits synchronously (and flushes the lease before
// it).
func (s *Store) leaseTx(ctx context.Context, collect func(pgx.Rows) error, update string, args ...any) error {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit TO off")
	b.Queue(update, args...)
	b.Queue("COMMIT")
	br := s.pool.SendBatch(ctx, b)
	defer br.Close() // a failed batch leaves the connection mid-transaction: the pool drops it
	for range 2 {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	if err := collect(rows); err != nil {
		return err
	}
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return br.Close()
}
