package pgstore

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Wake implements queue.Waker. The first call starts a listener on a
// dedicated connection (never one of the pool's: a pooled connection would
// stay LISTENing after release; it also hears SlotReleased's
// announcements) that signals on the returned channel when
// another process enqueues a due job, or releases or retries one. Notifications sent
// while the listener is disconnected are lost, so after every (re)connect
// and LISTEN it signals once; the queue's polling covers the rest. Signals
// are merged: the channel holds at most one.
func (s *Store) Wake() <-chan struct{} {
	s.wakeOnce.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed.Load() {
			return
		}
		s.wg.Add(1)
		go s.listen()
	})
	return s.wakeC
}

func (s *Store) signal() {
	select {
	case s.wakeC <- struct{}{}:
	default:
	}
}

// slotSignal tells SlotReleased's reader that a slot may be free.
func (s *Store) slotSignal() {
	select {
	case s.slotC <- struct{}{}:
	default:
	}
}

func (s *Store) log(level slog.Level, msg string, args ...any) {
	if s.opts.Logger != nil {
		s.opts.Logger.Log(context.Background(), level, msg, args...)
	}
}

// listen keeps a LISTEN connection until Close, reconnecting with a
// backoff of 100 ms doubling to 5 s.
func (s *Store) listen() {
	defer s.wg.Done()
	backoff := 100 * time.Millisecond
	for s.ctx.Err() == nil {
		err := s.listenOnce(func() { backoff = 100 * time.Millisecond })
		if s.ctx.Err() != nil {
			return
		}
		s.log(slog.LevelWarn, "pgstore: wake-up listener disconnected; retrying", "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// listenOnce connects, LISTENs and relays notifications until an error.
func (s *Store) listenOnce(connected func()) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(s.ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(s.ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()+
		"; LISTEN "+pgx.Identifier{s.slotChannel}.Sanitize()); err != nil {
		return err
	}
	connected()
	s.log(slog.LevelDebug, "pgstore: listening for wake-ups", "channel", s.channel)
	s.signal() // whatever was sent while we were away
	s.slotSignal()
	for {
		n, err := conn.WaitForNotification(s.ctx)
		if err != nil {
			return err
		}
		if n.Channel == s.slotChannel {
			s.slotSignal()
		} else {
			s.signal()
		}
	}
}
