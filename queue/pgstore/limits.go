package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mxrelay/mxrelay/queue"
)

// migrationLimits is schema version 6: the limits the instances sharing
// the schema hold together (queue.LimitStore).
//
// dest_slots holds one row per connection slot taken: its destination,
// an ID, the store that took it (owner, one per open Store) and when it
// ends unless renewed. dest_state holds per destination the GCRA state
// of its message rate (tat, the theoretical arrival time of the next
// turn) and its back-off: a pause, the connections allowed, a rule.
//
// Every change to a destination's slots or state runs under the
// destination's dest_state row lock (FOR UPDATE), taken first; the row
// is created on first use and never deleted, and is small (a few dozen
// octets). All times are the server's clock (clock_timestamp), so that
// instances whose clocks differ agree on when a slot ends and a turn
// comes.
var migrationLimits = `
	CREATE TABLE {s}.dest_state (
		dest         text COLLATE "C" PRIMARY KEY,
		tat          timestamptz,
		paused_until timestamptz,
		allowed      double precision NOT NULL DEFAULT 0,
		allowed_at   timestamptz,
		rule         text NOT NULL DEFAULT '',
		rule_until   timestamptz
	);
	CREATE TABLE {s}.dest_slots (
		dest  text COLLATE "C" NOT NULL,
		slot  text COLLATE "C" NOT NULL,
		owner text NOT NULL,
		until timestamptz NOT NULL,
		PRIMARY KEY (dest, slot)
	);
	CREATE INDEX dest_slots_owner ON {s}.dest_slots (owner);

	-- lock_dest locks a destination's state row, creating it if needed.
	CREATE FUNCTION {s}.lock_dest(p_dest text) RETURNS {s}.dest_state
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, {s}, pg_temp
	AS $fn$
	DECLARE
		st dest_state;
	BEGIN
		LOOP
			SELECT * INTO st FROM dest_state WHERE dest = p_dest FOR UPDATE;
			IF FOUND THEN
				RETURN st;
			END IF;
			INSERT INTO dest_state (dest) VALUES (p_dest) ON CONFLICT (dest) DO NOTHING;
		END LOOP;
	END
	$fn$;

	-- acquire_slot takes a slot of p_dest if fewer than p_max unexpired
	-- ones are held, counting every owner's, within the connections its
	-- back-off allows, and the destination is not paused; it returns the slot's ID (NULL if
	-- none), the slots held, and the state.
	CREATE FUNCTION {s}.acquire_slot(p_dest text, p_max integer, p_slot text, p_owner text, p_ttl interval)
	RETURNS TABLE (slot text, held integer, st {s}.dest_state)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, {s}, pg_temp
	AS $fn$
	#variable_conflict use_column
	DECLARE
		now_ timestamptz := clock_timestamp();
		s    dest_state;
		n    integer;
		cap  integer := p_max;
	BEGIN
		s := lock_dest(p_dest);
		DELETE FROM dest_slots d WHERE d.dest = p_dest AND d.until <= now_;
		SELECT count(*) INTO n FROM dest_slots d WHERE d.dest = p_dest;
		IF s.allowed > 0 THEN
			cap := least(cap, greatest(1, floor(s.allowed
				+ extract(epoch FROM now_ - s.allowed_at) / ` + recoverySeconds + `))::integer);
		END IF;
		IF n < cap AND (s.paused_until IS NULL OR s.paused_until <= now_) THEN
			INSERT INTO dest_slots (dest, slot, owner, until) VALUES (p_dest, p_slot, p_owner, now_ + p_ttl);
			RETURN QUERY SELECT p_slot, n + 1, s;
		ELSE
			RETURN QUERY SELECT NULL::text, n, s;
		END IF;
	END
	$fn$;

	-- take_turns takes up to p_n turns of p_dest's rate, one every
	-- p_every, bursts of up to p_burst (GCRA: a turn is due when the
	-- theoretical arrival time tat is at most (p_burst-1)×p_every ahead
	-- of now); it returns the turns granted and, with none, when the next
	-- one comes.
	CREATE FUNCTION {s}.take_turns(p_dest text, p_every interval, p_burst integer, p_n integer)
	RETURNS TABLE (granted integer, next timestamptz)
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, {s}, pg_temp
	AS $fn$
	DECLARE
		now_ timestamptz := clock_timestamp();
		s    dest_state;
		v_tat timestamptz;
		tau  interval := p_every * (p_burst - 1);
		k    integer;
	BEGIN
		s := lock_dest(p_dest);
		v_tat := greatest(coalesce(s.tat, now_), now_);
		k := least(p_n, floor(extract(epoch FROM now_ + tau - v_tat) / extract(epoch FROM p_every))::integer + 1);
		IF k <= 0 THEN
			RETURN QUERY SELECT 0, v_tat - tau;
			RETURN;
		END IF;
		UPDATE dest_state SET tat = v_tat + p_every * k WHERE dest = p_dest;
		RETURN QUERY SELECT k, NULL::timestamptz;
	END
	$fn$;

	-- note_backoff makes p_dest's state at least as strict as the one
	-- given and returns the result.
	CREATE FUNCTION {s}.note_backoff(p_dest text, p_paused timestamptz, p_allowed double precision,
		p_rule text, p_rule_until timestamptz)
	RETURNS {s}.dest_state
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, {s}, pg_temp
	AS $fn$
	DECLARE
		now_ timestamptz := clock_timestamp();
		s    dest_state;
		cur  double precision;
	BEGIN
		s := lock_dest(p_dest);
		IF p_paused IS NOT NULL AND (s.paused_until IS NULL OR p_paused > s.paused_until) THEN
			s.paused_until := p_paused;
		END IF;
		IF p_allowed > 0 THEN
			cur := CASE WHEN s.allowed > 0
				THEN s.allowed + extract(epoch FROM now_ - s.allowed_at) / ` + recoverySeconds + `
				ELSE 'Infinity'::double precision END;
			IF p_allowed < cur THEN
				s.allowed := p_allowed;
				s.allowed_at := now_;
			END IF;
		END IF;
		IF p_rule <> '' AND p_rule_until IS NOT NULL AND (s.rule_until IS NULL OR s.rule_until <= now_
			OR p_rule_until > s.rule_until) THEN
			s.rule := p_rule;
			s.rule_until := p_rule_until;
		END IF;
		UPDATE dest_state SET paused_until = s.paused_until, allowed = s.allowed, allowed_at = s.allowed_at,
			rule = s.rule, rule_until = s.rule_until
		WHERE dest = p_dest;
		RETURN s;
	END
	$fn$;`

// recoverySeconds is queue.AllowedRecovery in seconds, for the SQL.
var recoverySeconds = strconv.FormatFloat(queue.AllowedRecovery.Seconds(), 'f', -1, 64)

// DefaultSlotTTL is how long a connection slot outlives the last renewal
// of the store that took it when Options.SlotTTL is zero: a process that
// dies frees its slots within it.
const DefaultSlotTTL = 30 * time.Second

// limitsSQL are the statements of queue.LimitStore.
type limitsSQL struct {
	acquire, release, renew, releaseAll, turns, backoff, state string
}

func prepareLimitsSQL(q string) limitsSQL {
	f := func(s string) string { return strings.ReplaceAll(s, "{s}", q) }
	stateCols := `(st).paused_until, (st).allowed, (st).allowed_at, (st).rule, (st).rule_until`
	return limitsSQL{
		acquire: f(`SELECT slot, held, ` + stateCols + ` FROM {s}.acquire_slot($1, $2, $3, $4, $5)`),
		release: f(`WITH d AS (DELETE FROM {s}.dest_slots WHERE dest = $1 AND slot = $2 RETURNING 1)
			SELECT count(*) FROM d, LATERAL (SELECT pg_notify($3, '')) n`),
		renew:      f(`UPDATE {s}.dest_slots SET until = clock_timestamp() + $2 WHERE owner = $1 AND slot = ANY ($3)`),
		releaseAll: f(`WITH d AS (DELETE FROM {s}.dest_slots WHERE owner = $1 RETURNING 1) SELECT count(*) FROM d, LATERAL (SELECT pg_notify($2, '')) n`),
		turns:      f(`SELECT granted, next FROM {s}.take_turns($1, $2, $3, $4)`),
		backoff:    f(`SELECT st.paused_until, st.allowed, st.allowed_at, st.rule, st.rule_until FROM {s}.note_backoff($1, $2, $3, $4, $5) st`),
		state:      f(`SELECT paused_until, allowed, allowed_at, rule, rule_until FROM {s}.dest_state WHERE dest = $1`),
	}
}

// scanState reads the five state columns.
func scanState(row pgx.Row, pre ...any) (queue.DestState, error) {
	var st queue.DestState
	var paused, at, ruleUntil *time.Time
	var allowed *float64
	var rule *string
	if err := row.Scan(append(pre, &paused, &allowed, &at, &rule, &ruleUntil)...); err != nil {
		return st, err
	}
	if paused != nil {
		st.PausedUntil = *paused
	}
	if allowed != nil {
		st.Allowed = *allowed
	}
	if at != nil {
		st.AllowedAt = *at
	}
	if rule != nil {
		st.Rule = *rule
	}
	if ruleUntil != nil {
		st.RuleUntil = *ruleUntil
	}
	return st, nil
}

// AcquireSlot implements queue.LimitStore. The first call starts the
// renewal of this store's slots: every SlotTTL/3, one statement extends
// them all.
func (s *Store) AcquireSlot(ctx context.Context, key string, max int) (queue.Slot, error) {
	if err := s.check(ctx); err != nil {
		return queue.Slot{}, err
	}
	if max < 1 {
		return queue.Slot{}, fmt.Errorf("%w: slot cap %d", queue.ErrInvalid, max)
	}
	s.startRenewal()
	id := s.owner + "." + strconv.FormatUint(s.slotSeq.Add(1), 36)
	// Held before the statement: a renewal that runs meanwhile renews it
	// if the statement took it, and renews nothing if not.
	s.limitsMu.Lock()
	s.held[id] = struct{}{}
	s.limitsMu.Unlock()
	var slot *string
	var held int
	st, err := scanState(s.pool.QueryRow(ctx, s.lsql.acquire, key, max, id, s.owner, s.opts.SlotTTL), &slot, &held)
	if err != nil || slot == nil {
		// Not taken, or maybe taken by a statement whose answer was lost:
		// not renewed, such a slot ends within SlotTTL.
		s.forget(id)
	}
	if err != nil {
		return queue.Slot{}, s.dbError("acquire slot", err)
	}
	out := queue.Slot{Held: held, State: st}
	if slot != nil {
		out.ID = *slot
	}
	return out, nil
}

// ReleaseSlot implements queue.LimitStore: one statement deletes the slot
// and NOTIFYs every store of the schema.
func (s *Store) ReleaseSlot(ctx context.Context, key, slot string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	// No longer renewed, whatever the statement's fate: if it fails, the
	// slot ends within SlotTTL.
	s.forget(slot)
	var n int
	if err := s.pool.QueryRow(ctx, s.lsql.release, key, slot, s.slotChannel).Scan(&n); err != nil {
		return s.dbError("release slot", err)
	}
	return nil
}

// forget takes a slot out of those the store renews.
func (s *Store) forget(id string) {
	s.limitsMu.Lock()
	delete(s.held, id)
	s.limitsMu.Unlock()
}

// SlotReleased implements queue.LimitStore, on the wake-up listener's
// connection (see Wake).
func (s *Store) SlotReleased() <-chan struct{} {
	s.Wake()
	return s.slotC
}

// TakeTurns implements queue.LimitStore.
func (s *Store) TakeTurns(ctx context.Context, key string, r queue.Rate, n int) (int, time.Time, error) {
	if err := s.check(ctx); err != nil {
		return 0, time.Time{}, err
	}
	if n < 1 || !(r.PerMinute > 0) {
		return 0, time.Time{}, fmt.Errorf("%w: %d turns at %v a minute", queue.ErrInvalid, n, r.PerMinute)
	}
	every := time.Duration(float64(time.Minute) / r.PerMinute)
	var granted int
	var next *time.Time
	if err := s.pool.QueryRow(ctx, s.lsql.turns, key, every, max(1, r.Burst), n).Scan(&granted, &next); err != nil {
		return 0, time.Time{}, s.dbError("take turns", err)
	}
	if next == nil {
		return granted, time.Time{}, nil
	}
	return granted, *next, nil
}

// NoteBackoff implements queue.LimitStore.
func (s *Store) NoteBackoff(ctx context.Context, key string, st queue.DestState) (queue.DestState, error) {
	if err := s.check(ctx); err != nil {
		return queue.DestState{}, err
	}
	out, err := scanState(s.pool.QueryRow(ctx, s.lsql.backoff, key, nullTime(st.PausedUntil), st.Allowed,
		st.Rule, nullTime(st.RuleUntil)))
	if err != nil {
		return queue.DestState{}, s.dbError("note backoff", err)
	}
	return out, nil
}

// DestState implements queue.LimitStore.
func (s *Store) DestState(ctx context.Context, key string) (queue.DestState, error) {
	if err := s.check(ctx); err != nil {
		return queue.DestState{}, err
	}
	st, err := scanState(s.pool.QueryRow(ctx, s.lsql.state, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return queue.DestState{}, nil
	}
	if err != nil {
		return queue.DestState{}, s.dbError("destination state", err)
	}
	return st, nil
}

// nullTime is t, or NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// startRenewal starts, once, the loop that renews this store's slots.
func (s *Store) startRenewal() {
	s.renewOnce.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed.Load() {
			return
		}
		s.renewing.Store(true)
		s.wg.Add(1)
		go s.renewLoop()
	})
}

// renewLoop extends this store's slots every SlotTTL/3 until Close: the
// slots it holds, not every row it ever wrote, so that a slot whose
// release failed ends by itself. A
// renewal that fails (the database unreachable) is logged and tried at the
// next tick; slots not renewed for SlotTTL end, and other processes may
// take them.
func (s *Store) renewLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.SlotTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.limitsMu.Lock()
		ids := make([]string, 0, len(s.held))
		for id := range s.held {
			ids = append(ids, id)
		}
		s.limitsMu.Unlock()
		if len(ids) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.SlotTTL/3)
		_, err := s.pool.Exec(ctx, s.lsql.renew, s.owner, s.opts.SlotTTL, ids)
		cancel()
		if err != nil && s.ctx.Err() == nil {
			s.log(slog.LevelWarn, "pgstore: renewing connection slots failed", "err", err)
		}
	}
}

// releaseAllSlots ends every slot this store holds, at Close.
func (s *Store) releaseAllSlots() {
	if s.renewing.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var n int
		_ = s.pool.QueryRow(ctx, s.lsql.releaseAll, s.owner, s.slotChannel).Scan(&n)
	}
}
