package pgstore

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mxrelay/mxrelay/queue"
)

// TestMigrateKeysFromV4: a schema at version 4 (the release before
// routing_keys) with queued, held, leased and expired-lease jobs migrates
// forward on Open, fills routing_keys from its jobs, and every job stays
// claimable under a per-key cap: the cap counts the leases taken before the
// migration, and a held job is claimable once released.
func TestMigrateKeysFromV4(t *testing.T) {
	dsn := os.Getenv("MXRELAY_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("pgstore: MXRELAY_TEST_POSTGRES is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	schema := "mxrelay_test_v4_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	defer pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") //nolint:errcheck // best effort
	if err := migrateTo(ctx, pool, schema, 4); err != nil {
		t.Fatalf("migrate to version 4: %v", err)
	}
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	insert := fmt.Sprintf("INSERT INTO %s.jobs (%s) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$9)", schema, insertCols)
	var all []string
	put := func(id, key string, due time.Time, held bool) {
		j := queue.NewJob("s@example.org", []string{"r@" + key}, []byte("m"))
		j.ID, j.Created, j.NextAttempt, j.RoutingKey, j.Held = id, t0, due, key, held
		p, err := insertParams(j)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, insert, p...); err != nil {
			t.Fatal(err)
		}
		all = append(all, id)
	}
	lease := func(id string, until time.Time) {
		if _, err := pool.Exec(ctx, "UPDATE "+schema+".jobs SET lease_owner = 'old', lease_token = 'tok', lease_until = $2, due = $2 WHERE id = $1", id, until); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		put(fmt.Sprintf("a%d", i), "a", t0.Add(time.Duration(i-10)*time.Minute), false)
	}
	put("b0", "b", t0.Add(-time.Hour), true)
	put("c0", "c", t0.Add(-time.Hour), false)
	put("c1", "c", t0.Add(-time.Minute), false)
	lease("c0", t0.Add(time.Hour))
	put("d0", "d", t0.Add(-time.Hour), false)
	lease("d0", t0.Add(-30*time.Second)) // expired: due at its end

	s, err := New(ctx, pool, Options{Schema: schema})
	if err != nil {
		t.Fatalf("New on the version 4 schema: %v", err)
	}
	defer s.Close()
	var version int
	if err := pool.QueryRow(ctx, "SELECT version FROM "+schema+".meta").Scan(&version); err != nil || version != SchemaVersion {
		t.Fatalf("version after New: %d, %v; want %d", version, err, SchemaVersion)
	}
	keys := map[string]time.Time{}
	rows, err := pool.Query(ctx, "SELECT routing_key, due FROM "+schema+".routing_keys")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		var d time.Time
		if err := rows.Scan(&k, &d); err != nil {
			t.Fatal(err)
		}
		keys[k] = d
	}
	if rows.Close(); rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	want := map[string]time.Time{"a": t0.Add(-10 * time.Minute), "c": t0.Add(-time.Minute), "d": t0.Add(-30 * time.Second)}
	if len(keys) != len(want) {
		t.Fatalf("routing_keys after the migration: %v, want %v", keys, want)
	}
	for k, d := range want {
		if !keys[k].Equal(d) {
			t.Fatalf("routing_keys after the migration: %v, want %v", keys, want)
		}
	}

	claim := func(max int, now time.Time) []string {
		t.Helper()
		jobs, err := s.Claim(ctx, queue.ClaimRequest{Owner: "new", Max: max, PerKey: 1, Now: now, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, j := range jobs {
			out = append(out, j.ID)
			j.Recipients[0].State = queue.Delivered
			if err := s.Finish(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	// c holds an unexpired lease from before: at its cap of 1.
	if got := claim(10, t0); !slices.Equal(got, []string{"a0", "d0"}) {
		t.Fatalf("first claim after the migration: %v, want [a0 d0]", got)
	}
	if err := s.Set(ctx, "b0", queue.ActionRelease); err != nil {
		t.Fatal(err)
	}
	var got []string
	for now := t0; len(got) < len(all)-2 && now.Before(t0.Add(3*time.Hour)); now = now.Add(time.Hour) {
		got = append(got, claim(10, now)...)
	}
	got = append(got, "a0", "d0")
	slices.Sort(got)
	slices.Sort(all)
	if !slices.Equal(got, all) {
		t.Fatalf("jobs claimed after the migration: %v, want all of %v", got, all)
	}
}
