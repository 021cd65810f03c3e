package pgstore_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/pgstore"
)

// refusedSchemas are names Options.Schema must refuse. Each would be a
// valid quoted identifier in PostgreSQL; several would have run SQL of
// their own when the schema was pasted into claim_keyed's body.
var refusedSchemas = []string{
	`a"; drop table x; --`,
	`x$fn$; DROP TABLE IF EXISTS x.t; SELECT $fn$`,
	`a$fn$`,
	`"a"`,
	"a;b",
	"Public",
	"MXRELAY",
	"mxRelay",
	"pg_x",
	"pg_",
	"pg_catalog",
	"pg_temp",
	"pg_toast",
	strings.Repeat("a", 64),
	"1abc",
	"9",
	"a-b",
	"a b",
	" a",
	"a ",
	"a.b",
	"a\n",
	"\na",
	"a\x00",
	"schéma",
	"ａ", // fullwidth a
}

// acceptedSchemas pass the check ("" is DefaultSchema).
var acceptedSchemas = []string{
	"",
	"a",
	"_",
	"_9",
	"mxrelay",
	"mail_queue",
	"pg",
	"pgx",
	"pg1_x",
	"public",
	"select", // a keyword: it is quoted wherever it is used
	strings.Repeat("a", 63),
}

// countingPool returns a pool whose every connection attempt is counted and
// fails before dialling: New with it never reaches a server.
func countingPool(t *testing.T) (*pgxpool.Pool, *atomic.Int32) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig("postgres://postgres@127.0.0.1:1/test?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	cfg.BeforeConnect = func(context.Context, *pgx.ConnConfig) error {
		n.Add(1)
		return errors.New("this test has no server")
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, &n
}

// TestSchemaNameRule: refused names fail OpenWith and New with
// ErrInvalidSchema before any connection is attempted; accepted names get
// as far as connecting. It needs no server.
func TestSchemaNameRule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Nothing listens on port 1: a connection attempt would fail with a
	// connect error, not ErrInvalidSchema.
	const noServer = "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=5"
	for _, name := range refusedSchemas {
		t.Run("refused/"+strconv.Quote(name), func(t *testing.T) {
			pool, attempts := countingPool(t)
			s, err := pgstore.New(ctx, pool, pgstore.Options{Schema: name})
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, pgstore.ErrInvalidSchema) {
				t.Fatalf("New: %v, want ErrInvalidSchema", err)
			}
			if n := attempts.Load(); n != 0 {
				t.Fatalf("New made %d connection attempts before refusing the name", n)
			}
			if !strings.HasPrefix(err.Error(), "pgstore: ") || !strings.Contains(err.Error(), strconv.Quote(name)) {
				t.Fatalf("New: %q, want a pgstore error naming %q", err, name)
			}
			s, err = pgstore.OpenWith(ctx, noServer, pgstore.Options{Schema: name})
			if err == nil {
				s.Close()
				t.Fatal("OpenWith succeeded")
			}
			if !errors.Is(err, pgstore.ErrInvalidSchema) {
				t.Fatalf("OpenWith: %v, want ErrInvalidSchema", err)
			}
		})
	}
	for _, name := range acceptedSchemas {
		t.Run("accepted/"+strconv.Quote(name), func(t *testing.T) {
			pool, attempts := countingPool(t)
			s, err := pgstore.New(ctx, pool, pgstore.Options{Schema: name})
			if err == nil {
				s.Close()
				t.Fatal("New succeeded without a server")
			}
			if errors.Is(err, pgstore.ErrInvalidSchema) {
				t.Fatalf("New refused an allowed name: %v", err)
			}
			if attempts.Load() == 0 {
				t.Fatalf("New failed without trying to connect: %v", err)
			}
		})
	}
}

// schemaExists reports whether a schema of that name (or of its first 63
// bytes, as PostgreSQL truncates identifiers) exists.
func schemaExists(t *testing.T, conn *pgx.Conn, name string) bool {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(),
		`SELECT count(*) FROM pg_namespace WHERE nspname = $1 OR nspname = left($1, 63)`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestSchemaNamesOnServer: refused names leave no schema behind; allowed
// names of every shape, up to 63 characters, make a working store whose
// claim_keyed finds its tables through its search_path.
func TestSchemaNamesOnServer(t *testing.T) {
	dsn := testDSN(t)
	conn := connect(t, dsn)
	ctx := context.Background()
	for _, name := range refusedSchemas {
		if strings.ContainsRune(name, 0) {
			continue // not a valid PostgreSQL string
		}
		existed := schemaExists(t, conn, name) // pg_catalog and the like
		s, err := pgstore.OpenWith(ctx, dsn, pgstore.Options{Schema: name})
		if err == nil {
			s.Close()
			t.Errorf("OpenWith(%q) succeeded", name)
		} else if !errors.Is(err, pgstore.ErrInvalidSchema) {
			t.Errorf("OpenWith(%q): %v, want ErrInvalidSchema", name, err)
		}
		if !existed && schemaExists(t, conn, name) {
			t.Errorf("OpenWith(%q) left a schema behind", name)
			psql(t, dsn, "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE")
		}
	}
	long := randomName("mxrelay_test_")
	long += strings.Repeat("x", 63-len(long))
	for _, name := range []string{randomName("mxrelay_test_"), randomName("_"), long} {
		t.Cleanup(func() { psql(t, dsn, "DROP SCHEMA IF EXISTS "+name+" CASCADE") })
		s := openStore(t, dsn, name)
		if s.Schema() != name {
			t.Errorf("Schema() = %q, want %q", s.Schema(), name)
		}
		if !schemaExists(t, conn, name) {
			t.Errorf("schema %q not created", name)
		}
		var config []string
		if err := conn.QueryRow(ctx, `SELECT proconfig FROM pg_proc WHERE oid = to_regprocedure($1)`,
			name+".claim_keyed(timestamptz, integer, integer, text, text, timestamptz, integer)").Scan(&config); err != nil {
			t.Fatalf("claim_keyed of %q: %v", name, err)
		}
		if want := "search_path=pg_catalog, " + name + ", pg_temp"; !slices.Contains(config, want) {
			t.Errorf("claim_keyed of %q: settings %q, want %q", name, config, want)
		}
		for i := range 3 {
			if err := s.Put(ctx, testJob(i, "k.example")); err != nil {
				t.Fatal(err)
			}
		}
		jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "o", Max: 3, PerKey: 2, Now: t0, Lease: time.Minute})
		if err != nil || len(jobs) != 2 {
			t.Fatalf("Claim in %q with cap 2: %d jobs, %v; want 2", name, len(jobs), err)
		}
	}
}

// TestClaimKeyedIgnoresTempTables: a temporary table named jobs on the
// claiming connection does not take the place of the queue's table
// (pg_temp comes last in claim_keyed's search_path).
func TestClaimKeyedIgnoresTempTables(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1 // every statement on the connection with the temp table
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := pgstore.New(ctx, pool, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Put(ctx, testJob(1, "k.example")); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TEMP TABLE jobs AS SELECT * FROM `+schema+`.jobs WITH NO DATA`); err != nil {
		t.Fatal(err)
	}
	jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "o", Max: 5, PerKey: 5, Now: t0, Lease: time.Minute})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("Claim beside a temp table named jobs: %d jobs, %v; want 1", len(jobs), err)
	}
}

// withParam returns dsn with a run-time parameter added, in the DSN's own
// form (URL or key=value).
func withParam(dsn, key, value string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + value
}

// TestSchemaInjectionCanary: schema names crafted to drop a table of
// another schema, opened on connections with check_function_bodies off (so
// that the server does not parse claim_keyed's body at creation, as the
// attack needed), are refused with ErrInvalidSchema and the table is
// still there. Before the names were checked, the first one ended
// claim_keyed's dollar-quoted body early and the DROP ran.
func TestSchemaInjectionCanary(t *testing.T) {
	dsn := testDSN(t)
	canary := randomName("mxrelay_canary_")
	psql(t, dsn, "CREATE SCHEMA "+canary+"; CREATE TABLE "+canary+".t (x integer)")
	t.Cleanup(func() { psql(t, dsn, "DROP SCHEMA IF EXISTS "+canary+" CASCADE") })
	conn := connect(t, dsn)
	ctx := context.Background()
	hostile := []string{
		"x$fn$; DROP TABLE IF EXISTS " + canary + ".t; SELECT $fn$",
		"x$fn$; DROP TABLE " + canary + ".t; --",
		`x"; DROP TABLE ` + canary + ".t; --",
		`x".jobs; DROP TABLE ` + canary + ".t; --",
	}
	off := withParam(dsn, "check_function_bodies", "off")
	for _, name := range hostile {
		t.Cleanup(func() {
			psql(t, dsn, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
		})
		s, err := pgstore.OpenWith(ctx, off, pgstore.Options{Schema: name})
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, pgstore.ErrInvalidSchema) {
			t.Errorf("OpenWith(%q): %v, want ErrInvalidSchema", name, err)
		}
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ConnConfig.RuntimeParams["check_function_bodies"] = "off"
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		s, err = pgstore.New(ctx, pool, pgstore.Options{Schema: name})
		if err == nil {
			s.Close()
		}
		pool.Close()
		if !errors.Is(err, pgstore.ErrInvalidSchema) {
			t.Errorf("New(%q): %v, want ErrInvalidSchema", name, err)
		}
		var table *string
		if err := conn.QueryRow(ctx, `SELECT to_regclass($1)::text`, canary+".t").Scan(&table); err != nil {
			t.Fatal(err)
		}
		if table == nil {
			t.Fatalf("schema name %q dropped the canary table %s.t", name, canary)
		}
		if schemaExists(t, conn, name) {
			t.Errorf("schema name %q: schema created", name)
		}
	}
	// The connection setting did reach the server: the refusal, not the
	// server, stopped the attack.
	var setting string
	c := connect(t, off)
	if err := c.QueryRow(ctx, `SHOW check_function_bodies`).Scan(&setting); err != nil || setting != "off" {
		t.Fatalf("check_function_bodies on the attack's connections: %q, %v; want off", setting, err)
	}
}
