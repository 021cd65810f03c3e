package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mxrelay/mxrelay/queue"
)

// putReq is one Put waiting for a group commit.
type putReq struct {
	id     string
	params []any
	done   chan error // buffered: the committer never blocks
}

// Put implements queue.Store. Puts that arrive while another commit is in
// flight are gathered into one multi-row INSERT, committed together; each
// returns once that transaction committed (durable as the server's
// synchronous_commit setting makes commits, by default on disk). The same
// transaction sends the NOTIFY that wakes other processes. If ctx ends
// while the commit is in flight, Put returns ctx's error and the job may or
// may not have been stored, as with any request to a remote database.
func (s *Store) Put(ctx context.Context, job *queue.Job) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if job == nil || job.ID == "" {
		return fmt.Errorf("%w: no id", queue.ErrInvalid)
	}
	params, err := insertParams(job)
	if err != nil {
		return err
	}
	r := &putReq{id: job.ID, params: params, done: make(chan error, 1)}
	select {
	case s.puts <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return queue.ErrClosed
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return queue.ErrClosed
	}
}

// commitLoop gathers waiting Puts and commits them together until Close.
func (s *Store) commitLoop() {
	defer s.wg.Done()
	batch := make([]*putReq, 0, s.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case r := <-s.puts:
			batch = append(batch, r)
		case <-s.ctx.Done():
			return
		}
	more:
		for len(batch) < s.opts.MaxBatch {
			select {
			case r := <-s.puts:
				batch = append(batch, r)
			default:
				break more
			}
		}
		s.commit(batch)
	}
}

// commit inserts batch in one statement (one implicit transaction) and
// tells each request its outcome.
func (s *Store) commit(batch []*putReq) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.CommitTimeout)
	defer cancel()
	var sb strings.Builder
	sb.WriteString("WITH ins AS (INSERT INTO ")
	sb.WriteString(s.q)
	sb.WriteString(".jobs (" + insertCols + ") VALUES ")
	args := make([]any, 0, 1+len(batch)*numInsertParams)
	args = append(args, s.channel)
	for i, r := range batch {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('(')
		base := len(args)
		for k := range numInsertParams {
			sb.WriteString("$" + strconv.Itoa(base+k+1) + ",")
		}
		// due = next_attempt
		sb.WriteString("$" + strconv.Itoa(base+9) + ")")
		args = append(args, r.params...)
	}
	// NOTIFY once (merged per transaction) if any new job can be claimed.
	sb.WriteString(` ON CONFLICT (id) DO NOTHING RETURNING id, held)
		SELECT id FROM ins
		UNION ALL
		SELECT NULL FROM (SELECT pg_notify($1, '') FROM ins WHERE NOT held LIMIT 1) n`)
	inserted := make(map[string]bool, len(batch))
	rows, err := s.pool.Query(ctx, sb.String(), args...)
	if err == nil {
		for rows.Next() {
			var id *string
			if err = rows.Scan(&id); err != nil {
				break
			}
			if id != nil {
				inserted[*id] = true
			}
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	var pgErr *pgconn.PgError
	if err != nil && len(batch) > 1 && errors.As(err, &pgErr) &&
		(strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")) {
		// One job's data was refused (say, a NUL byte in a text field):
		// do not fail its neighbours with it.
		for _, r := range batch {
			s.commit([]*putReq{r})
		}
		return
	}
	if err != nil {
		err = s.dbError("put", err)
		for _, r := range batch {
			r.done <- err
		}
		return
	}
	for _, r := range batch {
		if inserted[r.id] {
			r.done <- nil
			delete(inserted, r.id) // a second Put of the same id in this batch lost
			continue
		}
		r.done <- fmt.Errorf("%w: %s", queue.ErrExists, r.id)
	}
}
