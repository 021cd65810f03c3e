package pgstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// historyCols are the columns of history (aliased h) that histRow reads,
// in order, before a JSON array of entries.
const historyCols = `h.id, h.message_id, h.sender, h.subject, h.campaign, h.list, h.metadata, h.created, h.updated`

// historySQL holds the history's statements, with the schema in place.
type historySQL struct {
	keepRecords, keepEntries string
	record, note, expire     string
	list, listRcpt           string // {filter} stands for more conditions
	forgetLock, forget       string
}

func prepareHistorySQL(q string) historySQL {
	f := func(s string) string { return strings.ReplaceAll(s, "{s}", q) }
	// A record's entries as one JSON array, in their order.
	entries := `(SELECT jsonb_agg(r.entry ORDER BY r.pos) FROM {s}.history_rcpt r WHERE r.id = h.id)`
	return historySQL{
		// $10 is the zero time: a zero Created or Updated keeps the
		// stored one, as an empty string does.
		keepRecords: f(`INSERT INTO {s}.history AS h (id, message_id, sender, subject, campaign, list, metadata, created, updated)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
				$7::jsonb[], $8::timestamptz[], $9::timestamptz[]) ORDER BY 1
			ON CONFLICT (id) DO UPDATE SET
				message_id = CASE WHEN EXCLUDED.message_id = '' THEN h.message_id ELSE EXCLUDED.message_id END,
				sender     = CASE WHEN EXCLUDED.sender = '' THEN h.sender ELSE EXCLUDED.sender END,
				subject    = CASE WHEN EXCLUDED.subject = '' THEN h.subject ELSE EXCLUDED.subject END,
				campaign   = CASE WHEN EXCLUDED.campaign = '' THEN h.campaign ELSE EXCLUDED.campaign END,
				list       = CASE WHEN EXCLUDED.list = '' THEN h.list ELSE EXCLUDED.list END,
				metadata   = coalesce(EXCLUDED.metadata, h.metadata),
				created    = CASE WHEN EXCLUDED.created = $10 THEN h.created ELSE EXCLUDED.created END,
				updated    = CASE WHEN EXCLUDED.updated = $10 THEN h.updated ELSE EXCLUDED.updated END`),
		// A new entry goes after the record's stored ones; a replaced one
		// keeps its place and its notes, read from the row it locks.
		keepEntries: f(`INSERT INTO {s}.history_rcpt AS r (id, addr_fold, pos, entry)
			SELECT u.id, u.fold,
				coalesce((SELECT max(x.pos) + 1 FROM {s}.history_rcpt x WHERE x.id = u.id), 0) + u.ord, u.entry
			FROM unnest($1::text[], $2::text[], $3::integer[], $4::jsonb[]) AS u(id, fold, ord, entry)
			ORDER BY u.id, u.fold
			ON CONFLICT (id, addr_fold) DO UPDATE SET entry = EXCLUDED.entry || jsonb_build_object('notes',
				coalesce(r.entry->'notes', '[]') || coalesce(EXCLUDED.entry->'notes', '[]'))`),
		record: f(`SELECT ` + historyCols + `, ` + entries + ` FROM {s}.history h WHERE h.id = $1`),
		note: f(`UPDATE {s}.history_rcpt
			SET entry = jsonb_set(entry, '{notes}', coalesce(entry->'notes', '[]') || $3::jsonb)
			WHERE id = $1 AND addr_fold = $2`),
		expire: f(`DELETE FROM {s}.history h USING (
				SELECT id FROM {s}.history WHERE updated < $1 ORDER BY updated, id LIMIT $2
				FOR UPDATE SKIP LOCKED) old
			WHERE h.id = old.id`),
		list: f(`SELECT ` + historyCols + `, ` + entries + ` FROM {s}.history h
			WHERE true{filter} ORDER BY h.id DESC LIMIT $1`),
		// Served by history_rcpt_addr, read backwards from the cursor.
		listRcpt: f(`SELECT ` + historyCols + `, jsonb_build_array(r.entry)
			FROM {s}.history_rcpt r JOIN {s}.history h ON h.id = r.id
			WHERE r.addr_fold = $2{filter} ORDER BY r.id DESC LIMIT $1`),
		forgetLock: f(`SELECT h.id FROM {s}.history h
			WHERE h.id IN (SELECT id FROM {s}.history_rcpt WHERE addr_fold = $1)
			ORDER BY h.id FOR UPDATE OF h`),
		// The sub-statements and the final SELECT share one snapshot: it
		// reads the records as they were. Under the locks of forgetLock no
		// entry comes or goes meanwhile.
		forget: f(`WITH d AS (
				DELETE FROM {s}.history_rcpt WHERE addr_fold = $1 AND id = ANY($2) RETURNING id, entry),
			gone AS (
				DELETE FROM {s}.history h WHERE h.id = ANY($2) AND NOT EXISTS (
					SELECT 1 FROM {s}.history_rcpt r WHERE r.id = h.id AND r.addr_fold <> $1))
			SELECT ` + historyCols + `, jsonb_build_array(d.entry)
			FROM d JOIN {s}.history h ON h.id = d.id ORDER BY h.id DESC`),
	}
}

// Records implements queue.HistoryStore: one query. With f.Recipient it
// reads the address's entries from the index history_rcpt_addr, newest
// first from the cursor, and each entry's record by its key, so a page
// costs about Limit index probes however many records the store holds.
// Campaign, Since and Until are checked on the records read, so a page of
// a rare campaign among the address's many records reads more of them.
// Without a Recipient it reads history in ID order from the cursor
// (history_campaign serves a Campaign). Since and Until are compared to
// the microsecond. A Recipient or Campaign that PostgreSQL cannot hold (a
// NUL byte, or bytes that are not UTF-8) matches no record; such a Before
// (never a cursor Records returned) gives queue.ErrInvalid.
func (s *Store) Records(ctx context.Context, f queue.RecordFilter) ([]queue.Record, string, error) {
	if err := s.check(ctx); err != nil {
		return nil, "", err
	}
	sql, args, limit, err := s.recordsQuery(&f)
	if err != nil {
		return nil, "", err
	}
	if !pgText(f.Recipient) || !pgText(f.Campaign) {
		return nil, "", nil // never stored
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", s.dbError("records", err)
	}
	out, err := scanRecords(rows)
	if err != nil {
		return nil, "", s.dbError("records", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// Expire implements queue.HistoryStore: one DELETE of the oldest rows
// (history_updated), their entries going with them. Rows that another
// transaction holds (a Keep under way) are passed over. cutoff is
// compared to the microsecond.
func (s *Store) Expire(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, fmt.Errorf("%w: history expiry with limit %d", queue.ErrInvalid, limit)
	}
	tag, err := s.pool.Exec(ctx, s.hsql.expire, cutoff, int64(limit))
	if err != nil {
		return 0, s.dbError("expire", err)
	}
	return int(tag.RowsAffected()), nil
}

// Forget implements queue.HistoryStore, in one transaction: it locks the
// records that hold addr (in ID order, as Keep does), then removes addr's
// entries and the records left without one, and returns them newest
// first. A Keep or Note of one of those records waits for it, or goes
// first.
func (s *Store) Forget(ctx context.Context, addr string) ([]queue.Record, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if addr == "" || !pgText(addr) {
		return nil, nil // never stored
	}
	fold := queue.FoldAddr(addr)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, s.dbError("forget", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	var ids []string
	rows, err := tx.Query(ctx, s.hsql.forgetLock, fold)
	if err != nil {
		return nil, s.dbError("forget", err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, s.dbError("forget", err)
		}
		ids = append(ids, id)
	}
	if rows.Close(); rows.Err() != nil {
		return nil, s.dbError("forget", rows.Err())
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err = tx.Query(ctx, s.hsql.forget, fold, ids)
	if err != nil {
		return nil, s.dbError("forget", err)
	}
	out, err := scanRecords(rows)
	if err != nil {
		return nil, s.dbError("forget", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, s.dbError("forget", err)
	}
	return out, nil
}

// recordsQuery returns the query of Records for f, its arguments, and the
// page size; it asks for one record more, to know whether there is a next
// page.
func (s *Store) recordsQuery(f *queue.RecordFilter) (sql string, args []any, limit int, err error) {
	if f.Limit < 0 {
		return "", nil, 0, fmt.Errorf("%w: history filter: negative limit %d", queue.ErrInvalid, f.Limit)
	}
	if !pgText(f.Before) {
		return "", nil, 0, fmt.Errorf("%w: history filter: a cursor that is not UTF-8 or holds a NUL byte", queue.ErrInvalid)
	}
	limit = f.Limit
	if limit == 0 {
		limit = queue.DefaultRecordLimit
	}
	args = []any{int64(limit) + 1}
	sql = s.hsql.list
	if f.Recipient != "" {
		sql = s.hsql.listRcpt
		args = append(args, queue.FoldAddr(f.Recipient))
	}
	var filter strings.Builder
	cond := func(c string, v any) {
		args = append(args, v)
		filter.WriteString(" AND " + c + " $" + strconv.Itoa(len(args)))
	}
	if f.Before != "" {
		if f.Recipient != "" {
			cond("r.id <", f.Before) // the index's column, for the range scan
		} else {
			cond("h.id <", f.Before)
		}
	}
	if f.Campaign != "" {
		cond("h.campaign =", f.Campaign)
	}
	if !f.Since.IsZero() {
		cond("h.created >=", f.Since)
	}
	if !f.Until.IsZero() {
		cond("h.created <", f.Until)
	}
	return strings.Replace(sql, "{filter}", filter.String(), 1), args, limit, nil
}
