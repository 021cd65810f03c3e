package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/pgstore"
	"github.com/mxrelay/mxrelay/queue/queuetest"
)

const envDSN = "MXRELAY_TEST_POSTGRES"

// testDSN returns the test server's DSN or skips.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(envDSN)
	if dsn == "" {
		t.Skip("pgstore: " + envDSN + " is not set; set it to a PostgreSQL DSN " +
			"(e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run these tests")
	}
	return dsn
}

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// psql runs statements on a connection of its own.
func psql(t testing.TB, dsn, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// newSchema returns a fresh schema name, dropped when the test ends.
func newSchema(t testing.TB, dsn string) string {
	t.Helper()
	name := randomName("mxrelay_test_")
	t.Cleanup(func() { psql(t, dsn, "DROP SCHEMA IF EXISTS "+name+" CASCADE") })
	return name
}

// openStore opens a store in schema, closed when the test ends.
func openStore(t testing.TB, dsn, schema string) *pgstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pgstore.OpenWith(ctx, dsn, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatalf("OpenWith: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	dsn := testDSN(t)
	queuetest.TestStore(t, func(t *testing.T) queue.Store {
		return openStore(t, dsn, newSchema(t, dsn))
	}, queuetest.StoreOptions{
		// A new store on the same schema, as a restarted process opens it.
		Reopen: func(t *testing.T, old queue.Store) queue.Store {
			s := old.(*pgstore.Store)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openStore(t, dsn, s.Schema())
		},
	})
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func testJob(i int, key string) *queue.Job {
	j := queue.NewJob("sender@example.org", []string{fmt.Sprintf("r%d@%s", i, key)},
		[]byte(fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i)))
	j.ID = fmt.Sprintf("job-%06d", i)
	j.Created, j.NextAttempt, j.RoutingKey = t0, t0, key
	return j
}

// TestTwoStoresShareQueue: two stores (as two processes would) on one
// schema see each other's jobs and leases, and the per-key cap counts
// both.
func TestTwoStoresShareQueue(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	a, b := openStore(t, dsn, schema), openStore(t, dsn, schema)
	ctx := context.Background()
	for i := range 6 {
		if err := a.Put(ctx, testJob(i, "k.example")); err != nil {
			t.Fatal(err)
		}
	}
	ja, err := a.Claim(ctx, queue.ClaimRequest{Owner: "a", Max: 10, PerKey: 2, Now: t0, Lease: time.Minute})
	if err != nil || len(ja) != 2 {
		t.Fatalf("a.Claim: %d jobs, %v; want 2", len(ja), err)
	}
	jb, err := b.Claim(ctx, queue.ClaimRequest{Owner: "b", Max: 10, PerKey: 3, Now: t0, Lease: time.Minute})
	if err != nil || len(jb) != 1 {
		t.Fatalf("b.Claim with cap 3 and 2 leases taken by a: %d jobs, %v; want 1", len(jb), err)
	}
	// b finishes a's job with a's token: fencing is by token, not store.
	ja[0].Recipients[0].State = queue.Delivered
	if err := b.Finish(ctx, ja[0]); err != nil {
		t.Fatalf("b.Finish of a's lease: %v", err)
	}
	if err := a.Finish(ctx, ja[0]); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("a.Finish after b finished it: %v, want ErrNotFound", err)
	}
	st, err := b.Stats(ctx)
	if err != nil || st != (queue.Stats{Queued: 3, Active: 2}) {
		t.Fatalf("Stats: %+v, %v; want 3 queued, 2 active", st, err)
	}
}

// TestPerKeyCapConcurrent: many claimers in parallel, each with its own
// store (own pool), never lease more than the cap for one key.
func TestPerKeyCapConcurrent(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	const keys, perKey, n = 3, 2, 60
	stores := []*pgstore.Store{openStore(t, dsn, schema), openStore(t, dsn, schema), openStore(t, dsn, schema)}
	ctx := context.Background()
	for i := range n {
		if err := stores[0].Put(ctx, testJob(i, fmt.Sprintf("k%d.example", i%keys))); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	held := map[string]int{}
	var wg sync.WaitGroup
	errc := make(chan error, 12)
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%len(stores)]
			for range 200 { // bounded
				jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: fmt.Sprint(w), Max: 2, PerKey: perKey, Now: t0, Lease: time.Hour})
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				for _, j := range jobs {
					held[j.RoutingKey]++
					if held[j.RoutingKey] > perKey {
						errc <- fmt.Errorf("key %s has %d leases, cap %d", j.RoutingKey, held[j.RoutingKey], perKey)
					}
				}
				mu.Unlock()
				for _, j := range jobs {
					mu.Lock()
					held[j.RoutingKey]--
					mu.Unlock()
					j.Recipients[0].State = queue.Delivered
					if err := s.Finish(ctx, j); err != nil {
						errc <- err
						return
					}
				}
				st, err := s.Stats(ctx)
				if err != nil {
					errc <- err
					return
				}
				if st.Queued+st.Active == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if st, _ := stores[1].Stats(ctx); st != (queue.Stats{}) {
		t.Fatalf("Stats after all finished: %+v", st)
	}
}

// TestPutBatchIsolation: one job the database refuses does not fail the
// others committed with it.
func TestPutBatchIsolation(t *testing.T) {
	dsn := testDSN(t)
	s := openStore(t, dsn, newSchema(t, dsn))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := testJob(i, "example.com")
			if i == 7 {
				j.LastError = "nul \x00 byte" // PostgreSQL text refuses NUL
			}
			errs[i] = s.Put(ctx, j)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 7) {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	if err := errs[7]; err == nil || !strings.HasPrefix(err.Error(), "pgstore: put") {
		t.Errorf("Put of a NUL byte: %v, want a pgstore: put error", err)
	}
	if st, err := s.Stats(ctx); err != nil || st.Queued != 39 {
		t.Fatalf("Stats: %+v %v, want 39 queued", st, err)
	}
}

// TestWake: a Put from another store wakes a listener.
func TestWake(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	a, b := openStore(t, dsn, schema), openStore(t, dsn, schema)
	wake := a.Wake()
	waitWake(t, wake, "initial signal after LISTEN")
	if err := b.Put(context.Background(), testJob(1, "example.com")); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wake, "after another store's Put")
	held := testJob(2, "example.com")
	held.Held = true
	if err := b.Put(context.Background(), held); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(context.Background(), held.ID, queue.ActionRelease); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wake, "after Release")
	later := testJob(3, "example.com")
	later.NextAttempt = t0.Add(time.Hour)
	if err := b.Put(context.Background(), later); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wake, "after another store's Put of a later job")
	if err := b.Set(context.Background(), later.ID, queue.ActionRetry); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wake, "after Retry")
}

// TestRetryStoresZeroTime: Set(ActionRetry) stores the zero time.Time in
// next_attempt and due as the first instant of year 1, which Get reads
// back as the zero time; a leased job's due stays at its lease's end.
func TestRetryStoresZeroTime(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	s := openStore(t, dsn, schema)
	ctx := context.Background()
	queued, leased := testJob(1, "example.com"), testJob(2, "example.com")
	queued.NextAttempt = t0.Add(time.Hour)
	for _, j := range []*queue.Job{leased, queued} {
		if err := s.Put(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "w", Max: 5, Now: t0, Lease: time.Minute})
	if err != nil || len(jobs) != 1 || jobs[0].ID != leased.ID {
		t.Fatalf("Claim: %v, %v; want %s", jobs, err, leased.ID)
	}
	for _, id := range []string{queued.ID, leased.ID} {
		if err := s.Set(ctx, id, queue.ActionRetry); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !got.NextAttempt.IsZero() {
			t.Fatalf("Get(%s).NextAttempt: %v, want the zero time", id, got.NextAttempt)
		}
	}
	var year1, leaseEnd bool
	err = s.Pool().QueryRow(ctx, `SELECT
		bool_and(next_attempt = '0001-01-01 00:00:00+00'),
		bool_and(due = CASE WHEN id = $1 THEN '0001-01-01 00:00:00+00'::timestamptz ELSE $2::timestamptz END)
		FROM `+schema+`.jobs`, queued.ID, t0.Add(time.Minute)).Scan(&year1, &leaseEnd)
	if err != nil {
		t.Fatal(err)
	}
	if !year1 || !leaseEnd {
		t.Fatalf("next_attempt year 1 in both rows: %v; due year 1 for the queued job and the lease's end for the leased one: %v",
			year1, leaseEnd)
	}
}

func waitWake(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("no wake-up %s within 10 s", what)
	}
}

func TestClosed(t *testing.T) {
	dsn := testDSN(t)
	s := openStore(t, dsn, newSchema(t, dsn))
	s.Wake()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := context.Background()
	if err := s.Put(ctx, testJob(1, "example.com")); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Put after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Claim(ctx, queue.ClaimRequest{Max: 1, Now: t0}); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Claim after Close: %v, want ErrClosed", err)
	}
}

// TestRowConstraints: the table refuses rows the store could not decode,
// and metadata written by hand with non-string values still reads back.
func TestRowConstraints(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	s := openStore(t, dsn, schema)
	ctx := context.Background()
	j := testJob(1, "example.com")
	if err := s.Put(ctx, j); err != nil {
		t.Fatal(err)
	}
	for _, set := range []string{
		"rcpt_state = '{9}'",
		"rcpt_reply = '{a,b}'",
		"metadata = '[1]'",
		"lease_token = 'x'",
	} {
		if _, err := s.Pool().Exec(ctx, "UPDATE "+schema+".jobs SET "+set); err == nil {
			t.Errorf("UPDATE SET %s accepted", set)
		}
	}
	if _, err := s.Pool().Exec(ctx, "UPDATE "+schema+`.jobs SET metadata = '{"n": 5, "s": "x"}'`); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Metadata["n"] != "5" || got.Metadata["s"] != "x" {
		t.Fatalf("Metadata %v", got.Metadata)
	}
}
