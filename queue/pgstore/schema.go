package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SchemaVersion is the version of the tables this package creates and
// understands. A database whose schema has a higher version was migrated by
// a newer release of this package; Open refuses it with a
// *SchemaVersionError rather than guess.
const SchemaVersion = 6

// ErrSchemaTooNew matches (errors.Is) a *SchemaVersionError: the schema
// was created by a newer release of pgstore.
var ErrSchemaTooNew = errors.New("pgstore: schema version newer than this package supports")

// ErrInvalidSchema matches (errors.Is) the error of OpenWith and New when
// Options.Schema is not a plain lower-case PostgreSQL identifier of at most
// 63 characters, or starts with "pg_". The name is checked before anything
// is sent to the server.
var ErrInvalidSchema = errors.New("pgstore: invalid schema name")

// SchemaVersionError reports a schema that this release cannot use.
type SchemaVersionError struct {
	Schema    string // the PostgreSQL schema
	Found     int    // the version recorded in the database
	Supported int    // SchemaVersion
}

// Error says which schema, which versions, and what to do.
func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("pgstore: schema %q is at version %d, this release supports up to %d: upgrade mxrelay",
		e.Schema, e.Found, e.Supported)
}

// Is makes errors.Is(err, ErrSchemaTooNew) true.
func (e *SchemaVersionError) Is(target error) bool { return target == ErrSchemaTooNew }

// migrations[i] brings a schema from version i to i+1. "{s}" stands for
// the quoted schema name, and may appear only where the SQL parser reads
// it as an identifier: never inside a string or a function body, where the
// quoting protects nothing (functions set search_path instead). Never edit
// a released step; append a new one.
var migrations = []string{
	// 1: the jobs table. Times are timestamptz (microseconds). due is
	// where the job stands in the claim order: NextAttempt while no lease,
	// Lease.Until while leased (an expired lease is due at its end). Held
	// jobs keep due but are out of the partial indexes.
	`CREATE TABLE {s}.jobs (
		id           text COLLATE "C" PRIMARY KEY,
		sender       text NOT NULL,
		rcpt_addr    text[] NOT NULL,
		rcpt_state   smallint[] NOT NULL,
		rcpt_reply   text[] NOT NULL,
		message      bytea NOT NULL,
		created      timestamptz NOT NULL,
		attempts     integer NOT NULL,
		next_attempt timestamptz NOT NULL,
		last_error   text NOT NULL,
		held         boolean NOT NULL,
		routing_key  text COLLATE "C" NOT NULL,
		metadata     jsonb,
		lease_owner  text,
		lease_token  text,
		lease_until  timestamptz,
		due          timestamptz NOT NULL,
		CONSTRAINT jobs_rcpt_arrays CHECK (
			cardinality(rcpt_addr) = cardinality(rcpt_state) AND
			cardinality(rcpt_addr) = cardinality(rcpt_reply)),
		CONSTRAINT jobs_rcpt_state CHECK (0 <= ALL (rcpt_state) AND 3 >= ALL (rcpt_state)),
		CONSTRAINT jobs_metadata CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object'),
		CONSTRAINT jobs_lease CHECK ((lease_token IS NULL) = (lease_until IS NULL))
	);
	CREATE INDEX jobs_due ON {s}.jobs (due, id) WHERE NOT held;
	CREATE INDEX jobs_key_due ON {s}.jobs (routing_key, due, id) WHERE NOT held;
	CREATE INDEX jobs_key_lease ON {s}.jobs (routing_key, lease_until) WHERE lease_token IS NOT NULL;` +
		claimKeyedFunc,

	// 2: the suppression list (queue.SuppressionStore). The primary key
	// serves lookups of a batch of addresses and listing in (address,
	// scope) order, compared byte by byte (collation "C"); the second index
	// serves listing one scope. reason is a queue.SuppressReason; expires
	// is NULL for an entry that never expires.
	`CREATE TABLE {s}.suppressions (
		address text COLLATE "C" NOT NULL,
		scope   text COLLATE "C" NOT NULL,
		reason  smallint NOT NULL,
		source  text NOT NULL,
		created timestamptz NOT NULL,
		expires timestamptz,
		PRIMARY KEY (address, scope),
		CONSTRAINT suppressions_address CHECK (address <> ''),
		CONSTRAINT suppressions_reason CHECK (reason BETWEEN 1 AND 4)
	);
	CREATE INDEX suppressions_scope ON {s}.suppressions (scope, address);`,

	// 3: the history (queue.HistoryStore). history holds a record's own
	// fields; history_rcpt one row per recipient entry: addr_fold is the
	// address folded (queue.FoldAddr), entry the queue.RecipientRecord
	// with its notes as JSON, pos its place in the record's order. IDs and
	// addresses compare byte by byte (collation "C"), as Go strings do.
	// history_rcpt_addr serves Records with a Recipient (a range scan
	// backwards from the cursor, one page in one probe) and Forget;
	// history_updated serves Expire; history_campaign serves Records with
	// a Campaign. metadata is NULL for a record without it. A zero time
	// is the first instant of year 1.
	`CREATE TABLE {s}.history (
		id         text COLLATE "C" PRIMARY KEY,
		message_id text NOT NULL,
		sender     text NOT NULL,
		subject    text NOT NULL,
		campaign   text COLLATE "C" NOT NULL,
		list       text NOT NULL,
		metadata   jsonb,
		created    timestamptz NOT NULL,
		updated    timestamptz NOT NULL,
		CONSTRAINT history_metadata CHECK (metadata IS NULL OR jsonb_typeof(metadata) = 'object')
	);
	CREATE INDEX history_updated ON {s}.history (updated, id);
	CREATE INDEX history_campaign ON {s}.history (campaign, id);
	CREATE TABLE {s}.history_rcpt (
		id        text COLLATE "C" NOT NULL REFERENCES {s}.history ON DELETE CASCADE,
		addr_fold text COLLATE "C" NOT NULL,
		pos       integer NOT NULL,
		entry     jsonb NOT NULL,
		PRIMARY KEY (id, addr_fold),
		CONSTRAINT history_rcpt_entry CHECK (jsonb_typeof(entry) = 'object')
	);
	CREATE INDEX history_rcpt_addr ON {s}.history_rcpt (addr_fold, id);`,

	// 4: the webhook outboxes (queue.OutboxStore). outbox_heads holds one
	// row per endpoint ever appended to, kept when its outbox empties so
	// that next_seq (the Seq the next item gets) never goes back; its row
	// lock orders appends, claims, acks and retries of the endpoint in
	// every process. attempts, next_attempt (NULL: due at once) and
	// last_error are the failures since the last AckOutbox; the lease
	// columns are all NULL or all set, as in jobs. outbox_items holds the
	// items; its primary key serves a claim (the head of one endpoint in
	// Seq order) and Outboxes. Endpoint names compare byte by byte
	// (collation "C"), as Go strings do.
	`CREATE TABLE {s}.outbox_heads (
		endpoint     text COLLATE "C" PRIMARY KEY,
		next_seq     bigint NOT NULL,
		attempts     integer NOT NULL DEFAULT 0,
		next_attempt timestamptz,
		last_error   text NOT NULL DEFAULT '',
		lease_owner  text,
		lease_token  text,
		lease_until  timestamptz,
		CONSTRAINT outbox_heads_endpoint CHECK (endpoint <> ''),
		CONSTRAINT outbox_heads_lease CHECK (
			(lease_token IS NULL) = (lease_until IS NULL) AND
			(lease_token IS NULL) = (lease_owner IS NULL))
	);
	CREATE TABLE {s}.outbox_items (
		endpoint text COLLATE "C" NOT NULL REFERENCES {s}.outbox_heads,
		seq      bigint NOT NULL,
		time     timestamptz NOT NULL,
		data     bytea NOT NULL,
		PRIMARY KEY (endpoint, seq)
	);`,

	// 5: the routing_keys table, its triggers, and claim_keyed reading it
	// (keys.go).
	migrationKeys,

	// 6: the limits shared by the instances: connection slots, message
	// rates and back-off per destination (limits.go).
	migrationLimits,
}

// migrate creates or upgrades the schema under a transaction-scoped
// advisory lock, so that processes starting together migrate once.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	return migrateTo(ctx, pool, schema, SchemaVersion)
}

// migrateTo is migrate up to version target (<= SchemaVersion); tests use
// it to build a schema of an earlier release.
func migrateTo(ctx context.Context, pool *pgxpool.Pool, schema string, target int) error {
	q := pgx.Identifier{schema}.Sanitize()
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('mxrelay.pgstore.migrate'), hashtext($1))`, schema); err != nil {
		return fmt.Errorf("pgstore: migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+q+`;
		CREATE TABLE IF NOT EXISTS `+q+`.meta (
			id      integer PRIMARY KEY CHECK (id = 1),
			version integer NOT NULL)`); err != nil {
		return fmt.Errorf("pgstore: migrate: create schema %s: %w", q, err)
	}
	var version int
	err = tx.QueryRow(ctx, `SELECT version FROM `+q+`.meta WHERE id = 1`).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		version = 0
	} else if err != nil {
		return fmt.Errorf("pgstore: migrate: read version: %w", err)
	}
	if version > SchemaVersion {
		return &SchemaVersionError{Schema: schema, Found: version, Supported: SchemaVersion}
	}
	if version >= target {
		return tx.Commit(ctx)
	}
	for v := version; v < target; v++ {
		if _, err := tx.Exec(ctx, strings.ReplaceAll(migrations[v], "{s}", q)); err != nil {
			return fmt.Errorf("pgstore: migrate %s to version %d: %w", q, v+1, err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+q+`.meta (id, version) VALUES (1, $1)
		ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version`, target); err != nil {
		return fmt.Errorf("pgstore: migrate: record version: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: commit: %w", err)
	}
	return nil
}

// claimKeyedFunc is claim_keyed as schema version 1 created it (version 5
// replaces it with claimKeysFunc, keys.go): Claim under a per-key cap, run
// in the server so that it costs one round trip. It walks the routing keys whose earliest unheld job
// is due, earliest first (a loose index scan: one probe per key, however
// long a key's backlog), and for each takes an advisory lock on the key,
// counts the key's unexpired leases (every process's), and leases up to the
// key's remaining budget, until p_max jobs are leased. The lock serialises
// claimers of one key, in every process, until their transaction ends, so
// no two count the same free slot; a key already at its cap is passed by
// without taking its lock. A first pass only tries the locks and
// skips keys another claimer holds, so that concurrent claimers spread over
// the keys instead of queueing on the same one; if that did not fill the
// claim, a second pass waits for the skipped keys, each for at most
// lock_timeout (two claimers waiting for each other's keys give up instead
// of deadlocking).
//
// The schema is named only in the header, where it is a quoted identifier;
// the body names the tables unqualified and finds them through the
// function's search_path (pg_catalog first, pg_temp last, so that no
// temporary table shadows them).
const claimKeyedFunc = `
	CREATE FUNCTION {s}.claim_keyed(p_now timestamptz, p_max integer, p_perkey integer,
		p_owner text, p_token text, p_until timestamptz, p_class integer)
	RETURNS TABLE (old_due timestamptz, job {s}.jobs)
	LANGUAGE plpgsql VOLATILE
	SET lock_timeout = '100ms'
	SET search_path = pg_catalog, {s}, pg_temp
	AS $fn$
	#variable_conflict use_column
	DECLARE
		keys    text[];
		skipped text[] := '{}';
		k       text;
		pass    integer;
		active  integer;
		budget  integer;
		got     integer;
		taken   integer := 0;
	BEGIN
		WITH RECURSIVE ks(key, due) AS (
			(SELECT routing_key, due FROM jobs WHERE NOT held ORDER BY routing_key, due LIMIT 1)
			UNION ALL
			SELECT n.routing_key, n.due FROM ks CROSS JOIN LATERAL (
				SELECT routing_key, due FROM jobs
				WHERE NOT held AND routing_key > ks.key
				ORDER BY routing_key, due LIMIT 1) n)
		SELECT coalesce(array_agg(key ORDER BY due, key), '{}') INTO keys FROM ks WHERE due <= p_now;
		FOR pass IN 1..2 LOOP
			FOREACH k IN ARRAY CASE WHEN pass = 1 THEN keys ELSE skipped END LOOP
				EXIT WHEN taken >= p_max;
				-- A look without the lock: a key at its cap is passed by
				-- without locking it, so that it does not hold up others.
				SELECT count(*) INTO active FROM jobs a
				WHERE a.routing_key = k AND a.lease_token IS NOT NULL AND a.lease_until > p_now;
				CONTINUE WHEN active >= p_perkey;
				IF pass = 1 THEN
					IF NOT pg_try_advisory_xact_lock(p_class, hashtext(k)) THEN
						skipped := skipped || k;
						CONTINUE;
					END IF;
				ELSE
					BEGIN
						PERFORM pg_advisory_xact_lock(p_class, hashtext(k));
					EXCEPTION WHEN lock_not_available THEN
						CONTINUE;
					END;
				END IF;
				-- The count that decides, under the lock.
				SELECT count(*) INTO active FROM jobs a
				WHERE a.routing_key = k AND a.lease_token IS NOT NULL AND a.lease_until > p_now;
				budget := least(p_perkey - active, p_max - taken);
				CONTINUE WHEN budget <= 0;
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
			END LOOP;
		END LOOP;
	END
	$fn$;`
