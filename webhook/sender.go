package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// maxResponse is how much of an answer's body is read (and discarded),
// so that the connection can be reused without reading a huge one.
const maxResponse = 64 << 10

// sender delivers one endpoint's outbox: claim, POST, ack or retry, one
// batch at a time.
type sender struct {
	cfg   *config
	ep    *Endpoint
	name  string // the outbox key
	wake  chan struct{}
	stats *stats

	failures  int       // consecutive failed POSTs in this Run
	lastErr   error     // the error of the last failed POST, for drop reasons
	retryAt   time.Time // when the batch that failed last is due again
	storeErrs int       // consecutive failed claims
}

// pause is what a sender does after a step: look again at once (zero),
// or wait, for a Notify too when wakeable.
type pause struct {
	wait     time.Duration
	wakeable bool
}

// run steps until ctx ends (nil) or the store is closed (an error).
func (s *sender) run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		p, err := s.step(ctx)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if p.wait <= 0 {
			continue
		}
		var wake chan struct{}
		if p.wakeable {
			wake = s.wake
		}
		timer.Reset(p.wait)
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-wake:
			timer.Stop()
		}
	}
}

// step claims the head of the outbox and deals with it.
func (s *sender) step(ctx context.Context) (pause, error) {
	c := s.cfg
	now := time.Now()
	b, err := c.store.ClaimOutbox(ctx, queue.OutboxClaim{
		Endpoint: s.name, Owner: c.owner, Max: c.batch, MaxBytes: c.maxBytes, Now: now, Lease: c.lease,
	})
	if err != nil {
		if ctx.Err() != nil {
			return pause{}, nil
		}
		if errors.Is(err, queue.ErrClosed) {
			return pause{}, fmt.Errorf("webhook: endpoint %q: claim: %w", s.name, err)
		}
		s.storeErrs++
		c.log.Error("webhook: claiming from the outbox failed", "endpoint", s.name, "failures", s.storeErrs, "err", err)
		return pause{wait: c.poll}, nil
	}
	s.storeErrs = 0
	if b == nil {
		wait := c.poll
		if d := s.retryAt.Sub(now); d > 0 && d < wait {
			wait = d + time.Millisecond // the store's clock is the wall clock: be just past it
		}
		return pause{wait: wait, wakeable: true}, nil
	}
	if n := s.expired(b, now); n > 0 {
		return pause{}, s.drop(ctx, b, n, now)
	}
	body, invalid := encodePayload(b)
	if body == nil {
		return pause{}, s.delivered(ctx, b, 0, invalid)
	}
	if err := s.post(ctx, b, body, now); err != nil {
		return s.failed(ctx, b, err)
	}
	return pause{}, s.delivered(ctx, b, len(b.Items)-len(invalid), invalid)
}

// expired returns how many items at the head of b are older than MaxAge.
func (s *sender) expired(b *queue.OutboxBatch, now time.Time) int {
	n := 0
	for n < len(b.Items) && now.Sub(b.Items[n].Time) > s.cfg.maxAge {
		n++
	}
	return n
}

// post sends body, the payload of b, claimed at claimed, and returns nil
// for a 2xx. Timeout counts from the claim, not from the start of the
// POST: the lease ends at claimed+lease, and the POST must be over by
// then however long the claim took, or another sender could take the
// batch and POST it while this one is still under way.
func (s *sender) post(ctx context.Context, b *queue.OutboxBatch, body []byte, claimed time.Time) error {
	pctx, cancel := context.WithDeadline(ctx, claimed.Add(s.cfg.timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodPost, s.ep.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(SignatureHeader, Sign(time.Now(), body, s.ep.Secrets...))
	req.Header.Set(DeliveryHeader, deliveryID(s.name, b.Items[0].Seq, b.Items[len(b.Items)-1].Seq))
	resp, err := s.cfg.client.Do(req)
	if err != nil {
		// Leave out the *url.Error's "Post <URL>:": the URL may hold a
		// token, and the logs and the store name the endpoint anyway.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		switch {
		case ctx.Err() != nil:
			return fmt.Errorf("%w: %w", errStopped, err)
		case errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("no answer within %v: %w", s.cfg.timeout, err)
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	status := clip(resp.Status, 100)
	if status == "" {
		status = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return &StatusError{StatusCode: resp.StatusCode, Status: status, RetryAfter: retryAfter(resp, time.Now())}
}

// failed gives b back to the store after a failed POST, due after the
// backoff, or at once when Run is stopping.
func (s *sender) failed(ctx context.Context, b *queue.OutboxBatch, err error) (pause, error) {
	now := time.Now()
	id := deliveryID(s.name, b.Items[0].Seq, b.Items[len(b.Items)-1].Seq)
	if errors.Is(err, errStopped) {
		s.cfg.log.Info("webhook: delivery interrupted; the batch is due again at once", "endpoint", s.name, "delivery", id, "err", err)
		return pause{}, s.end(ctx, b, "retry", func(sctx context.Context) error {
			return s.cfg.store.RetryOutbox(sctx, b, now, errStopped.Error())
		})
	}
	s.failures++
	s.lastErr = err
	attempt := max(b.Attempts+1, s.failures)
	var wait time.Duration
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		wait = se.RetryAfter
	} else {
		wait = max(s.cfg.backoff(attempt), 0)
	}
	s.retryAt = now.Add(wait)
	reason := failureReason(err)
	s.stats.update(s.name, func(e *EndpointStats) {
		e.Failures++
		e.LastError = reason
	})
	s.cfg.log.Warn("webhook: delivery failed", "endpoint", s.name, "delivery", id, "items", len(b.Items),
		"attempt", attempt, "retry_in", wait, "err", err)
	return pause{wait: wait}, s.end(ctx, b, "retry", func(sctx context.Context) error {
		return s.cfg.store.RetryOutbox(sctx, b, s.retryAt, reason)
	})
}

// delivered removes b after a 2xx (sent events in it) or when none of its
// items could be sent, and reports the invalid ones once they are gone.
func (s *sender) delivered(ctx context.Context, b *queue.OutboxBatch, sent int, invalid []queue.OutboxItem) error {
	var ackErr error
	fatal := s.end(ctx, b, "ack", func(sctx context.Context) error {
		ackErr = s.cfg.store.AckOutbox(sctx, b)
		return ackErr
	})
	if sent > 0 {
		s.failures, s.lastErr, s.retryAt = 0, nil, time.Time{}
		s.stats.update(s.name, func(e *EndpointStats) {
			e.Batches++
			e.Items += int64(sent)
			e.LastError = ""
			if ackErr != nil {
				e.Unacked++
			}
		})
		s.cfg.log.Debug("webhook: delivered", "endpoint", s.name,
			"delivery", deliveryID(s.name, b.Items[0].Seq, b.Items[len(b.Items)-1].Seq), "items", sent)
	}
	if ackErr == nil && len(invalid) > 0 {
		s.report(invalid, fmt.Errorf("%w: %d items", ErrInvalidItem, len(invalid)), true)
	}
	return fatal
}

// drop removes the first n items of b, which are past MaxAge (or, with
// them, invalid), and reports them.
func (s *sender) drop(ctx context.Context, b *queue.OutboxBatch, n int, now time.Time) error {
	head := *b
	head.Items = b.Items[:n]
	var ackErr error
	fatal := s.end(ctx, &head, "ack", func(sctx context.Context) error {
		ackErr = s.cfg.store.AckOutbox(sctx, &head)
		return ackErr
	})
	if ackErr != nil {
		return fatal
	}
	var old, invalid []queue.OutboxItem
	for _, it := range head.Items {
		if validItem(it.Data) {
			old = append(old, it)
		} else {
			invalid = append(invalid, it)
		}
	}
	if len(old) > 0 {
		reason := fmt.Errorf("%w: %d items, up to %v old (MaxAge %v)", ErrTooOld, len(old),
			now.Sub(old[0].Time).Round(time.Second), s.cfg.maxAge)
		if s.lastErr != nil {
			reason = fmt.Errorf("%w; last attempt: %w", reason, s.lastErr)
		}
		s.report(old, reason, false)
	}
	if len(invalid) > 0 {
		s.report(invalid, fmt.Errorf("%w: %d items", ErrInvalidItem, len(invalid)), true)
	}
	return nil
}

// report counts and logs items removed undelivered, and gives them to
// OnDrop.
func (s *sender) report(items []queue.OutboxItem, reason error, invalid bool) {
	s.stats.update(s.name, func(e *EndpointStats) {
		e.Dropped += int64(len(items))
		if invalid {
			e.Invalid += int64(len(items))
		}
	})
	s.cfg.log.Error("webhook: items dropped undelivered", "endpoint", s.name, "items", len(items),
		"first", items[0].Seq, "last", items[len(items)-1].Seq, "err", reason)
	if s.cfg.onDrop != nil {
		s.cfg.onDrop(s.name, items, reason)
	}
}

// end runs f, an AckOutbox or RetryOutbox of b, under a context that
// survives the end of ctx for storeTimeout, so that the outcome of a
// batch is recorded even when Run is stopping. It logs a failure and
// returns an error only when the store is closed.
func (s *sender) end(ctx context.Context, b *queue.OutboxBatch, op string, f func(context.Context) error) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	err := f(sctx)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, queue.ErrLeaseLost):
		s.cfg.log.Warn("webhook: lease lost; another sender has the batch and sends it again", "endpoint", s.name,
			"op", op, "first", b.Items[0].Seq, "last", b.Items[len(b.Items)-1].Seq)
		return nil
	case errors.Is(err, queue.ErrClosed):
		return fmt.Errorf("webhook: endpoint %q: %s: %w", s.name, op, err)
	}
	s.cfg.log.Error("webhook: outbox "+op+" failed; the batch is due again when its lease ends", "endpoint", s.name,
		"first", b.Items[0].Seq, "last", b.Items[len(b.Items)-1].Seq, "err", err)
	return nil
}

// failureReason is the short reason recorded with RetryOutbox: the status
// line of an answer, or the error of a POST without one.
func failureReason(err error) string {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	return clip(err.Error(), 200)
}
