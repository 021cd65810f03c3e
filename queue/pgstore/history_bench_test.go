package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mxrelay/mxrelay/queue"
)

// The history benchmark's data: benchRecords records, each with 1 to 3
// recipients drawn from benchAddrs addresses (about 10 records an
// address), and benchHot, which is a recipient of exactly 1,000 of them.
const (
	benchRecords = 1_000_000
	benchAddrs   = 200_000
	benchHot     = "Hot@Bench.example"
	benchSchema  = "mxrelay_bench_history"
	// benchMark, the schema's comment, says that the data are complete
	// and of this generator; a schema without it is built again.
	benchMark = "mxrelay history benchmark: 1000000 records, generator 1, schema version "
	// envBenchKeep keeps the benchmark's schema after the run, for the
	// next run to reuse.
	envBenchKeep = "MXRELAY_BENCH_KEEP_SCHEMA"
)

func benchAddr(i int) string { return fmt.Sprintf("user%06d@d%03d.example", i, i%997) }

func benchID(i int) string { return fmt.Sprintf("h%07d", i) }

// BenchmarkHistoryByRecipient looks up the first page (50 records) of an
// address's history among 1,000,000 records with about 2,000,000
// recipient entries, as Records with RecordFilter.Recipient does; the
// goal is under 5 ms a lookup. Sub-benchmarks: random addresses (about 10
// records each), and an address with 1,000 records, its first page and a
// page deep in it.
//
// The data are loaded once per run with COPY (about half a minute), into
// the schema mxrelay_bench_history, which is dropped at the end; with
// MXRELAY_BENCH_KEEP_SCHEMA=1 it stays, and a later run reuses it if it is
// complete (its comment names this generator and the schema version).
// With -v the benchmark logs the plan of the lookup (EXPLAIN ANALYZE).
//
//	MXRELAY_TEST_POSTGRES=postgres://... go test -run '^$' -bench HistoryByRecipient -v ./queue/pgstore
func BenchmarkHistoryByRecipient(b *testing.B) {
	dsn := os.Getenv("MXRELAY_TEST_POSTGRES")
	if dsn == "" {
		b.Skip("pgstore: MXRELAY_TEST_POSTGRES is not set; set it to a PostgreSQL DSN " +
			"(e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run this benchmark")
	}
	ctx := context.Background()
	s := benchHistoryStore(b, dsn)
	rng := rand.New(rand.NewPCG(7, 8))

	b.Run("random", func(b *testing.B) {
		found, calls := 0, 0
		for b.Loop() {
			recs, _, err := s.Records(ctx, queue.RecordFilter{Recipient: benchAddr(rng.IntN(benchAddrs)), Limit: 50})
			if err != nil {
				b.Fatal(err)
			}
			found += len(recs)
			calls++
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(calls), "ms/lookup")
		b.ReportMetric(float64(found)/float64(calls), "records/lookup")
	})
	hot := func(name string, before string) {
		b.Run(name, func(b *testing.B) {
			calls := 0
			for b.Loop() {
				recs, next, err := s.Records(ctx, queue.RecordFilter{Recipient: strings.ToLower(benchHot), Before: before, Limit: 50})
				if err != nil {
					b.Fatal(err)
				}
				if len(recs) != 50 || next == "" || len(recs[0].Recipients) != 1 {
					b.Fatalf("%d records, next %q", len(recs), next)
				}
				calls++
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(calls), "ms/lookup")
		})
	}
	hot("hot1000/first", "")
	// Before the hot address's 900th newest record (its records are
	// 0, 1000, 2000, ...): a page 900 records deep.
	hot("hot1000/deep", benchID((1000-900)*1000))

	if testing.Verbose() {
		for _, f := range []queue.RecordFilter{{Recipient: benchAddr(4242), Limit: 50}, {Recipient: benchHot, Limit: 50}} {
			sql, args, _, err := s.recordsQuery(&f)
			if err != nil {
				b.Fatal(err)
			}
			rows, err := s.pool.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "+sql, args...)
			if err != nil {
				b.Fatal(err)
			}
			plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("EXPLAIN ANALYZE of Records(%+v):\n%s\n\t%s", f, sql, strings.Join(plan, "\n\t"))
		}
	}
}

// benchHistoryStore returns a store on the benchmark's schema, building
// its data unless a complete copy is there.
func benchHistoryStore(b *testing.B, dsn string) *Store {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var mark *string
	if err := conn.QueryRow(ctx, `SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = $1`,
		benchSchema).Scan(&mark); err != nil && err != pgx.ErrNoRows {
		b.Fatal(err)
	}
	keep := os.Getenv(envBenchKeep) != ""
	complete := mark != nil && *mark == benchMark+fmt.Sprint(SchemaVersion)
	if !complete {
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+benchSchema+` CASCADE`); err != nil {
			b.Fatal(err)
		}
	}
	s, err := OpenWith(ctx, dsn, Options{Schema: benchSchema})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		s.Close()
		if !keep {
			c, err := pgx.Connect(context.Background(), dsn)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close(context.Background())
			if _, err := c.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+benchSchema+` CASCADE`); err != nil {
				b.Error(err)
			}
		}
	})
	if complete {
		b.Logf("reusing the data in schema %s", benchSchema)
		return s
	}
	start := time.Now()
	phases, err := benchLoad(ctx, s)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `COMMENT ON SCHEMA `+s.q+` IS '`+benchMark+fmt.Sprint(SchemaVersion)+`'`); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d records into schema %s in %v (%s)", benchRecords, benchSchema,
		time.Since(start).Round(time.Millisecond), phases)
	return s
}

// benchLoad fills the history tables with COPY and analyses them. The
// secondary indexes and the foreign key, as the migration made them, are
// dropped for the load and made again from their definitions in the
// catalog: one sort is much faster than 2,000,000 inserts in random
// places of an index larger than the server's cache.
// It returns how long each step took.
func benchLoad(ctx context.Context, s *Store) (string, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Release()
	var redo []string
	rows, err := conn.Query(ctx, `
		SELECT 'DROP INDEX ' || indexrelid::regclass::text, pg_get_indexdef(indexrelid)
		FROM pg_index WHERE indrelid IN ($1::regclass, $2::regclass) AND NOT indisprimary
		UNION ALL
		SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),
			format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
		FROM pg_constraint WHERE conrelid IN ($1::regclass, $2::regclass) AND contype = 'f'`,
		s.q+".history", s.q+".history_rcpt")
	if err != nil {
		return "", err
	}
	defs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var d [2]string
		return d, r.Scan(&d[0], &d[1])
	})
	if err != nil {
		return "", fmt.Errorf("read index definitions: %w", err)
	}
	for _, d := range defs {
		if _, err := conn.Exec(ctx, d[0]); err != nil {
			return "", fmt.Errorf("%s: %w", d[0], err)
		}
		redo = append(redo, d[1])
	}
	var phases []string
	t := time.Now()
	phase := func(name string) {
		phases = append(phases, fmt.Sprintf("%s %v", name, time.Since(t).Round(100*time.Millisecond)))
		t = time.Now()
	}
	if err := benchCopy(ctx, conn.Conn(), s.schema); err != nil {
		return "", err
	}
	phase("copy")
	if _, err := conn.Exec(ctx, `SET maintenance_work_mem = '512MB'`); err != nil {
		return "", err
	}
	for _, sql := range redo {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return "", fmt.Errorf("%s: %w", sql, err)
		}
	}
	phase("indexes and foreign key")
	if _, err := conn.Exec(ctx, `RESET maintenance_work_mem; ANALYZE `+s.q+`.history; ANALYZE `+s.q+`.history_rcpt`); err != nil {
		return "", fmt.Errorf("analyze: %w", err)
	}
	phase("analyze")
	return strings.Join(phases, ", "), nil
}

// benchCopy copies the records and their entries into the tables.
func benchCopy(ctx context.Context, conn *pgx.Conn, schema string) error {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	metadata := []byte(`{"user":"42","batch":"7"}`)
	n, err := conn.CopyFrom(ctx, pgx.Identifier{schema, "history"},
		[]string{"id", "message_id", "sender", "subject", "campaign", "list", "metadata", "created", "updated"},
		pgx.CopyFromSlice(benchRecords, func(i int) ([]any, error) {
			at := t0.Add(time.Duration(i) * time.Second)
			return []any{benchID(i), fmt.Sprintf("%d.%s@mail.example", i, benchID(i)), "bounces@mail.example",
				fmt.Sprintf("Newsletter %d", i/1000), fmt.Sprintf("c%02d", i/20_000), "news", metadata, at, at}, nil
		}))
	if err != nil {
		return fmt.Errorf("copy history: %w", err)
	}
	if n != benchRecords {
		return fmt.Errorf("copied %d records", n)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		rec   int // the record whose entries are being made
		addrs []string
		pos   int
	)
	entry := queue.RecipientRecord{Status: "delivered", Code: 250, Enhanced: "2.0.0", MX: "mx1.d.example",
		Source: "192.0.2.25", TLSVersion: "TLS 1.3", TLSVerified: true, TLSPolicy: "opportunistic", Attempts: 1}
	next := func() ([]any, error) {
		if pos == len(addrs) {
			addrs, pos = addrs[:0], 0
			for k := 1 + rng.IntN(3); len(addrs) < k; {
				if a := benchAddr(rng.IntN(benchAddrs)); !containsFold(addrs, a) {
					addrs = append(addrs, a)
				}
			}
			if rec%1000 == 0 {
				addrs[0] = benchHot
			}
			rec++
		}
		e := entry
		e.Addr = addrs[pos]
		e.Time = t0.Add(time.Duration(rec-1)*time.Second + time.Duration(pos+1)*time.Millisecond)
		e.Reply = "250 2.0.0 Ok: queued as " + benchID(rec-1)
		if rng.IntN(5) == 0 {
			e.Notes = []queue.Note{{Type: "opened", Time: e.Time.Add(time.Hour), UserAgent: "Mozilla/5.0", Client: "198.51.100.7"}}
		}
		j, err := json.Marshal(&e)
		if err != nil {
			return nil, err
		}
		row := []any{benchID(rec - 1), queue.FoldAddr(e.Addr), int32(pos), j}
		pos++
		return row, nil
	}
	src := &benchRows{next: next, more: func() bool { return rec < benchRecords || pos < len(addrs) }}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{schema, "history_rcpt"},
		[]string{"id", "addr_fold", "pos", "entry"}, src); err != nil {
		return fmt.Errorf("copy history_rcpt: %w", err)
	}
	return nil
}

func containsFold(addrs []string, a string) bool {
	for _, x := range addrs {
		if queue.FoldAddr(x) == queue.FoldAddr(a) {
			return true
		}
	}
	return false
}

// benchRows is a pgx.CopyFromSource made of two functions.
type benchRows struct {
	next func() ([]any, error)
	more func() bool
	row  []any
	err  error
}

func (r *benchRows) Next() bool {
	if r.err != nil || !r.more() {
		return false
	}
	r.row, r.err = r.next()
	return r.err == nil
}

func (r *benchRows) Values() ([]any, error) { return r.row, r.err }
func (r *benchRows) Err() error             { return r.err }
