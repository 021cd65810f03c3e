package pgstore

// migrationKeys is schema version 5: the routing_keys table, so that a
// claim under a per-key cap reads only the keys that are due instead of
// visiting every routing key.
//
// routing_keys holds one row per routing key that has unheld jobs, with
// due at or before the earliest due of those jobs (jobs.due: NextAttempt,
// or Lease.Until while leased). The row may be early (stale low), never
// late: whatever makes a job due earlier (Put, Finish with an earlier
// NextAttempt, Release, Retry) lowers it, in the same transaction, through
// the triggers below; whatever makes a key's jobs due later (a claim,
// Finish, Hold, Cancel) leaves it, and the next claim that visits the key
// sets it right (or deletes the row when the key has no unheld job left).
// A key whose jobs are all in flight therefore sits at its earliest lease
// end, out of the claims' way until then.
//
// claim_keyed takes a key's row FOR UPDATE while it counts the key's
// leases and claims. A transaction that makes a job due (the triggers)
// first takes the key's advisory lock shared, held to its commit: shared
// locks do not block each other, and live in the lock manager's memory,
// where FOR KEY SHARE on a row that many Puts lock at once would make a
// MultiXact for each (measured: Put 5 times slower at 10 keys). A claim
// corrects a key's due only if it gets that lock exclusive without
// waiting (pg_try_advisory_xact_lock), and reads the earliest due after
// taking it, so that it never corrects from a snapshot that misses a job
// being made due; when a writer holds it, the row is left early, and a
// later claim corrects it.
//
// The migration locks jobs against writes while it fills the table from
// the existing jobs, and replaces claim_keyed's body (same signature), so
// that a process of the previous release that still runs uses the new one.
const migrationKeys = `
	LOCK TABLE {s}.jobs IN SHARE ROW EXCLUSIVE MODE;
	CREATE TABLE {s}.routing_keys (
		routing_key text COLLATE "C" PRIMARY KEY,
		due         timestamptz NOT NULL
	);
	CREATE INDEX routing_keys_due ON {s}.routing_keys (due, routing_key);
	INSERT INTO {s}.routing_keys (routing_key, due)
		SELECT routing_key, min(due) FROM {s}.jobs WHERE NOT held GROUP BY routing_key;
` + noteDueFunc + `
	CREATE FUNCTION {s}.jobs_inserted() RETURNS trigger
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, {s}, pg_temp
	AS $fn$
	DECLARE
		ks text[];
		ds timestamptz[];
	BEGIN
		SELECT array_agg(routing_key ORDER BY routing_key), array_agg(d ORDER BY routing_key) INTO ks, ds
		FROM (SELECT routing_key, min(due) AS d FROM ins WHERE NOT held GROUP BY routing_key) a;
		IF ks IS NOT NULL THEN
			PERFORM note_due(ks, ds);
		END IF;
		RETURN NULL;
	END
	$fn$;
	CREATE FUNCTION {s}.job_due_lowered() RETURNS trigger
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, {s}, pg_temp
	AS $fn$
	BEGIN
		PERFORM note_due(ARRAY[NEW.routing_key], ARRAY[NEW.due]);
		RETURN NULL;
	END
	$fn$;
	CREATE TRIGGER jobs_keys_insert AFTER INSERT ON {s}.jobs
		REFERENCING NEW TABLE AS ins FOR EACH STATEMENT EXECUTE FUNCTION {s}.jobs_inserted();
	CREATE TRIGGER jobs_keys_update AFTER UPDATE ON {s}.jobs
		FOR EACH ROW WHEN (NOT NEW.held AND (OLD.held OR NEW.due < OLD.due))
		EXECUTE FUNCTION {s}.job_due_lowered();
` + claimKeysFunc

// noteDueFunc lowers the due of routing keys to the given times, creating
// their rows as needed. p_keys is sorted and without duplicates; p_dues[i]
// is the earliest due of the jobs made due for p_keys[i]. It takes the
// keys' advisory locks shared, in key order (a claim deleting a row holds
// the lock exclusive, so no row goes away after the INSERT), creates the
// missing rows, then lowers those that are later, locking them in key
// order.
const noteDueFunc = `
	CREATE FUNCTION {s}.note_due(p_keys text[], p_dues timestamptz[]) RETURNS void
	LANGUAGE plpgsql VOLATILE
	SET search_path = pg_catalog, {s}, pg_temp
	AS $fn$
	BEGIN
		PERFORM pg_advisory_xact_lock_shared(hashtext('mxrelay.pgstore.keys'), hashtext(u.k))
			FROM unnest(p_keys) u(k) ORDER BY u.k;
		INSERT INTO routing_keys (routing_key, due)
			SELECT u.k, u.d FROM unnest(p_keys, p_dues) u(k, d) ORDER BY u.k
			ON CONFLICT (routing_key) DO NOTHING;
		PERFORM 1 FROM routing_keys r JOIN unnest(p_keys, p_dues) u(k, d) ON r.routing_key = u.k
			WHERE r.due > u.d ORDER BY r.routing_key FOR NO KEY UPDATE OF r;
		UPDATE routing_keys r SET due = u.d FROM unnest(p_keys, p_dues) u(k, d)
			WHERE r.routing_key = u.k AND r.due > u.d;
	END
	$fn$;`

// claimKeysFunc is claim_keyed from version 5 on: Claim under a per-key
// cap, run in the server so that it costs one round trip, reading only
// due keys. It takes the routing_keys rows that are due (due <= p_now),
// earliest first, as many at a time as jobs are still wanted, locked FOR
// UPDATE SKIP LOCKED so that concurrent claimers spread over the keys;
// for each it counts the key's unexpired leases (every process's, at most
// p_perkey of them, from jobs_key_lease), leases up to the key's
// remaining budget, and sets the row's due to the key's earliest due (or
// deletes it when no unheld job is left). It stops when p_max jobs are
// leased or no due key is left. If that did not fill the claim, a second
// pass waits for the due keys the first found locked, each for at most
// lock_timeout (a claim and a Put waiting for each other's keys: the
// claim gives up the key instead of deadlocking).
//
// The cost is that of the keys it visits: the due keys it leases from,
// plus the due keys at their cap (at most the unexpired leases divided by
// the cap: bounded by the workers, not by the keys) and rows left early
// by the operations since (each corrected once). Keys that are not due,
// whose jobs are all in flight, or that are empty are never read.
//
// Plans are made for each call's values (plan_cache_mode): a generic plan
// of the key scan, not knowing the LIMIT, sorts every due key instead of
// reading the first few from routing_keys_due.
//
// p_class (the advisory lock class of version 1) is no longer used; the
// signature is kept so that processes of the previous release can call it.
const claimKeysFunc = `
	CREATE OR REPLACE FUNCTION {s}.claim_keyed(p_now timestamptz, p_max integer, p_perkey integer,
		p_owner text, p_token text, p_until timestamptz, p_class integer)
	RETURNS TABLE (old_due timestamptz, job {s}.jobs)
	LANGUAGE plpgsql VOLATILE
	SET lock_timeout = '100ms'
	SET plan_cache_mode = force_custom_plan
	SET search_path = pg_catalog, {s}, pg_temp
	AS $fn$
	#variable_conflict use_column
	DECLARE
		visited text[] := '{}';
		batch   text[];
		k       text;
		pass    integer;
		active  integer;
		budget  integer;
		got     integer;
		v_first timestamptz;
		taken   integer := 0;
	BEGIN
		FOR pass IN 1..2 LOOP
			LOOP
				EXIT WHEN taken >= p_max;
				IF pass = 1 THEN
					SELECT coalesce(array_agg(c.routing_key ORDER BY c.due, c.routing_key), '{}') INTO batch FROM (
						SELECT r.routing_key, r.due FROM routing_keys r
						WHERE r.due <= p_now AND r.routing_key <> ALL (visited)
						ORDER BY r.due, r.routing_key LIMIT p_max - taken
						FOR UPDATE SKIP LOCKED) c;
				ELSE
					SELECT coalesce(array_agg(c.routing_key ORDER BY c.due, c.routing_key), '{}') INTO batch FROM (
						SELECT r.routing_key, r.due FROM routing_keys r
						WHERE r.due <= p_now AND r.routing_key <> ALL (visited)
						ORDER BY r.due, r.routing_key LIMIT p_max - taken) c;
				END IF;
				EXIT WHEN cardinality(batch) = 0;
				visited := visited || batch;
				FOREACH k IN ARRAY batch LOOP
					EXIT WHEN taken >= p_max;
					IF pass = 2 THEN
						BEGIN
							PERFORM 1 FROM routing_keys r WHERE r.routing_key = k FOR UPDATE;
						EXCEPTION WHEN lock_not_available THEN
							CONTINUE;
						END;
						CONTINUE WHEN NOT FOUND;
					END IF;
					SELECT count(*) INTO active FROM (
						SELECT 1 FROM jobs a
						WHERE a.routing_key = k AND a.lease_token IS NOT NULL AND a.lease_until > p_now
						LIMIT p_perkey) l;
					budget := least(p_perkey - active, p_max - taken);
					IF budget > 0 THEN
						RETURN QUERY
							WITH c AS (
								SELECT id, due FROM jobs
								WHERE routing_key = k AND NOT held AND due <= p_now
								ORDER BY due, id LIMIT budget
								FOR UPDATE SKIP LOCKED)
							UPDATE jobs j
							SET lease_owner = p_owner, lease_token = p_token, lease_until = p_until, due = p_until
							FROM c WHERE j.id = c.id
							RETURNING c.due, j;
						GET DIAGNOSTICS got = ROW_COUNT;
						taken := taken + got;
					END IF;
					-- Correct due only while no writer is making a job of
					-- the key due (they hold the key's lock shared): the
					-- earliest due read after taking it misses none.
					IF pg_try_advisory_xact_lock(hashtext('mxrelay.pgstore.keys'), hashtext(k)) THEN
						SELECT min(due) INTO v_first FROM jobs WHERE routing_key = k AND NOT held;
						IF v_first IS NULL THEN
							DELETE FROM routing_keys r WHERE r.routing_key = k;
						ELSE
							UPDATE routing_keys r SET due = v_first WHERE r.routing_key = k AND r.due <> v_first;
						END IF;
					END IF;
				END LOOP;
			END LOOP;
		END LOOP;
	END
	$fn$;`
