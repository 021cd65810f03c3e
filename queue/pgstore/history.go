package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mxrelay/mxrelay/queue"
)

var _ queue.HistoryStore = (*Store)(nil)

// Keep implements queue.HistoryStore: one round trip (once its statements
// are prepared on the connection), two statements in one transaction (a
// pgx batch runs as one). The first upserts the
// records' own fields, in ID order, and so locks their rows until the
// commit: Keeps of one record, from any process, follow each other, and
// the second statement, which sees what they committed, places new
// entries after the stored ones. The second upserts the entries; one that
// replaces a stored entry concatenates the notes in the row it updates,
// so that a note another process adds meanwhile (Note) is kept. Records
// with one ID in one call are merged first, in order; so are entries for
// one address (as queue.FoldAddr folds it) in one record.
//
// Times are stored to the microsecond (PostgreSQL's precision),
// truncated, and read back in UTC; a zero time is read back as the zero
// time. queue.CheckRecord refuses the text PostgreSQL cannot hold (a NUL
// byte, bytes that are not UTF-8) with queue.ErrInvalid.
func (s *Store) Keep(ctx context.Context, recs ...queue.Record) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	for i := range recs {
		if err := queue.CheckRecord(&recs[i]); err != nil {
			return err
		}
	}
	if len(recs) == 0 {
		return nil
	}
	merged := mergeByID(recs)
	var (
		n                              = len(merged)
		ids, msgIDs, senders, subjects = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		campaigns, lists               = make([]string, n), make([]string, n)
		metadata                       = make([]*string, n)
		created, updated               = make([]time.Time, n), make([]time.Time, n)
		rIDs, rFolds                   []string
		rOrds                          []int32
		rEntries                       []string
	)
	for i := range merged {
		r := &merged[i]
		ids[i], msgIDs[i], senders[i], subjects[i] = r.ID, r.MessageID, r.From, r.Subject
		campaigns[i], lists[i] = r.Campaign, r.List
		if r.Metadata != nil {
			b, err := json.Marshal(r.Metadata)
			if err != nil {
				return fmt.Errorf("pgstore: keep %s: %w", r.ID, err)
			}
			m := string(b)
			metadata[i] = &m
		}
		created[i], updated[i] = pgTime(r.Created), pgTime(r.Updated)
		for j := range r.Recipients {
			b, err := encodeEntry(&r.Recipients[j])
			if err != nil {
				return fmt.Errorf("pgstore: keep %s: %w", r.ID, err)
			}
			rIDs, rFolds = append(rIDs, r.ID), append(rFolds, queue.FoldAddr(r.Recipients[j].Addr))
			rOrds, rEntries = append(rOrds, int32(j)), append(rEntries, b)
		}
	}
	b := &pgx.Batch{}
	b.Queue(s.hsql.keepRecords,
		ids, msgIDs, senders, subjects, campaigns, lists, metadata, created, updated, time.Time{})
	if len(rIDs) > 0 {
		b.Queue(s.hsql.keepEntries, rIDs, rFolds, rOrds, rEntries)
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return s.dbError("keep", err)
	}
	return nil
}

// Record implements queue.HistoryStore.
func (s *Store) Record(ctx context.Context, id string) (*queue.Record, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if id == "" || !pgText(id) {
		return nil, fmt.Errorf("%w: history record %q", queue.ErrNotFound, id)
	}
	rows, err := s.pool.Query(ctx, s.hsql.record, id)
	if err != nil {
		return nil, s.dbError("record", err)
	}
	recs, err := scanRecords(rows)
	if err != nil {
		return nil, s.dbError("record", err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: history record %q", queue.ErrNotFound, id)
	}
	return &recs[0], nil
}

// Note implements queue.HistoryStore: one UPDATE that appends to the
// notes in the row, so that notes added at once by several processes are
// all kept. Its time is stored to the microsecond. A note whose text
// PostgreSQL cannot hold gives queue.ErrInvalid.
func (s *Store) Note(ctx context.Context, id, addr string, n queue.Note) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if !pgText(n.Type) || !pgText(n.Detail) || !pgText(n.UserAgent) || !pgText(n.Client) {
		return fmt.Errorf("%w: a note for %q in history record %q holds a NUL byte or invalid UTF-8",
			queue.ErrInvalid, addr, id)
	}
	if id == "" || addr == "" || !pgText(id) || !pgText(addr) {
		return fmt.Errorf("%w: history record %q with recipient %q", queue.ErrNotFound, id, addr)
	}
	n.Time = pgTime(n.Time)
	b, err := json.Marshal([]queue.Note{n})
	if err != nil {
		return fmt.Errorf("pgstore: note %s: %w", id, err)
	}
	tag, err := s.pool.Exec(ctx, s.hsql.note, id, queue.FoldAddr(addr), string(b))
	if err != nil {
		return s.dbError("note", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: history record %q with recipient %q", queue.ErrNotFound, id, addr)
	}
	return nil
}

// mergeByID merges the records that share an ID, in order, into one per
// ID (at the place of the first), and the entries of one record that share
// a folded address into one (queue.MergeRecord). The result may share
// Metadata and Notes with recs, which Keep only reads.
func mergeByID(recs []queue.Record) []queue.Record {
	out := make([]queue.Record, 0, len(recs))
	at := make(map[string]int, len(recs))
	for i := range recs {
		j, ok := at[recs[i].ID]
		if !ok {
			j = len(out)
			at[recs[i].ID] = j
			out = append(out, queue.Record{ID: recs[i].ID})
		}
		out[j] = queue.MergeRecord(&out[j], &recs[i])
	}
	return out
}

// pgTime is t as PostgreSQL keeps it: to the microsecond, in UTC (which
// is also how JSON text gives it back).
func pgTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Microsecond).UTC()
}

// encodeEntry is the JSON of o as history_rcpt stores it, times truncated.
func encodeEntry(o *queue.RecipientRecord) (string, error) {
	e := *o
	e.Time = pgTime(e.Time)
	if len(e.Notes) > 0 {
		e.Notes = slices.Clone(e.Notes)
		for i := range e.Notes {
			e.Notes[i].Time = pgTime(e.Notes[i].Time)
		}
	}
	b, err := json.Marshal(&e)
	return string(b), err
}

// histRow is one row of historyCols and a JSON array of entries.
type histRow struct {
	rec      queue.Record
	metadata []byte
	entries  []byte
}

func (r *histRow) dest() []any {
	return []any{&r.rec.ID, &r.rec.MessageID, &r.rec.From, &r.rec.Subject, &r.rec.Campaign, &r.rec.List,
		&r.metadata, &r.rec.Created, &r.rec.Updated, &r.entries}
}

// record decodes r; JSON the table's constraints should have kept out
// gives a *queue.CorruptError.
func (r *histRow) record() (queue.Record, error) {
	rec := r.rec
	rec.Created, rec.Updated = pgTime(rec.Created), pgTime(rec.Updated)
	if r.metadata != nil {
		if err := json.Unmarshal(r.metadata, &rec.Metadata); err != nil {
			return rec, &queue.CorruptError{ID: rec.ID, Err: fmt.Errorf("pgstore: history metadata: %w", err)}
		}
	}
	if r.entries != nil {
		if err := json.Unmarshal(r.entries, &rec.Recipients); err != nil {
			return rec, &queue.CorruptError{ID: rec.ID, Err: fmt.Errorf("pgstore: history entries: %w", err)}
		}
	}
	for i := range rec.Recipients {
		o := &rec.Recipients[i]
		o.Time = pgTime(o.Time)
		if len(o.Notes) == 0 {
			o.Notes = nil
		}
		for j := range o.Notes {
			o.Notes[j].Time = pgTime(o.Notes[j].Time)
		}
	}
	return rec, nil
}

// scanRecords reads rows of historyCols and a JSON array of entries, and
// closes them.
func scanRecords(rows pgx.Rows) ([]queue.Record, error) {
	defer rows.Close()
	var out []queue.Record
	for rows.Next() {
		var r histRow
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, err
		}
		rec, err := r.record()
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}
