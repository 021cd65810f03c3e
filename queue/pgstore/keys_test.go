package pgstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/pgstore"
)

// dropKeysSQL undoes what schema version 5 added but claim_keyed (which
// the migration replaces), and what version 6 added, for tests that
// rewind a schema's version.
func dropKeysSQL(schema string) string {
	return dropLimitsSQL(schema) + "; " + "DROP TRIGGER jobs_keys_insert ON " + schema + ".jobs; DROP TRIGGER jobs_keys_update ON " + schema + ".jobs; " +
		"DROP FUNCTION " + schema + ".jobs_inserted(), " + schema + ".job_due_lowered(), " +
		schema + ".note_due(text[], timestamptz[]); DROP TABLE " + schema + ".routing_keys"
}

// dropLimitsSQL drops what schema version 6 added (limits.go), for tests
// that rebuild an earlier version.
func dropLimitsSQL(schema string) string {
	return "DROP FUNCTION " + schema + ".acquire_slot, " + schema + ".take_turns, " + schema + ".note_backoff, " +
		schema + ".lock_dest; DROP TABLE " + schema + ".dest_slots, " + schema + ".dest_state"
}

// keyDue returns the routing_keys row's due for key, or nil without a row.
func keyDue(t *testing.T, s *pgstore.Store, key string) *time.Time {
	t.Helper()
	var due []time.Time
	rows, err := s.Pool().Query(context.Background(), "SELECT due FROM "+s.Schema()+".routing_keys WHERE routing_key = $1", key)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var d time.Time
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		due = append(due, d)
	}
	if rows.Close(); rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	if len(due) == 0 {
		return nil
	}
	return &due[0]
}

func claimN(t *testing.T, s queue.Store, r queue.ClaimRequest) []*queue.Job {
	t.Helper()
	if r.Lease == 0 {
		r.Lease = time.Hour
	}
	jobs, err := s.Claim(context.Background(), r)
	if err != nil {
		t.Fatalf("Claim(%+v): %v", r, err)
	}
	return jobs
}

func perKeyCount(jobs []*queue.Job) map[string]int {
	m := map[string]int{}
	for _, j := range jobs {
		m[j.RoutingKey]++
	}
	return m
}

// TestClaimCapManyKeys: with 1,500 keys of 3 jobs, one claim under a cap
// of 2 takes exactly 2 of every key, a second takes none, and a slot
// freed by Finish (done, or given back due at once) is taken again by the
// next claim, from that key only. Keys are served earliest due first,
// whatever their names.
func TestClaimCapManyKeys(t *testing.T) {
	dsn := testDSN(t)
	s := openStore(t, dsn, newSchema(t, dsn))
	ctx := context.Background()
	const keys = 1500
	var wg sync.WaitGroup
	errc := make(chan error, 3*keys)
	for i := range 3 * keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := testJob(i, fmt.Sprintf("k%04d.example", i%keys))
			j.NextAttempt = t0.Add(-time.Duration(i) * time.Second)
			errc <- s.Put(ctx, j)
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := claimN(t, s, queue.ClaimRequest{Owner: "a", Max: 10 * keys, PerKey: 2, Now: t0})
	counts := perKeyCount(got)
	if len(got) != 2*keys || len(counts) != keys {
		t.Fatalf("Claim with cap 2 over %d keys: %d jobs over %d keys, want %d over %d", keys, len(got), len(counts), 2*keys, keys)
	}
	for k, n := range counts {
		if n != 2 {
			t.Fatalf("key %s: %d jobs, want 2", k, n)
		}
	}
	if more := claimN(t, s, queue.ClaimRequest{Owner: "b", Max: 10 * keys, PerKey: 2, Now: t0}); len(more) != 0 {
		t.Fatalf("Claim with every key at its cap: %d jobs, want 0", len(more))
	}
	var done, back *queue.Job
	for _, j := range got {
		switch {
		case j.RoutingKey == "k0007.example" && done == nil:
			done = j
		case j.RoutingKey == "k0900.example" && back == nil:
			back = j
		}
	}
	done.Recipients[0].State = queue.Delivered
	if err := s.Finish(ctx, done); err != nil {
		t.Fatal(err)
	}
	back.NextAttempt = t0
	if err := s.Finish(ctx, back); err != nil {
		t.Fatal(err)
	}
	// k0900 (its remaining jobs due up to t0-3000s) before k0007.
	more := claimN(t, s, queue.ClaimRequest{Owner: "b", Max: 1, PerKey: 2, Now: t0})
	if len(more) != 1 || more[0].RoutingKey != "k0900.example" {
		t.Fatalf("Claim of 1 after freeing a slot of k0007 and of k0900: %v, want one job of k0900 (earliest due)", ids(more))
	}
	more = claimN(t, s, queue.ClaimRequest{Owner: "b", Max: 10 * keys, PerKey: 2, Now: t0})
	if len(more) != 1 || more[0].RoutingKey != "k0007.example" {
		t.Fatalf("Claim after freeing a slot of k0007: %v, want one job of k0007", ids(more))
	}
}

func ids(jobs []*queue.Job) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.RoutingKey+"/"+j.ID)
	}
	return out
}

// TestClaimSkipsKeyInFlight: a key whose jobs are all leased is passed by
// (its routing_keys row waits at its earliest lease end) and is served
// again when the leases end; a held key has no row until released; a key
// emptied by Finish loses its row at the next claim that visits it.
func TestClaimSkipsKeyInFlight(t *testing.T) {
	dsn := testDSN(t)
	s := openStore(t, dsn, newSchema(t, dsn))
	ctx := context.Background()
	put := func(i int, key string, due time.Time, held bool) *queue.Job {
		j := testJob(i, key)
		j.NextAttempt, j.Held = due, held
		if err := s.Put(ctx, j); err != nil {
			t.Fatal(err)
		}
		return j
	}
	put(1, "busy", t0.Add(-2*time.Hour), false)
	put(2, "busy", t0.Add(-time.Hour), false)
	busy := claimN(t, s, queue.ClaimRequest{Owner: "a", Max: 2, PerKey: 5, Now: t0, Lease: 10 * time.Minute})
	if len(busy) != 2 {
		t.Fatalf("Claim of busy's 2 jobs: %v", ids(busy))
	}
	if d := keyDue(t, s, "busy"); d == nil || !d.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("routing_keys due of busy, all in flight: %v, want its lease end %v", d, t0.Add(10*time.Minute))
	}
	late := put(3, "late", t0.Add(-time.Minute), false)
	held := put(4, "held", t0.Add(-3*time.Hour), true)
	if d := keyDue(t, s, "held"); d != nil {
		t.Fatalf("routing_keys due of a key with only a held job: %v, want no row", d)
	}
	if got := claimN(t, s, queue.ClaimRequest{Owner: "b", Max: 5, PerKey: 5, Now: t0}); len(got) != 1 || got[0].ID != late.ID {
		t.Fatalf("Claim with busy in flight and held held: %v, want %s only", ids(got), late.ID)
	}
	if err := s.Set(ctx, held.ID, queue.ActionRelease); err != nil {
		t.Fatal(err)
	}
	if d := keyDue(t, s, "held"); d == nil || !d.Equal(held.NextAttempt) {
		t.Fatalf("routing_keys due of a released key: %v, want %v", d, held.NextAttempt)
	}
	at := t0.Add(10 * time.Minute)
	got := claimN(t, s, queue.ClaimRequest{Owner: "c", Max: 5, PerKey: 5, Now: at})
	want := []string{held.ID, busy[0].ID, busy[1].ID}
	if gi := []string{}; len(got) == 3 {
		for _, j := range got {
			gi = append(gi, j.ID)
		}
		slices.Sort(gi)
		slices.Sort(want)
		if !slices.Equal(gi, want) {
			t.Fatalf("Claim when busy's leases ended: %v, want %v", gi, want)
		}
	} else {
		t.Fatalf("Claim when busy's leases ended: %v, want %v", ids(got), want)
	}
	for _, j := range got {
		j.Recipients[0].State = queue.Delivered
		if err := s.Finish(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	// The rows are early now (the jobs are gone); the next claim that
	// visits them deletes them.
	if got := claimN(t, s, queue.ClaimRequest{Owner: "d", Max: 5, PerKey: 5, Now: at.Add(2 * time.Hour)}); len(got) != 1 || got[0].ID != late.ID {
		t.Fatalf("Claim after the others finished: %v, want %s (its lease ended)", ids(got), late.ID)
	}
	for _, k := range []string{"busy", "held"} {
		if d := keyDue(t, s, k); d != nil {
			t.Fatalf("routing_keys row of emptied key %s: %v, want none", k, d)
		}
	}
}

// TestClaimCapConcurrentPuts: claimers on two stores under a cap of 2
// over 200 keys, while jobs are still being put, never hold more than the
// cap of one key, and every job is claimed and finished exactly once.
func TestClaimCapConcurrentPuts(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	stores := []*pgstore.Store{openStore(t, dsn, schema), openStore(t, dsn, schema)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang fails, never a slow run
	defer cancel()
	const keys, perKey, n, claimers = 200, 2, 2000, 8
	var mu sync.Mutex
	held := map[string]int{}
	seen := map[string]bool{}
	var wg sync.WaitGroup
	errc := make(chan error, claimers+2)
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += 2 {
				if err := stores[p].Put(ctx, testJob(i, fmt.Sprintf("k%03d", i%keys))); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for w := range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%2]
			for ctx.Err() == nil {
				mu.Lock()
				finished := len(seen) == n
				mu.Unlock()
				if finished {
					return
				}
				jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: fmt.Sprint(w), Max: 3, PerKey: perKey, Now: t0, Lease: time.Hour})
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
					if seen[j.ID] {
						errc <- fmt.Errorf("job %s claimed twice", j.ID)
					}
					seen[j.ID] = true
				}
				mu.Unlock()
				for _, j := range jobs {
					mu.Lock()
					held[j.RoutingKey]-- // before Finish: the count may only undercount
					mu.Unlock()
					j.Recipients[0].State = queue.Delivered
					if err := s.Finish(ctx, j); err != nil {
						errc <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("%d of %d jobs claimed: %v", len(seen), n, ctx.Err())
	}
	if st, err := stores[0].Stats(context.Background()); err != nil || st != (queue.Stats{}) {
		t.Fatalf("Stats after all finished: %+v, %v", st, err)
	}
}
