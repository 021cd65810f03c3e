package boltstore

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/mxrelay/mxrelay/queue"
)

var tokenSeq atomic.Uint64 // only makes tokens unique; prefix differs per Open

// Put implements queue.Store.
func (s *Store) Put(ctx context.Context, job *queue.Job) error {
	if job == nil || job.ID == "" {
		return fmt.Errorf("%w: no id", queue.ErrInvalid)
	}
	if strings.IndexByte(job.RoutingKey, 0) >= 0 {
		return fmt.Errorf("%w: NUL in routing key", queue.ErrInvalid)
	}
	id := []byte(job.ID)
	r := toRecord(job)
	r.Due = r.Next
	val := encode(r)
	msg := job.Message
	if msg == nil {
		msg = []byte{}
	}
	return s.update(ctx, func(t tx) error {
		if t.b(bJobs).Get(id) != nil {
			return fmt.Errorf("%w: %s", queue.ErrExists, job.ID)
		}
		if err := t.b(bJobs).Put(id, val); err != nil {
			return err
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
			return t.add(kHeld, 1)
		}
		return t.schedule(r.Key, job.ID, r.Due)
	})
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

// Claim implements queue.Store.
func (s *Store) Claim(ctx context.Context, req queue.ClaimRequest) ([]*queue.Job, error) {
	if req.Max <= 0 {
		return nil, ctx.Err()
	}
	now := nanos(req.Now)
	until := nanos(req.Now.Add(req.Lease))
	var jobs []*queue.Job
	var corrupt []error
	err := s.update(ctx, func(t tx) error {
		jobs, corrupt = jobs[:0], corrupt[:0]
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
					corrupt = append(corrupt, derr)
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
			jobs = append(jobs, r.job(p.id, append([]byte(nil), t.b(bMsgs).Get(id)...)))
		}
		return nil
	})
	for _, e := range corrupt {
		s.log(slog.LevelError, "boltstore: corrupt record set aside", "err", e)
	}
	if err != nil {
		return nil, err
	}
	return jobs, nil
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
	return s.update(ctx, func(t tx) error {
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
	})
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
