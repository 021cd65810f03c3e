package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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

// candidates selects, without locking, the jobs Claim would lease with a
// per-key cap: for each routing key with a due job (found by a loose index
// scan, one probe per key, so a long backlog of one key costs nothing) it
// counts the key's unexpired leases and takes its earliest due jobs within
// the cap; then the earliest Max of all. {keys} is the source of keys.
// $1 now, $2 max, $3 per-key cap, $4 min(max, per-key).
const candidatesSQL = `
	cand AS (
		SELECT c.id, c.due, dk.key
		FROM dk
		CROSS JOIN LATERAL (
			SELECT count(*) AS n FROM {s}.jobs a
			WHERE a.routing_key = dk.key AND a.lease_token IS NOT NULL AND a.lease_until > $1) act
		CROSS JOIN LATERAL (
			SELECT id, due, row_number() OVER (ORDER BY due, id) AS rn
			FROM {s}.jobs
			WHERE routing_key = dk.key AND NOT held AND due <= $1
			ORDER BY due, id LIMIT $4) c
		WHERE c.rn <= $3 - act.n
		ORDER BY c.due, c.id LIMIT $2)`

// keysScanSQL lists the routing keys whose earliest unheld job is due.
const keysScanSQL = `WITH RECURSIVE k(key, due) AS (
		(SELECT routing_key, due FROM {s}.jobs WHERE NOT held ORDER BY routing_key, due LIMIT 1)
		UNION ALL
		SELECT n.routing_key, n.due FROM k CROSS JOIN LATERAL (
			SELECT routing_key, due FROM {s}.jobs
			WHERE NOT held AND routing_key > k.key
			ORDER BY routing_key, due LIMIT 1) n
	),
	dk AS (SELECT key FROM k WHERE due <= $1),`

// statements holds the SQL text with the schema filled in.
type statements struct {
	claim, claimKeys, claimPerKey, lockKeys string
	get, list, stats                        string
	finishDone, finishKeep                  string
	hold, release, cancel                   string
}

func prepareSQL(q string) statements {
	f := func(s string) string { return strings.ReplaceAll(s, "{s}", q) }
	lease := `lease_owner = $5, lease_token = $6, lease_until = $7, due = $7`
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
		claimKeys: f(keysScanSQL + candidatesSQL + `
			SELECT DISTINCT key FROM cand`),
		lockKeys: `SELECT pg_advisory_xact_lock(hashtext($1), h)
			FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest($2::text[]) AS k ORDER BY h) s`,
		claimPerKey: f(`WITH dk AS (SELECT unnest($8::text[]) AS key),` + candidatesSQL + `
			UPDATE {s}.jobs j SET ` + lease + `
			FROM cand WHERE j.id = cand.id AND NOT j.held AND j.due <= $1
			RETURNING cand.due, ` + cols("j.", true)),
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
// wait for each other. With r.PerKey > 0 it first finds the keys it would
// take jobs from, then, in a short transaction, takes an advisory lock per
// key (in a fixed order) and repeats the selection under the locks, so
// that claimers in every process see each other's leases when they count
// a key's: the cap holds across processes. No transaction outlives Claim.
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
		rows, qerr := s.pool.Query(ctx, s.sql.claim, r.Now, r.Max, r.Owner, token, until)
		if qerr == nil {
			err = collect(rows)
		} else {
			err = qerr
		}
	} else {
		err = s.claimPerKey(ctx, r, token, until, collect)
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

func (s *Store) claimPerKey(ctx context.Context, r queue.ClaimRequest, token string, until time.Time,
	collect func(pgx.Rows) error) error {
	lim := min(r.Max, r.PerKey)
	rows, err := s.pool.Query(ctx, s.sql.claimKeys, r.Now, r.Max, r.PerKey, lim)
	if err != nil {
		return err
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return err
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	// One round trip: the transaction, its locks and the lease.
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(s.sql.lockKeys, s.schema, keys)
	b.Queue(s.sql.claimPerKey, r.Now, r.Max, r.PerKey, lim, r.Owner, token, until, keys)
	b.Queue("COMMIT")
	br := s.pool.SendBatch(ctx, b)
	defer br.Close() // a failed batch leaves the connection mid-transaction: the pool drops it
	if _, err := br.Exec(); err != nil {
		return err
	}
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("lock routing keys: %w", err)
	}
	rows, err = br.Query()
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
