package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/pgstore"
)

// scaleJobs is how many jobs BenchmarkScale preloads per case:
// MXRELAY_BENCH_SCALE_JOBS, default 1,000,000.
func scaleJobs() int {
	if n, err := strconv.Atoi(os.Getenv("MXRELAY_BENCH_SCALE_JOBS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

// scaleMsg is the preloaded jobs' message: small, so that a million rows
// load in seconds; its size does not change what a claim reads.
var scaleMsg = benchMsg[:256]

// preload writes n queued jobs over nkeys routing keys into the store's
// schema with COPY, rows as Put writes them (due = next_attempt), due at
// spread times in the hour before now, then ANALYZEs the tables.
func preload(ctx context.Context, b *testing.B, dsn, schema string, n, nkeys int, now time.Time) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	rng := rand.New(rand.NewPCG(1, uint64(nkeys)))
	i := 0
	// COPY in chunks, each its own transaction: the insert trigger takes
	// a lock per distinct routing key, and PostgreSQL's lock table holds
	// a few thousand.
	const chunk = 2000
	limit := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i >= limit {
			return nil, nil
		}
		key := "k" + strconv.Itoa(i%nkeys) + ".example"
		due := now.Add(-time.Duration(rng.Int64N(int64(time.Hour))))
		id := queue.NewID(due)
		i++
		return []any{id, "a@example.org", []string{"r" + strconv.Itoa(i) + "@" + key}, []int16{0}, []string{""},
			scaleMsg, due, int32(0), due, "", false, key, nil, due}, nil
	})
	cols := []string{"id", "sender", "rcpt_addr", "rcpt_state", "rcpt_reply", "message", "created", "attempts",
		"next_attempt", "last_error", "held", "routing_key", "metadata", "due"}
	for i < n {
		limit = min(i+chunk, n)
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{schema, "jobs"}, cols, src); err != nil {
			b.Fatalf("preload: %v", err)
		}
	}
	if _, err := conn.Exec(ctx, "ANALYZE "+schema+".jobs"); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "DO $$ BEGIN EXECUTE 'ANALYZE "+schema+".routing_keys'; "+
		"EXCEPTION WHEN undefined_table THEN NULL; END $$"); err != nil {
		b.Fatal(err)
	}
}

// errEmpty is fn's answer to timed for a call that did nothing: not
// counted, and not a failure.
var errEmpty = errors.New("empty claim")

// timed runs fn in p goroutines until n calls succeeded or d passed, and
// returns the calls that succeeded and their rate per second.
func timed(b *testing.B, n, p int, d time.Duration, fn func() error) (int64, float64) {
	var done atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range p {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done.Load() < int64(n) && time.Since(start) < d {
				if err := fn(); errors.Is(err, errEmpty) {
					continue
				} else if err != nil {
					failed.Store(err)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return done.Load(), float64(done.Load()) / time.Since(start).Seconds()
}

// BenchmarkScale preloads MXRELAY_BENCH_SCALE_JOBS queued jobs (default a
// million) over 10, 10,000 and 100,000 routing keys, each case in a schema
// of its own dropped afterwards, and measures on that backlog: Put with 32
// workers, the cost of one Claim (Max 1, PerKey 4, as queue.Queue claims)
// with one worker claiming and finishing, and claim+finish with 16
// workers. It prints one table. Run it once (-benchtime 1x):
//
//	MXRELAY_TEST_POSTGRES=... go test -run '^$' -bench Scale -benchtime 1x -timeout 1h ./pgstore/
func BenchmarkScale(b *testing.B) {
	dsn := os.Getenv("MXRELAY_TEST_POSTGRES")
	if dsn == "" {
		b.Skip("bench/pgstore: MXRELAY_TEST_POSTGRES is not set (a PostgreSQL DSN)")
	}
	type result struct {
		keys, jobs      int
		load            time.Duration
		put             float64
		claimMs, claim1 float64
		claim16         float64
		empty16         int64
	}
	var results []result
	n := scaleJobs()
	for _, nkeys := range []int{10, 10_000, 100_000} {
		b.Run("keys="+strconv.Itoa(nkeys), func(b *testing.B) {
			ctx := context.Background()
			s := open(b, "pgstore").(*pgstore.Store)
			schema := s.Schema()
			now := time.Now()
			t0 := time.Now()
			preload(ctx, b, dsn, schema, n, nkeys, now)
			r := result{keys: nkeys, jobs: n, load: time.Since(t0)}
			var seq atomic.Int64
			_, r.put = timed(b, 5000, 32, 10*time.Second, func() error {
				i := int(seq.Add(1))
				j := job(i, now.Add(time.Hour)) // due later: the claims below do not see them
				j.RoutingKey = "k" + strconv.Itoa(i%nkeys) + ".example"
				return s.Put(ctx, j)
			})
			var claimTime, empty atomic.Int64
			cf := func() error {
				start := time.Now()
				jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "bench", Max: 1, PerKey: 4,
					Now: time.Now(), Lease: time.Hour})
				claimTime.Add(int64(time.Since(start)))
				if err != nil {
					return err
				}
				if len(jobs) == 0 {
					// Every due key at its cap or locked by other
					// claimers: counted, and tried again.
					empty.Add(1)
					return errEmpty
				}
				jobs[0].Recipients[0].State = queue.Delivered
				return s.Finish(ctx, jobs[0])
			}
			calls, rate := timed(b, 200, 1, 20*time.Second, cf)
			r.claim1 = rate
			r.claimMs = float64(claimTime.Load()) / float64(calls+empty.Load()) / 1e6
			empty.Store(0)
			_, r.claim16 = timed(b, 5000, 16, 15*time.Second, cf)
			r.empty16 = empty.Load()
			results = append(results, r)
		})
	}
	fmt.Printf("\npgstore at scale, schema version %d: %d queued jobs per case\n", pgstore.SchemaVersion, n)
	fmt.Printf("%8s %10s %8s %8s %10s %15s %16s %10s\n",
		"keys", "jobs", "load s", "put/s", "claim ms", "claim+fin/s x1", "claim+fin/s x16", "empty x16")
	for _, r := range results {
		fmt.Printf("%8d %10d %8.1f %8.0f %10.2f %15.0f %16.0f %10d\n",
			r.keys, r.jobs, r.load.Seconds(), r.put, r.claimMs, r.claim1, r.claim16, r.empty16)
	}
}
