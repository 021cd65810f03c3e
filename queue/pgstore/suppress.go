package pgstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/mxrelay/mxrelay/queue"
)

var _ queue.SuppressionStore = (*Store)(nil)

// suppressCols are the columns scanSuppression reads, in order.
const suppressCols = `address, scope, reason, source, created, expires`

// Suppress implements queue.SuppressionStore: one statement (an upsert of
// arrays unnested in the server) for all the entries, durable on return.
// Times are stored to the microsecond, truncated; a zero Created is stored
// as the first instant of year 1 and read back as the zero time. Text that
// PostgreSQL cannot hold (a NUL byte, or bytes that are not UTF-8) in
// Address, Scope or Source gives queue.ErrInvalid.
func (s *Store) Suppress(ctx context.Context, entries ...queue.Suppression) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	for i := range entries {
		e := &entries[i]
		if err := queue.CheckSuppression(e); err != nil {
			return err
		}
		for _, f := range [...]struct{ name, v string }{{"address", e.Address}, {"scope", e.Scope}, {"source", e.Source}} {
			if !pgText(f.v) {
				return fmt.Errorf("%w: suppression of %q: the %s is not UTF-8 text without NUL bytes",
					queue.ErrInvalid, e.Address, f.name)
			}
		}
	}
	if len(entries) == 0 {
		return nil
	}
	// One statement may not change a row twice: of two entries with one
	// key, the later one wins.
	last := make(map[[2]string]int, len(entries))
	for i, e := range entries {
		last[[2]string{e.Address, e.Scope}] = i
	}
	n := len(last)
	var (
		addrs, scopes, sources = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		reasons                = make([]int16, 0, n)
		created, expires       = make([]time.Time, 0, n), make([]pgtype.Timestamptz, 0, n)
	)
	for i, e := range entries {
		if last[[2]string{e.Address, e.Scope}] != i {
			continue
		}
		addrs, scopes, sources = append(addrs, e.Address), append(scopes, e.Scope), append(sources, e.Source)
		reasons = append(reasons, int16(e.Reason))
		created = append(created, e.Created.Truncate(time.Microsecond))
		expires = append(expires, pgtype.Timestamptz{Time: e.Expires.Truncate(time.Microsecond), Valid: !e.Expires.IsZero()})
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO `+s.q+`.suppressions (`+suppressCols+`)
		SELECT * FROM unnest($1::text[], $2::text[], $3::smallint[], $4::text[], $5::timestamptz[], $6::timestamptz[])
		ON CONFLICT (address, scope) DO UPDATE SET reason = EXCLUDED.reason, source = EXCLUDED.source,
			created = EXCLUDED.created, expires = EXCLUDED.expires`,
		addrs, scopes, reasons, sources, created, expires)
	if err != nil {
		return s.dbError("suppress", err)
	}
	return nil
}

// Unsuppress implements queue.SuppressionStore.
func (s *Store) Unsuppress(ctx context.Context, address, scope string) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	if address == "" {
		return false, fmt.Errorf("%w: suppression without an address", queue.ErrInvalid)
	}
	if !pgText(address) || !pgText(scope) {
		return false, nil // never stored
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM `+s.q+`.suppressions WHERE address = $1 AND scope = $2`, address, scope)
	if err != nil {
		return false, s.dbError("unsuppress", err)
	}
	return tag.RowsAffected() > 0, nil
}

// Suppressed implements queue.SuppressionStore: one query for the whole
// batch, served by the primary key. now is compared to the microsecond.
func (s *Store) Suppressed(ctx context.Context, scope string, addresses []string, now time.Time) ([]queue.Suppression, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if !pgText(scope) {
		scope = "" // no entry has it: only the all-mail entries apply
	}
	ask := make([]string, 0, len(addresses))
	for _, a := range addresses {
		if a != "" && pgText(a) {
			ask = append(ask, a)
		}
	}
	if len(ask) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+suppressCols+` FROM `+s.q+`.suppressions
		WHERE address = ANY($1) AND scope IN ('', $2) AND (expires IS NULL OR expires > $3)`,
		ask, scope, now)
	if err != nil {
		return nil, s.dbError("suppressed", err)
	}
	out, err := scanSuppressions(rows)
	if err != nil {
		return nil, s.dbError("suppressed", err)
	}
	return out, checkSuppressions(out)
}

// Suppressions implements queue.SuppressionStore: one query, in the order
// of the primary key, from the cursor of f. A filter whose text PostgreSQL
// cannot hold gives queue.ErrInvalid.
func (s *Store) Suppressions(ctx context.Context, f queue.SuppressionFilter) ([]queue.Suppression, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := queue.CheckSuppressionFilter(&f); err != nil {
		return nil, err
	}
	if !pgText(f.AfterAddress) || !pgText(f.AfterScope) || !pgText(f.Address) || !pgText(f.Scope) {
		return nil, fmt.Errorf("%w: suppression filter: text that is not UTF-8 or holds a NUL byte", queue.ErrInvalid)
	}
	limit := f.Limit
	if limit == 0 {
		limit = queue.DefaultSuppressionLimit
	}
	var sb strings.Builder
	args := []any{f.AfterAddress, f.AfterScope}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	sb.WriteString(`SELECT ` + suppressCols + ` FROM ` + s.q + `.suppressions WHERE (address, scope) > ($1, $2)`)
	if f.Address != "" {
		sb.WriteString(` AND address = ` + arg(f.Address))
	}
	switch {
	case f.AllMail:
		sb.WriteString(` AND scope = ''`)
	case f.Scope != "":
		sb.WriteString(` AND scope = ` + arg(f.Scope))
	}
	if f.Reason != 0 {
		sb.WriteString(` AND reason = ` + arg(int16(f.Reason)))
	}
	sb.WriteString(` ORDER BY address, scope LIMIT ` + arg(limit))
	rows, err := s.pool.Query(ctx, sb.String(), args...)
	if err != nil {
		return nil, s.dbError("suppressions", err)
	}
	out, err := scanSuppressions(rows)
	if err != nil {
		return nil, s.dbError("suppressions", err)
	}
	return out, checkSuppressions(out)
}

// scanSuppressions reads rows of suppressCols and closes them.
func scanSuppressions(rows pgx.Rows) ([]queue.Suppression, error) {
	defer rows.Close()
	var out []queue.Suppression
	for rows.Next() {
		var (
			e       queue.Suppression
			reason  int16
			expires *time.Time
		)
		if err := rows.Scan(&e.Address, &e.Scope, &reason, &e.Source, &e.Created, &expires); err != nil {
			return nil, err
		}
		e.Reason = queue.SuppressReason(reason)
		if e.Created.IsZero() {
			e.Created = time.Time{}
		}
		if expires != nil {
			e.Expires = *expires
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// checkSuppressions reports an entry the table's constraints should have
// kept out (a reason this release does not know) as a
// *queue.CorruptSuppressionError.
func checkSuppressions(out []queue.Suppression) error {
	for i := range out {
		if e := &out[i]; !e.Reason.Valid() {
			return &queue.CorruptSuppressionError{Address: e.Address, Scope: e.Scope,
				Err: fmt.Errorf("pgstore: reason %d", int(e.Reason))}
		}
	}
	return nil
}

// pgText reports whether PostgreSQL can store v as text: UTF-8 without NUL
// bytes.
func pgText(v string) bool {
	return utf8.ValidString(v) && strings.IndexByte(v, 0) < 0
}
