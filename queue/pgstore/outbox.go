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
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/mxrelay/mxrelay/queue"
)

var _ queue.OutboxStore = (*Store)(nil)

// outboxSQL holds the outbox statements with the schema filled in.
type outboxSQL struct {
	append, lock, claim, ack, retry, states string
}

func prepareOutboxSQL(q string) outboxSQL {
	f := func(s string) string { return strings.ReplaceAll(s, "{s}", q) }
	return outboxSQL{
		// $1, $2: each endpoint of the call once, with its number of
		// entries; the heads are upserted in endpoint order, so that two
		// appends to the same endpoints lock them in the same order. $3
		// to $6: the entries, back counting down to 1 over each
		// endpoint's entries, so that its last entry takes the Seq just
		// below the new next_seq.
		append: f(`WITH h AS (
				INSERT INTO {s}.outbox_heads AS o (endpoint, next_seq)
				SELECT e, n + 1 FROM unnest($1::text[], $2::bigint[]) AS u(e, n) ORDER BY e COLLATE "C"
				ON CONFLICT (endpoint) DO UPDATE SET next_seq = o.next_seq + EXCLUDED.next_seq - 1
				RETURNING o.endpoint, o.next_seq)
			INSERT INTO {s}.outbox_items (endpoint, seq, time, data)
			SELECT u.e, h.next_seq - u.back, u.t, u.d
			FROM unnest($3::text[], $4::bigint[], $5::timestamptz[], $6::bytea[]) AS u(e, back, t, d)
			JOIN h ON h.endpoint = u.e`),
		lock: f(`SELECT 1 FROM {s}.outbox_heads WHERE endpoint = $1 FOR UPDATE`),
		// Run after lock, in its transaction: a new snapshot, which sees
		// every change to the endpoint committed before the lock was
		// granted. $5 is the claim's Now, $6 Max, $7 MaxBytes.
		claim: f(`WITH h AS (
				UPDATE {s}.outbox_heads SET lease_owner = $2, lease_token = $3, lease_until = $4
				WHERE endpoint = $1
					AND (next_attempt IS NULL OR next_attempt <= $5)
					AND (lease_token IS NULL OR lease_until <= $5)
					AND EXISTS (SELECT 1 FROM {s}.outbox_items WHERE endpoint = $1)
				RETURNING attempts),
			b AS (
				SELECT seq, time, data, row_number() OVER w AS n, sum(octet_length(data)) OVER w AS total
				FROM (SELECT seq, time, data FROM {s}.outbox_items WHERE endpoint = $1 ORDER BY seq LIMIT $6) i
				WINDOW w AS (ORDER BY seq ROWS UNBOUNDED PRECEDING))
			SELECT h.attempts, b.seq, b.time, b.data FROM h CROSS JOIN b
			WHERE b.n = 1 OR $7::bigint <= 0 OR b.total <= $7::bigint
			ORDER BY b.seq`),
		ack: f(`WITH h AS (
				UPDATE {s}.outbox_heads SET lease_owner = NULL, lease_token = NULL, lease_until = NULL,
					attempts = 0, next_attempt = NULL, last_error = ''
				WHERE endpoint = $1 AND lease_token = $2
				RETURNING endpoint),
			d AS (
				DELETE FROM {s}.outbox_items i USING h
				WHERE i.endpoint = h.endpoint AND i.seq = ANY($3::bigint[]))
			SELECT count(*) FROM h`),
		retry: f(`UPDATE {s}.outbox_heads SET lease_owner = NULL, lease_token = NULL, lease_until = NULL,
				attempts = attempts + 1, next_attempt = $3, last_error = $4
			WHERE endpoint = $1 AND lease_token = $2`),
		states: f(`SELECT h.endpoint, i.n, i.oldest, h.attempts, h.next_attempt, h.last_error, h.lease_owner
			FROM {s}.outbox_heads h CROSS JOIN LATERAL (
				SELECT count(*) AS n, (SELECT f.time FROM {s}.outbox_items f
					WHERE f.endpoint = h.endpoint ORDER BY f.seq LIMIT 1) AS oldest
				FROM {s}.outbox_items c WHERE c.endpoint = h.endpoint) i
			WHERE i.n > 0 OR h.attempts > 0
			ORDER BY h.endpoint`),
	}
}

// AppendOutbox implements queue.OutboxStore: one statement, durable on
// return, that reserves each endpoint's Seqs in its outbox_heads row and
// inserts the items. Appends to one endpoint from any process follow each
// other on that row's lock, so the Seqs they take are in commit order. An
// entry's Time is stored to the microsecond, truncated.
func (s *Store) AppendOutbox(ctx context.Context, entries ...queue.OutboxEntry) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	counts := make(map[string]int64)
	for i := range entries {
		e := &entries[i]
		if err := queue.CheckOutboxEntry(e); err != nil {
			return err
		}
		counts[e.Endpoint]++
	}
	if len(entries) == 0 {
		return nil
	}
	heads := make([]string, 0, len(counts))
	for ep := range counts {
		heads = append(heads, ep)
	}
	slices.Sort(heads)
	ns := make([]int64, len(heads))
	for i, ep := range heads {
		ns[i] = counts[ep]
	}
	var (
		n     = len(entries)
		eps   = make([]string, n)
		backs = make([]int64, n)
		times = make([]time.Time, n)
		datas = make([][]byte, n)
	)
	for i, e := range entries {
		eps[i], backs[i], times[i], datas[i] = e.Endpoint, counts[e.Endpoint], pgTime(e.Time), e.Data
		counts[e.Endpoint]--
		if datas[i] == nil {
			datas[i] = []byte{} // NULL is not an empty item
		}
	}
	if _, err := s.pool.Exec(ctx, s.osql.append, heads, ns, eps, backs, times, datas); err != nil {
		return s.dbError("append outbox", err)
	}
	return nil
}

// ClaimOutbox implements queue.OutboxStore: one round trip, one
// transaction that locks the endpoint's outbox_heads row, then, in a
// snapshot taken once the lock is granted, checks that the endpoint is
// due and not leased (by r.Now), reads its head in Seq order within
// r.Max and r.MaxBytes, and records the lease with a new random token.
// Claims of one endpoint from every process follow each other on that
// lock, so no two take one lease. Like Claim, it commits with
// synchronous_commit off: a lease lost in a database crash only makes the
// endpoint's head due again early. An owner that is not UTF-8 text is
// stored with each run of bytes that are not UTF-8, and each NUL, replaced by U+FFFD.
func (s *Store) ClaimOutbox(ctx context.Context, r queue.OutboxClaim) (*queue.OutboxBatch, error) {
	if r.Max < 1 || r.Lease <= 0 {
		return nil, fmt.Errorf("%w: outbox claim of %d items for %v", queue.ErrInvalid, r.Max, r.Lease)
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if !pgText(r.Endpoint) {
		return nil, nil // never stored
	}
	token := outboxToken()
	until := r.Now.Add(r.Lease)
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue("SET LOCAL synchronous_commit TO off")
	b.Queue(s.osql.lock, r.Endpoint)
	b.Queue(s.osql.claim, r.Endpoint, pgSafe(r.Owner), token, until, r.Now, int64(r.Max), int64(r.MaxBytes))
	b.Queue("COMMIT")
	var batch *queue.OutboxBatch
	err := func() error {
		br := s.pool.SendBatch(ctx, b)
		defer br.Close() // a failed batch leaves the connection mid-transaction: the pool drops it
		for range 3 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				attempts int32
				it       queue.OutboxItem
			)
			if err := rows.Scan(&attempts, &it.Seq, &it.Time, &it.Data); err != nil {
				rows.Close()
				return err
			}
			it.Time = it.Time.UTC()
			if batch == nil {
				batch = &queue.OutboxBatch{Endpoint: r.Endpoint, Attempts: int(attempts), Token: token, Until: until}
			}
			batch.Items = append(batch.Items, it)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return br.Close()
	}()
	if err != nil {
		return nil, s.dbError("claim outbox", err)
	}
	return batch, nil
}

// AckOutbox implements queue.OutboxStore: one statement that, if b's
// token still names the endpoint's lease, ends the lease, clears the
// failures and deletes b's items; queue.ErrLeaseLost otherwise. A lease
// whose end has passed but that no claim has taken is still b's.
func (s *Store) AckOutbox(ctx context.Context, b *queue.OutboxBatch) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if b == nil || !pgText(b.Endpoint) || !pgText(b.Token) {
		return fmt.Errorf("%w: outbox batch", queue.ErrLeaseLost)
	}
	seqs := make([]int64, len(b.Items))
	for i := range b.Items {
		seqs[i] = b.Items[i].Seq
	}
	var n int64
	if err := s.pool.QueryRow(ctx, s.osql.ack, b.Endpoint, b.Token, seqs).Scan(&n); err != nil {
		return s.dbError("ack outbox", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: outbox %q", queue.ErrLeaseLost, b.Endpoint)
	}
	return nil
}

// RetryOutbox implements queue.OutboxStore: one statement, fenced by the
// token like AckOutbox. next is stored to the microsecond, truncated, a
// zero next as NULL (due at once); a reason that is not UTF-8 text is
// stored with each run of bytes that are not UTF-8, and each NUL, replaced by U+FFFD.
func (s *Store) RetryOutbox(ctx context.Context, b *queue.OutboxBatch, next time.Time, reason string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if b == nil || !pgText(b.Endpoint) || !pgText(b.Token) {
		return fmt.Errorf("%w: outbox batch", queue.ErrLeaseLost)
	}
	due := pgtype.Timestamptz{Time: pgTime(next), Valid: !next.IsZero()}
	tag, err := s.pool.Exec(ctx, s.osql.retry, b.Endpoint, b.Token, due, pgSafe(reason))
	if err != nil {
		return s.dbError("retry outbox", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: outbox %q", queue.ErrLeaseLost, b.Endpoint)
	}
	return nil
}

// Outboxes implements queue.OutboxStore: one query, so one snapshot of
// every endpoint, in byte order of the names. As with queue.MemoryStore,
// the owner of a lease is listed until the lease is acked, retried or
// taken by another claim, whether or not its end has passed: a store
// call has no clock but the claims'.
func (s *Store) Outboxes(ctx context.Context) ([]queue.OutboxState, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, s.osql.states)
	if err != nil {
		return nil, s.dbError("outboxes", err)
	}
	defer rows.Close()
	var out []queue.OutboxState
	for rows.Next() {
		var (
			st       queue.OutboxState
			pending  int64
			attempts int32
			oldest   *time.Time
			next     *time.Time
			owner    *string
		)
		if err := rows.Scan(&st.Endpoint, &pending, &oldest, &attempts, &next, &st.LastError, &owner); err != nil {
			return nil, s.dbError("outboxes", err)
		}
		st.Pending, st.Attempts = int(pending), int(attempts)
		if oldest != nil {
			st.Oldest = oldest.UTC()
		}
		if next != nil {
			st.NextAttempt = next.UTC()
		}
		if owner != nil {
			st.Owner = *owner
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, s.dbError("outboxes", err)
	}
	return out, nil
}

// outboxToken returns a random outbox lease token: 16 bytes, in hex.
func outboxToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// pgSafe returns v as PostgreSQL text can hold it: each run of bytes that
// are not UTF-8, and each NUL, replaced by U+FFFD.
func pgSafe(v string) string {
	if pgText(v) {
		return v
	}
	return strings.ReplaceAll(strings.ToValidUTF8(v, "\uFFFD"), "\x00", "\uFFFD")
}
