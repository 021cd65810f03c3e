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
const SchemaVersion = 1

// ErrSchemaTooNew matches (errors.Is) a *SchemaVersionError: the schema
// was created by a newer release of pgstore.
var ErrSchemaTooNew = errors.New("pgstore: schema version newer than this package supports")

// SchemaVersionError reports a schema that this release cannot use.
type SchemaVersionError struct {
	Schema    string // the PostgreSQL schema
	Found     int    // the version recorded in the database
	Supported int    // SchemaVersion
}

func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("pgstore: schema %q is at version %d, this release supports up to %d: upgrade mxrelay",
		e.Schema, e.Found, e.Supported)
}

// Is makes errors.Is(err, ErrSchemaTooNew) true.
func (e *SchemaVersionError) Is(target error) bool { return target == ErrSchemaTooNew }

// migrations[i] brings a schema from version i to i+1. "{s}" stands for
// the quoted schema name. Never edit a released step; append a new one.
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
		CONSTRAINT jobs_lease CHECK ((lease_token IS NULL) = (lease_until IS NULL))
	);
	CREATE INDEX jobs_due ON {s}.jobs (due, id) WHERE NOT held;
	CREATE INDEX jobs_key_due ON {s}.jobs (routing_key, due, id) WHERE NOT held;
	CREATE INDEX jobs_key_lease ON {s}.jobs (routing_key, lease_until) WHERE lease_token IS NOT NULL;`,
}

// migrate creates or upgrades the schema under a transaction-scoped
// advisory lock, so that processes starting together migrate once.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
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
	if version == SchemaVersion {
		return tx.Commit(ctx)
	}
	for v := version; v < SchemaVersion; v++ {
		if _, err := tx.Exec(ctx, strings.ReplaceAll(migrations[v], "{s}", q)); err != nil {
			return fmt.Errorf("pgstore: migrate %s to version %d: %w", q, v+1, err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+q+`.meta (id, version) VALUES (1, $1)
		ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version`, SchemaVersion); err != nil {
		return fmt.Errorf("pgstore: migrate: record version: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: commit: %w", err)
	}
	return nil
}
