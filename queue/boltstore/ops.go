package boltstore

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/mxrelay/mxrelay/queue"
)

var tokenSeq atomic.Uint64 // only makes tokens unique; prefix differs per Open

// Put implements queue.Store.
func (s *Store) Put(ctx context.Context, job *queue.Job) error {
	_, err := s.put(ctx, job, nil)
	return err
}

// PutLeased implements queue.PutLeaser: the job's record, its message and
// its lease go into one commit, shared like every write with other callers'.
func (s *Store) PutLeased(ctx context.Context, job *queue.Job, req queue.ClaimRequest) (*queue.Job, error) {
	return s.put(ctx, job, &req)
}

// put stores job and, when req is not nil and allows it, leases it in the
// same transaction; it returns the leased job, or nil.
func (s *Store) put(ctx context.Context, job *queue.Job, req *queue.ClaimRequest) (*queue.Job, error) {
	if job == nil || job.ID == "" {
		return nil, fmt.Errorf("%w: no id", queue.ErrInvalid)
	}
	if strings.IndexByte(job.RoutingKey, 0) >= 0 {
		return nil, fmt.Errorf("%w: NUL in routing key", queue.ErrInvalid)
	}
	id := []byte(job.ID)
	r := toRecord(job)
	r.Due = r.Next
	val := encode(r)
	msg := job.Message
	if msg == nil {
		msg = []byte{}
	}
	// The leased record is made here, outside the commit loop, and used
	// only if the job's key is under its limit when the write runs.
	var lr *record
	var lval []byte
	var now int64
	if req != nil && !r.Held && r.Next <= nanos(req.Now) {
		now = nanos(req.Now)
		l := *r
		l.LeaseOwner = req.Owner
		l.LeaseToken = s.prefix + "." + strconv.FormatUint(tokenSeq.Add(1), 36)
		l.LeaseUntil = nanos(req.Now.Add(req.Lease))
		l.Due = l.LeaseUntil // an expired lease makes the job due again
		lr, lval = &l, encode(&l)
	}
	leased := false
	err := s.update(ctx, func(t tx) error {
		leased = false
		if t.b(bJobs).Get(id) != nil {
			return fmt.Errorf("%w: %s", queue.ErrExists, job.ID)
		}
		if err := t.b(bMsgs).Put(id, msg); err != nil {
			return err
		}
		if err := t.add(kTotal, 1); err != nil {
			return err
		}
		if r.Held {
			if err := t.b(bHeld).Put(id, nil); err != nil {
				return err
			}
			if err := t.add(kHeld, 1); err != nil {
				return err
			}
			return t.b(bJobs).Put(id, val)
		}
		if lr != nil && (req.PerKey <= 0 || t.activeLeases(r.Key, now) < req.PerKey) {
			leased = true
			if err := t.b(bLeased).Put(leasedKey(r.Key, job.ID), be64(lr.LeaseUntil)); err != nil {
				return err
			}
			if err := t.schedule(r.Key, job.ID, lr.Due); err != nil {
				return err
			}
			return t.b(bJobs).Put(id, lval)
		}
		if err := t.schedule(r.Key, job.ID, r.Due); err != nil {
			return err
		}
		return t.b(bJobs).Put(id, val)
	})
	if err != nil || !leased {
		return nil, err
	}
	j := lr.job(job.ID, append([]byte(nil), msg...))
	j.Metadata = maps.Clone(j.Metadata) // the record shares the caller's
	return j, nil
}

// Get implements queue.Store.
func (s *Store) Get(ctx context.Context, id string) (*queue.Job, error) {
	var j *queue.Job
	err := s.view(ctx, func(t tx) error {
		v := t.b(bJobs).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("%w: %s", queue.ErrNotFound, id)
		}
		r, err := decode(id, v)
		if err != nil {
			return err
		}
		j = r.job(id, append([]byte(nil), t.b(bMsgs).Get([]byte(id))...))
		return nil
	})
	return j, err
}

// Claim implements queue.Store. A look in a read transaction first finds
// whether anything is due, so that a Claim that finds nothing costs no
// commit.
func (s *Store) Claim(ctx context.Context, req queue.ClaimRequest) ([]*queue.Job, error) {
	if req.Max <= 0 {
		return nil, ctx.Err()
	}
	found := false
	if err := s.view(ctx, func(t tx) error {
		found = len(t.due(1, req.PerKey, nanos(req.Now))) > 0
		return nil
	}); err != nil || !found {
		return nil, err
	}
	var c claimed
	err := s.update(ctx, func(t tx) error { return s.claim(t, req, &c) })
	return s.claimedJobs(&c, err)
}

// FinishClaim implements queue.FinishClaimer: the Finish and the Claim
// share one write, and so one commit.
func (s *Store) FinishClaim(ctx context.Context, job *queue.Job, req queue.ClaimRequest) ([]*queue.Job, error) {
	var c claimed
	err := s.update(ctx, func(t tx) error {
		c = claimed{}
		if err := t.finish(job); err != nil {
			return err
		}
		return s.claim(t, req, &c)
	})
	return s.claimedJobs(&c, err)
}

// claimed is what one claim in a transaction took.
type claimed struct {
	jobs    []*queue.Job
	corrupt []error // records set aside
}

// claimedJobs reports the records a claim set aside and returns its jobs.
func (s *Store) claimedJobs(c *claimed, err error) ([]*queue.Job, error) {
	for _, e := range c.corrupt {
		s.log(slog.LevelError, "boltstore: corrupt record set aside", "err", e)
	}
	if err != nil {
		return nil, err
	}
	return c.jobs, nil
}

// claim leases up to req.Max due jobs in t into c, which it first empties
// (the write may run again).
func (s *Store) claim(t tx, req queue.ClaimRequest, c *claimed) error {
	c.jobs, c.corrupt = c.jobs[:0], c.corrupt[:0]
	if req.Max <= 0 {
		return nil
	}
	now := nanos(req.Now)
	until := nanos(req.Now.Add(req.Lease))
	for _, p := range t.due(req.Max, req.PerKey, now) {
		id := []byte(p.id)
		v := t.b(bJobs).Get(id)
		r, derr := decode(p.id, v)
		if v == nil || derr != nil {
			// Missing or unreadable: take it out of the index.
			if err := t.unschedule(p.key, p.id, p.due); err != nil {
				return err
			}
			if v != nil {
				c.corrupt = append(c.corrupt, derr)
				if err := t.setAside(p.key, p.id, derr); err != nil {
					return err
				}
			}
			continue
		}
		if err := t.unschedule(p.key, p.id, p.due); err != nil {
			return err
		}
		r.LeaseOwner = req.Owner
		r.LeaseToken = s.prefix + "." + strconv.FormatUint(tokenSeq.Add(1), 36)
		r.LeaseUntil = until
		r.Due = until // an expired lease makes the job due again
		if err := t.schedule(p.key, p.id, r.Due); err != nil {
			return err
		}
		if err := t.b(bLeased).Put(leasedKey(p.key, p.id), be64(until)); err != nil {
			return err
		}
		if err := t.b(bJobs).Put(id, encode(r)); err != nil {
			return err
		}
		c.jobs = append(c.jobs, r.job(p.id, append([]byte(nil), t.b(bMsgs).Get(id)...)))
	}
	return nil
}

// setAside records an undecodable job so that Stats counts it; it stays in
// the jobs bucket for Get to report and Cancel to remove.
func (t tx) setAside(key, id string, cause error) error {
	if err := t.b(bLeased).Delete(leasedKey(key, id)); err != nil {
		return err
	}
	if t.b(bHeld).Get([]byte(id)) != nil {
		if err := t.b(bHeld).Delete([]byte(id)); err != nil {
			return err
		}
		if err := t.add(kHeld, -1); err != nil {
			return err
		}
	}
	return t.b(bCorrupt).Put([]byte(id), []byte(cause.Error()))
}

// Finish implements queue.Store.
func (s *Store) Finish(ctx context.Context, job *queue.Job) error {
	return s.update(ctx, func(t tx) error { return t.finish(job) })
}

// finish records an attempt of job, fenced by its lease token.
func (t tx) finish(job *queue.Job) error {
	id := []byte(job.ID)
	v := t.b(bJobs).Get(id)
	if v == nil {
		return fmt.Errorf("%w: %s", queue.ErrNotFound, job.ID)
	}
	r, err := decode(job.ID, v)
	if err != nil {
		return err
	}
	if r.LeaseToken == "" || r.LeaseToken != job.Lease.Token {
		return fmt.Errorf("%w: job %s", queue.ErrLeaseLost, job.ID)
	}
	if err := t.b(bLeased).Delete(leasedKey(r.Key, job.ID)); err != nil {
		return err
	}
	if job.Done() {
		return t.remove(job.ID, r)
	}
	if !r.Held {
		if err := t.unschedule(r.Key, job.ID, r.Due); err != nil {
			return err
		}
	}
	r.setRcpts(job.Recipients)
	r.Attempts, r.Next, r.LastError = job.Attempts, nanos(job.NextAttempt), job.LastError
	r.LeaseOwner, r.LeaseToken, r.LeaseUntil = "", "", 0
	r.Due = r.Next
	if !r.Held {
		if err := t.schedule(r.Key, job.ID, r.Due); err != nil {
			return err
		}
	}
	return t.b(bJobs).Put(id, encode(r))
}

// remove deletes a job and its index entries; r is nil for a corrupt one.
func (t tx) remove(id string, r *record) error {
	bid := []byte(id)
	if r != nil {
		if r.LeaseToken != "" {
			if err := t.b(bLeased).Delete(leasedKey(r.Key, id)); err != nil {
				return err
			}
		}
		if !r.Held {
			if err := t.unschedule(r.Key, id, r.Due); err != nil {
				return err
			}
		}
	}
	if t.b(bHeld).Get(bid) != nil {
		if err := t.b(bHeld).Delete(bid); err != nil {
			return err
		}
		if err := t.add(kHeld, -1); err != nil {
			return err
		}
	}
	for _, b := range [][]byte{bJobs, bMsgs, bCorrupt} {
		if err := t.b(b).Delete(bid); err != nil {
			return err
		}
	}
	return t.add(kTotal, -1)
}

// Set implements queue.Store.
func (s *Store) Set(ctx context.Context, id string, a queue.Action) error {
	if a < queue.ActionHold || a > queue.ActionRetry {
		return fmt.Errorf("%w: unknown action %d", queue.ErrInvalid, a)
	}
	return s.update(ctx, func(t tx) error {
		bid := []byte(id)
		v := t.b(bJobs).Get(bid)
		if v == nil {
			return fmt.Errorf("%w: %s", queue.ErrNotFound, id)
		}
		r, err := decode(id, v)
		if err != nil {
			if a == queue.ActionCancel {
				return t.remove(id, nil) // a corrupt record can only be removed
			}
			return err
		}
		switch a {
		case queue.ActionCancel:
			return t.remove(id, r)
		case queue.ActionHold:
			if r.Held {
				return nil
			}
			if err := t.unschedule(r.Key, id, r.Due); err != nil {
				return err
			}
			if err := t.b(bHeld).Put(bid, nil); err != nil {
				return err
			}
			if err := t.add(kHeld, 1); err != nil {
				return err
			}
			r.Held = true
		case queue.ActionRelease:
			if !r.Held {
				return nil
			}
			if err := t.b(bHeld).Delete(bid); err != nil {
				return err
			}
			if err := t.add(kHeld, -1); err != nil {
				return err
			}
			r.Held = false
			r.Due = r.Next
			if r.LeaseToken != "" {
				r.Due = r.LeaseUntil
			}
			if err := t.schedule(r.Key, id, r.Due); err != nil {
				return err
			}
		case queue.ActionRetry:
			// The zero time is stored as 0 (as every record time is),
			// which reads back as the zero time and stands in the due
			// index at the Unix epoch, before any real schedule. A held
			// job is scheduled when released, at Next or its lease's
			// end; a leased one stays due at its lease's end.
			r.Next = 0
			if !r.Held && r.LeaseToken == "" {
				if err := t.unschedule(r.Key, id, r.Due); err != nil {
					return err
				}
				r.Due = r.Next
				if err := t.schedule(r.Key, id, r.Due); err != nil {
					return err
				}
			}
		}
		return t.b(bJobs).Put(bid, encode(r))
	})
}
