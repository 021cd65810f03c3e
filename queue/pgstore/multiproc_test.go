package pgstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/pgstore"
)

// The multi-process test re-executes the test binary as children; these
// variables switch a child on.
const (
	envChild  = "MXRELAY_PGSTORE_CHILD"
	envSchema = "MXRELAY_PGSTORE_SCHEMA"
)

const (
	mpKeys    = 10
	mpPerKey  = 3
	mpWorkers = 8
	mpLease   = 5 * time.Second
)

func TestMain(m *testing.M) {
	if n := os.Getenv(envChild); n != "" {
		if err := runChild(n); err != nil {
			fmt.Fprintln(os.Stderr, "child", n, "failed:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// recorder delivers by recording: before the attempt it adds a row to
// rec_inflight and counts the key's rows under a per-key advisory lock (the
// number of attempts in flight for the key across every process); after,
// in one transaction, it records the delivery with that count and removes
// its in-flight row.
func recorder(pool *pgxpool.Pool, schema string, child int) queue.Deliverer {
	return queue.DelivererFunc(func(ctx context.Context, job *queue.Job) []queue.Outcome {
		fail := func(err error) []queue.Outcome {
			return queue.Outcomes(job, queue.Deferred, "recorder: "+err.Error())
		}
		tx, err := pool.Begin(ctx)
		if err != nil {
			return fail(err)
		}
		defer tx.Rollback(context.Background())
		var seen int
		if _, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('rec'), hashtext($1))`, job.RoutingKey); err == nil {
			if _, err = tx.Exec(ctx, `INSERT INTO `+schema+`.rec_inflight (job_id, child, key) VALUES ($1, $2, $3)`,
				job.ID, child, job.RoutingKey); err == nil {
				err = tx.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.rec_inflight WHERE key = $1`, job.RoutingKey).Scan(&seen)
			}
		}
		if err == nil {
			err = tx.Commit(ctx)
		}
		if err != nil {
			return fail(err)
		}
		time.Sleep(time.Duration(1+rand.IntN(4)) * time.Millisecond) // the "SMTP session"
		tx2, err := pool.Begin(ctx)
		if err != nil {
			return fail(err)
		}
		defer tx2.Rollback(context.Background())
		if _, err = tx2.Exec(ctx, `INSERT INTO `+schema+`.rec_delivered (job_id, child, seen) VALUES ($1, $2, $3)`,
			job.ID, child, seen); err == nil {
			if _, err = tx2.Exec(ctx, `DELETE FROM `+schema+`.rec_inflight WHERE job_id = $1 AND child = $2`, job.ID, child); err == nil {
				err = tx2.Commit(ctx)
			}
		}
		if err != nil {
			return fail(err)
		}
		return queue.Outcomes(job, queue.Delivered, "250 recorded")
	})
}

// childDSN names child n's connections so that the parent can see them.
func childDSN(dsn, schema, n string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	q.Set("application_name", schema+"-child-"+n)
	u.RawQuery = q.Encode()
	return u.String()
}

// runChild runs a queue on the shared schema until SIGTERM.
func runChild(n string) error {
	child, _ := strconv.Atoi(n)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	schema := os.Getenv(envSchema)
	s, err := pgstore.OpenWith(ctx, childDSN(os.Getenv(envDSN), schema, n), pgstore.Options{Schema: schema})
	if err != nil {
		return err
	}
	defer s.Close()
	q := &queue.Queue{
		Store:        s,
		Deliverer:    recorder(s.Pool(), schema, child),
		Retry:        &queue.BackoffPolicy{Intervals: []time.Duration{100 * time.Millisecond}},
		Workers:      mpWorkers,
		PerKey:       mpPerKey,
		Lease:        mpLease,
		PollInterval: 50 * time.Millisecond,
		Grace:        time.Second,
		Owner:        "child-" + n,
	}
	if err := q.Run(ctx); err != context.Canceled {
		return err
	}
	return nil
}

// TestMultiProcess: three processes share one queue of 5,000 jobs (1,000
// with -short); one is killed with SIGKILL midway. Every job is delivered; only jobs leased by
// the killed process are delivered twice; the per-key cap holds across the
// processes.
func TestMultiProcess(t *testing.T) {
	dsn := testDSN(t)
	mpJobs, killAt := 5000, 2000
	if testing.Short() {
		mpJobs, killAt = 1000, 400
	}
	schema := newSchema(t, dsn)
	s := openStore(t, dsn, schema)
	psql(t, dsn, `CREATE TABLE `+schema+`.rec_inflight (job_id text, child int, key text);
		CREATE TABLE `+schema+`.rec_delivered (job_id text, child int, seen int)`)
	ctx := context.Background()
	pool := s.Pool()

	// Enqueue from 32 producers at once (group commit).
	ids := make([]string, mpJobs)
	var wg sync.WaitGroup
	errc := make(chan error, 32)
	now := time.Now()
	for p := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < mpJobs; i += 32 {
				key := fmt.Sprintf("k%d.example", i%mpKeys)
				j := queue.NewJob("s@example.org", []string{fmt.Sprintf("r%d@%s", i, key)}, []byte("Subject: x\r\n\r\nbody\r\n"))
				j.ID, j.Created, j.NextAttempt, j.RoutingKey = queue.NewID(now), now, now, key
				ids[i] = j.ID
				if err := s.Put(ctx, j); err != nil {
					errc <- err
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

	logPath := t.TempDir() + "/children.log"
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	children := make([]*exec.Cmd, 3)
	for i := range children {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envChild+"="+strconv.Itoa(i), envSchema+"="+schema)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children[i] = cmd
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
	}
	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(120 * time.Second) // a bound, not a timing assertion
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if time.Now().After(deadline) {
				out, _ := os.ReadFile(logPath)
				t.Fatalf("timed out waiting for %s; children's output:\n%s", what, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Kill child 0 midway.
	waitFor(fmt.Sprint(killAt, " deliveries"), func() bool {
		return count(`SELECT count(*) FROM `+schema+`.rec_delivered`) >= killAt
	})
	if err := children[0].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	children[0].Wait()
	// Its server backends may still be committing what it sent before it
	// died: wait until they are gone.
	waitFor("the killed child's connections to end", func() bool {
		return count(`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, schema+"-child-0") == 0
	})
	// Its jobs in flight: the leases it still holds.
	rows, err := pool.Query(ctx, `SELECT id FROM `+schema+`.jobs WHERE lease_owner = 'child-0'`)
	if err != nil {
		t.Fatal(err)
	}
	var inflight []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		inflight = append(inflight, id)
	}
	rows.Close()
	// Its in-flight records stop counting now: its leases still block
	// the slots until they expire, long after this.
	psql(t, dsn, `DELETE FROM `+schema+`.rec_inflight WHERE child = 0`)
	deliveredAtKill := count(`SELECT count(*) FROM ` + schema + `.rec_delivered`)

	waitFor("the queue to empty", func() bool {
		st, err := s.Stats(ctx)
		return err == nil && st == (queue.Stats{})
	})
	for _, c := range children[1:] {
		c.Process.Signal(syscall.SIGTERM)
	}
	for i, c := range children[1:] {
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				out, _ := os.ReadFile(logPath)
				t.Errorf("child %d: %v\n%s", i+1, err, out)
			}
		case <-time.After(15 * time.Second):
			c.Process.Kill()
			t.Errorf("child %d did not stop on SIGTERM", i+1)
		}
	}

	// Every job delivered.
	got := map[string]int{}
	rows, err = pool.Query(ctx, `SELECT job_id, count(*) FROM `+schema+`.rec_delivered GROUP BY job_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var n int
		rows.Scan(&id, &n)
		got[id] = n
	}
	rows.Close()
	var missing, dups, badDups []string
	for _, id := range ids {
		switch n := got[id]; {
		case n == 0:
			missing = append(missing, id)
		case n > 1:
			dups = append(dups, id)
			if !slices.Contains(inflight, id) {
				badDups = append(badDups, id)
			}
		}
	}
	if len(got) != mpJobs || len(missing) > 0 {
		t.Errorf("%d distinct jobs delivered, want %d; missing %v", len(got), mpJobs, missing)
	}
	if len(badDups) > 0 {
		t.Errorf("delivered twice though not in flight at the kill: %v", badDups)
	}
	maxSeen := count(`SELECT max(seen) FROM ` + schema + `.rec_delivered`)
	if maxSeen > mpPerKey {
		t.Errorf("per-key cap exceeded: %d attempts in flight for one key, cap %d", maxSeen, mpPerKey)
	}
	if maxSeen < 1 {
		t.Errorf("recorder saw nothing in flight")
	}
	perChild := make([]int, 3)
	for i := range perChild {
		perChild[i] = count(`SELECT count(*) FROM `+schema+`.rec_delivered WHERE child = $1`, i)
	}
	t.Logf("%d jobs, %d deliveries (%d before the kill; per child %v); %d in flight at the kill, %d delivered twice; max in flight per key %d (cap %d)",
		mpJobs, count(`SELECT count(*) FROM `+schema+`.rec_delivered`), deliveredAtKill, perChild,
		len(inflight), len(dups), maxSeen, mpPerKey)
}
