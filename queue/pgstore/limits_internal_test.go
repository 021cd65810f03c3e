package pgstore

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestSlotsOfDeadStoreEnd: a store that stops renewing its slots without
// releasing them (its process killed) holds them no longer than SlotTTL;
// one that is closed releases them at once.
func TestSlotsOfDeadStoreEnd(t *testing.T) {
	dsn := os.Getenv("MXRELAY_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("pgstore: MXRELAY_TEST_POSTGRES is not set (a PostgreSQL DSN)")
	}
	ctx := context.Background()
	schema := "limits_dead_" + time.Now().Format("150405_000000")
	open := func() *Store {
		s, err := OpenWith(ctx, dsn, Options{Schema: schema, SlotTTL: 900 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	dead, live := open(), open()
	t.Cleanup(func() {
		live.Close()
		if conn, err := pgx.Connect(ctx, dsn); err == nil {
			conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE") //nolint:errcheck // best effort
			conn.Close(ctx)
		}
	})
	if sl, err := dead.AcquireSlot(ctx, "mx.example", 1); err != nil || sl.ID == "" {
		t.Fatalf("%+v, %v", sl, err)
	}
	// Killed: its renewals stop, and nothing releases its slot.
	dead.renewing.Store(false)
	dead.cancel()
	dead.Close()
	if sl, err := live.AcquireSlot(ctx, "mx.example", 1); err != nil || sl.ID != "" {
		t.Fatalf("slot of a store just dead: %+v, %v; want none yet", sl, err)
	}
	// Live renews its own meanwhile: its slot, taken below, outlasts
	// several lifetimes.
	deadline := time.Now().Add(30 * time.Second)
	var got string
	for got == "" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		sl, err := live.AcquireSlot(ctx, "mx.example", 1)
		if err != nil {
			t.Fatal(err)
		}
		got = sl.ID
	}
	if got == "" {
		t.Fatal("the dead store's slot did not end")
	}
	time.Sleep(3 * time.Second) // over three lifetimes, renewed every 300 ms
	other := open()
	if sl, err := other.AcquireSlot(ctx, "mx.example", 1); err != nil || sl.ID != "" {
		t.Fatalf("live store's renewed slot was taken: %+v, %v", sl, err)
	}
	// Close releases at once.
	live.Close()
	if sl, err := other.AcquireSlot(ctx, "mx.example", 1); err != nil || sl.ID == "" {
		t.Fatalf("after the holder closed: %+v, %v; want the slot", sl, err)
	}
	other.Close()
}
