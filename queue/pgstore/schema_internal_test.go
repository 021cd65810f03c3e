package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TestNoSchemaInFunctionBodies: no migration pastes the schema name into
// a dollar-quoted string (a function body), where quoting it as an
// identifier protects nothing.
func TestNoSchemaInFunctionBodies(t *testing.T) {
	tag := regexp.MustCompile(`\$[A-Za-z_0-9]*\$`)
	for v, m := range migrations {
		bodies := 0
		for rest := m; ; {
			loc := tag.FindStringIndex(rest)
			if loc == nil {
				break
			}
			open := rest[loc[0]:loc[1]]
			rest = rest[loc[1]:]
			end := strings.Index(rest, open)
			if end < 0 {
				t.Fatalf("migration %d: %s not closed", v+1, open)
			}
			if strings.Contains(rest[:end], "{s}") {
				t.Errorf("migration %d: the schema name is pasted into the %s…%s string", v+1, open, open)
			}
			bodies++
			rest = rest[end+len(open):]
		}
		if v == 0 && bodies == 0 {
			t.Errorf("migration 1: claim_keyed's body not found")
		}
	}
}

// TestMigrateHostileNameInert: even without the name check (migrate is
// called directly), a schema name crafted to end claim_keyed's body early
// and drop a table, on a connection with check_function_bodies off, runs
// nothing: the body no longer holds the name. The schema is created with
// that odd name and its claim_keyed works.
func TestMigrateHostileNameInert(t *testing.T) {
	dsn := os.Getenv("MXRELAY_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("pgstore: MXRELAY_TEST_POSTGRES is not set; set it to a PostgreSQL DSN " +
			"(e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run this test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["check_function_bodies"] = "off"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	exec := func(sql string) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	canary := "mxc_" + hex.EncodeToString(b[:])
	hostile := "x$fn$; DROP TABLE IF EXISTS " + canary + ".t; SELECT $fn$"
	if len(hostile) > 63 {
		t.Fatalf("hostile name of %d bytes would be truncated", len(hostile))
	}
	q := pgx.Identifier{hostile}.Sanitize()
	exec("CREATE SCHEMA " + canary + "; CREATE TABLE " + canary + ".t (x integer)")
	defer exec("DROP SCHEMA IF EXISTS " + canary + " CASCADE")
	defer exec("DROP SCHEMA IF EXISTS " + q + " CASCADE")

	if err := migrate(ctx, pool, hostile); err != nil {
		t.Fatalf("migrate(%q): %v", hostile, err)
	}
	var table *string
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1)::text`, canary+".t").Scan(&table); err != nil {
		t.Fatal(err)
	}
	if table == nil {
		t.Fatalf("migrate(%q) dropped the canary table", hostile)
	}
	rows, err := pool.Query(ctx, prepareSQL(q).claimPerKey,
		time.Now(), 10, 1, "o", "tok", time.Now().Add(time.Minute), hostile)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil || n != 0 {
		t.Fatalf("claim_keyed in %s: %d rows, %v; want 0 rows", q, n, err)
	}
}
