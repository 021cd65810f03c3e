package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mxrelay/mxrelay/queue"
)

// Get implements queue.Store.
func (s *Store) Get(ctx context.Context, id string) (*queue.Job, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var r row
	err := s.pool.QueryRow(ctx, s.sql.get, id).Scan(r.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", queue.ErrNotFound, id)
	}
	if err != nil {
		return nil, s.dbError("get", err)
	}
	return r.job()
}

// Finish implements queue.Store: one statement, fenced by the lease token.
func (s *Store) Finish(ctx context.Context, job *queue.Job) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	var (
		changed int
		exists  bool
		err     error
	)
	if job.Done() {
		err = s.pool.QueryRow(ctx, s.sql.finishDone, job.ID, job.Lease.Token).Scan(&changed, &exists)
	} else {
		states := make([]int16, len(job.Recipients))
		replies := make([]string, len(job.Recipients))
		for i, rc := range job.Recipients {
			states[i], replies[i] = int16(rc.State), rc.Reply
		}
		err = s.pool.QueryRow(ctx, s.sql.finishKeep, job.ID, job.Lease.Token, states, replies,
			int32(job.Attempts), job.NextAttempt, job.LastError).Scan(&changed, &exists)
	}
	switch {
	case err != nil:
		return s.dbError("finish "+job.ID, err)
	case changed == 1:
		return nil
	case exists:
		return fmt.Errorf("%w: job %s", queue.ErrLeaseLost, job.ID)
	default:
		return fmt.Errorf("%w: %s", queue.ErrNotFound, job.ID)
	}
}

// Set implements queue.Store. Release and Retry send a NOTIFY so that
// idle workers of every process look at once. Retry stores the zero
// time.Time as next_attempt: timestamptz holds it (the first instant of
// year 1, before any real schedule), and Get reads it back as the zero
// time. Hold, Release and Retry change columns without decoding the row;
// the table's constraints keep rows decodable.
func (s *Store) Set(ctx context.Context, id string, a queue.Action) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	var (
		n   int64
		err error
	)
	switch a {
	case queue.ActionHold:
		var tag interface{ RowsAffected() int64 }
		tag, err = s.pool.Exec(ctx, s.sql.hold, id)
		if err == nil {
			n = tag.RowsAffected()
		}
	case queue.ActionRelease:
		err = s.pool.QueryRow(ctx, s.sql.release, id, s.channel).Scan(&n)
	case queue.ActionRetry:
		err = s.pool.QueryRow(ctx, s.sql.retry, id, time.Time{}, s.channel).Scan(&n)
	case queue.ActionCancel:
		var tag interface{ RowsAffected() int64 }
		tag, err = s.pool.Exec(ctx, s.sql.cancel, id)
		if err == nil {
			n = tag.RowsAffected()
		}
	default:
		return fmt.Errorf("%w: unknown action %d", queue.ErrInvalid, a)
	}
	if err != nil {
		return s.dbError("set "+id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", queue.ErrNotFound, id)
	}
	return nil
}

// List implements queue.Store.
func (s *Store) List(ctx context.Context, r queue.ListRequest) ([]*queue.Job, string, error) {
	if err := s.check(ctx); err != nil {
		return nil, "", err
	}
	limit := r.Limit
	if limit <= 0 {
		limit = 100
	}
	filter := "true"
	switch r.State {
	case queue.StateAny:
	case queue.StateQueued:
		filter = "NOT held AND lease_token IS NULL"
	case queue.StateActive:
		filter = "NOT held AND lease_token IS NOT NULL"
	case queue.StateHeld:
		filter = "held"
	default:
		return nil, "", fmt.Errorf("%w: unknown state %d", queue.ErrInvalid, r.State)
	}
	rows, err := s.pool.Query(ctx, strings.Replace(s.sql.list, "{filter}", filter, 1), r.After, limit+1)
	if err != nil {
		return nil, "", s.dbError("list", err)
	}
	var out []*queue.Job
	err = scanJobs(rows, nil, func(j *queue.Job, jerr error) {
		if jerr == nil {
			j.Message = nil
			out = append(out, j)
		}
	})
	if err != nil {
		return nil, "", s.dbError("list", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// Stats implements queue.Store. The table's constraints keep records
// decodable, so Corrupt stays 0.
func (s *Store) Stats(ctx context.Context) (queue.Stats, error) {
	var st queue.Stats
	if err := s.check(ctx); err != nil {
		return st, err
	}
	if err := s.pool.QueryRow(ctx, s.sql.stats).Scan(&st.Queued, &st.Active, &st.Held); err != nil {
		return st, s.dbError("stats", err)
	}
	return st, nil
}
