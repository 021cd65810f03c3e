package boltstore

import (
	"bytes"
	"context"
	"slices"

	"github.com/mxrelay/mxrelay/queue"
)

// List implements queue.Store. Corrupt records are skipped.
func (s *Store) List(ctx context.Context, req queue.ListRequest) ([]*queue.Job, string, error) {
	limit := req.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []*queue.Job
	more := false
	err := s.view(ctx, func(t tx) error {
		out, more = out[:0], false
		jobs := t.b(bJobs)
		// take adds the job id if it is in the wanted state; it reports
		// false once the page is full and one more was found.
		take := func(id []byte) bool {
			r, err := decode(string(id), jobs.Get(id))
			if err != nil {
				return true
			}
			j := r.job(string(id), nil)
			if req.State != queue.StateAny && queue.StateOf(j) != req.State {
				return true
			}
			if len(out) == limit {
				more = true
				return false
			}
			out = append(out, j)
			return true
		}
		var src [][]byte // ids for the states with their own small index
		switch req.State {
		case queue.StateActive:
			c := t.b(bLeased).Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				id := k[indexByte(k, 0)+1:]
				if string(id) > req.After {
					src = append(src, append([]byte(nil), id...))
				}
			}
			slices.SortFunc(src, bytes.Compare)
		case queue.StateHeld:
			c := t.b(bHeld).Cursor()
			for k, _ := seekAfter(c, req.After); k != nil; k, _ = c.Next() {
				if !take(k) {
					break
				}
			}
			return nil
		default:
			c := jobs.Cursor()
			for k, _ := seekAfter(c, req.After); k != nil; k, _ = c.Next() {
				if !take(k) {
					break
				}
			}
			return nil
		}
		for _, id := range src {
			if !take(id) {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if more {
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

type cursor interface {
	Seek([]byte) ([]byte, []byte)
	Next() ([]byte, []byte)
}

// seekAfter positions c on the first key after after.
func seekAfter(c cursor, after string) ([]byte, []byte) {
	k, v := c.Seek([]byte(after))
	if k != nil && string(k) == after {
		k, v = c.Next()
	}
	return k, v
}

// Stats implements queue.Store. It reads two counters and the leases, so
// its cost follows what is in flight, not the queue's length.
func (s *Store) Stats(ctx context.Context) (queue.Stats, error) {
	var st queue.Stats
	err := s.view(ctx, func(t tx) error {
		total := readCounter(t.b(bMeta), kTotal)
		st.Held = readCounter(t.b(bMeta), kHeld)
		st.Corrupt = t.b(bCorrupt).Stats().KeyN
		c := t.b(bLeased).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if t.b(bHeld).Get(k[indexByte(k, 0)+1:]) == nil {
				st.Active++
			}
		}
		st.Queued = total - st.Held - st.Active - st.Corrupt
		return nil
	})
	return st, err
}
