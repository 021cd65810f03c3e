package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/pgstore"
	"github.com/mxrelay/mxrelay/queue/queuetest"
)

// What the suite (queuetest.TestOutbox) cannot check from one store:
// stores with pools of their own sharing one schema's outboxes, leases
// that end while other processes claim, text PostgreSQL cannot hold, and
// the upgrade of a schema from version 3.

func TestOutbox(t *testing.T) {
	dsn := testDSN(t)
	queuetest.TestOutbox(t, func(t *testing.T) queue.OutboxStore {
		return openStore(t, dsn, newSchema(t, dsn))
	}, queuetest.OutboxOptions{
		// A new store on the same schema, as a restarted process opens
		// it; the leases are rows of the schema and survive.
		Reopen: func(t *testing.T, old queue.OutboxStore) queue.OutboxStore {
			s := old.(*pgstore.Store)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openStore(t, dsn, s.Schema())
		},
	})
}

// oT0 is the clock origin of the outbox tests here.
var oT0 = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

// raceDeadline bounds a race test, so that a store that loses items
// fails instead of hanging; it is not a timing assertion.
const raceDeadline = 2 * time.Minute

// pending returns the items waiting in ep's outbox.
func pending(t *testing.T, s queue.OutboxStore, ep string) int {
	t.Helper()
	sts, err := s.Outboxes(context.Background())
	if err != nil {
		t.Errorf("Outboxes: %v", err)
		return 0
	}
	for _, st := range sts {
		if st.Endpoint == ep {
			return st.Pending
		}
	}
	return 0
}

// TestOutboxTwoStoresRace: two stores on one schema (two pools, as two
// processes), each with appenders (every call to two endpoints, in either
// order) and claimers of one endpoint. Every claim is at oT0 for an hour,
// so no lease ends: no claim may succeed while another sender holds the
// lease, and every AckOutbox and RetryOutbox must succeed. At the end
// every item has been acked exactly once, in Seq order, and each
// appender's items in the order it appended them.
func TestOutboxTwoStoresRace(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	stores := []*pgstore.Store{openStore(t, dsn, schema), openStore(t, dsn, schema)}
	const appenders, calls, claimers = 2, 40, 4 // appenders and claimers per store
	ctx := context.Background()
	deadline := time.Now().Add(raceDeadline)
	var (
		mu        sync.Mutex
		acked     []queue.OutboxItem // of "ep", in the order acked
		held      atomic.Bool        // a sender holds the lease of "ep"
		appending atomic.Int32
		appended  atomic.Int64 // items of "ep"
		wg        sync.WaitGroup
	)
	appending.Store(int32(len(stores) * appenders))
	for si, s := range stores {
		for w := range appenders {
			name := fmt.Sprintf("s%dw%d", si, w)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer appending.Add(-1)
				for c := range calls {
					var call []queue.OutboxEntry
					for k := range c%3 + 1 {
						call = append(call, queue.OutboxEntry{Endpoint: "ep", Time: oT0.Add(time.Duration(c) * time.Second),
							Data: fmt.Appendf(nil, "%s c%02d k%d", name, c, k)})
					}
					side := queue.OutboxEntry{Endpoint: "side", Time: oT0, Data: fmt.Appendf(nil, "%s c%02d", name, c)}
					if (c+w)%2 == 0 {
						call = append([]queue.OutboxEntry{side}, call...)
					} else {
						call = append(call, side)
					}
					if err := s.AppendOutbox(ctx, call...); err != nil {
						t.Errorf("%s: AppendOutbox: %v", name, err)
						return
					}
					appended.Add(int64(len(call) - 1))
				}
			}()
		}
	}
	for si, s := range stores {
		for c := range claimers {
			owner := fmt.Sprintf("s%dc%d", si, c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ; {
					if time.Now().After(deadline) {
						t.Errorf("%s: claiming does not end", owner)
						return
					}
					b, err := s.ClaimOutbox(ctx, queue.OutboxClaim{Endpoint: "ep", Owner: owner, Max: 1 + c%4,
						MaxBytes: 30 * (c % 2), Now: oT0, Lease: time.Hour})
					if err != nil {
						t.Errorf("%s: ClaimOutbox: %v", owner, err)
						return
					}
					if b == nil {
						if appending.Load() == 0 && pending(t, s, "ep") == 0 {
							return
						}
						runtime.Gosched()
						continue
					}
					if !held.CompareAndSwap(false, true) {
						t.Errorf("%s: ClaimOutbox gave a batch while another sender held the unexpired lease", owner)
					}
					time.Sleep(100 * time.Microsecond) // as if delivering, for other claims to come in
					n++
					retry := n%4 == 0
					if !retry {
						mu.Lock()
						acked = append(acked, b.Items...)
						mu.Unlock()
					}
					held.Store(false)
					if retry {
						err = s.RetryOutbox(ctx, b, oT0, "try again")
					} else {
						err = s.AckOutbox(ctx, b)
					}
					if err != nil {
						t.Errorf("%s: AckOutbox or RetryOutbox (retry %v): %v; no lease can have ended", owner, retry, err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if int64(len(acked)) != appended.Load() {
		t.Fatalf("%d items acked, %d appended", len(acked), appended.Load())
	}
	checkAppendOrder(t, "ep", acked)
	side := drainOutbox(t, stores[1], "side")
	if len(side) != len(stores)*appenders*calls {
		t.Fatalf("the other endpoint: %d items, want %d", len(side), len(stores)*appenders*calls)
	}
	checkAppendOrder(t, "side", side)
	if sts, err := stores[0].Outboxes(ctx); err != nil || len(sts) != 0 {
		t.Fatalf("Outboxes at the end: %+v, %v; want none", sts, err)
	}
}

// checkAppendOrder fails the test unless items, as acked, have no Data
// twice, increase in Seq, and keep each appender's order; their Data
// start with the appender's four-byte name, then sort in the order it
// appended them.
func checkAppendOrder(t *testing.T, ep string, items []queue.OutboxItem) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]string{}
	for i, it := range items {
		d := string(it.Data)
		switch {
		case seen[d]:
			t.Fatalf("%s: item %q acked twice", ep, d)
		case i > 0 && it.Seq <= items[i-1].Seq:
			t.Fatalf("%s: Seq %d acked after %d", ep, it.Seq, items[i-1].Seq)
		case d <= last[d[:4]]:
			t.Fatalf("%s: item %q acked after %q, which its appender appended later", ep, d, last[d[:4]])
		}
		seen[d], last[d[:4]] = true, d
	}
}

// drainOutbox claims and acks ep until it is empty, and returns the items
// in the order claimed.
func drainOutbox(t *testing.T, s queue.OutboxStore, ep string) []queue.OutboxItem {
	t.Helper()
	var all []queue.OutboxItem
	for {
		b, err := s.ClaimOutbox(context.Background(), queue.OutboxClaim{Endpoint: ep, Owner: "drain", Max: 50,
			Now: oT0.Add(24 * time.Hour), Lease: time.Minute})
		if err != nil {
			t.Fatalf("ClaimOutbox(%q): %v", ep, err)
		}
		if b == nil {
			return all
		}
		all = append(all, b.Items...)
		if err := s.AckOutbox(context.Background(), b); err != nil {
			t.Fatalf("AckOutbox(%q): %v", ep, err)
		}
	}
}

// expiryClaim is one successful claim of TestOutboxLeaseExpiryRace.
type expiryClaim struct {
	owner        string
	now, until   time.Time
	seqs         []int64
	acked, retry bool // AckOutbox or RetryOutbox succeeded
}

// TestOutboxLeaseExpiryRace: claimers in two stores on one schema share
// a clock, which moves on at each claim and jumps past its own lease when
// a sender stalls, by up to more than its lease; a stalled sender then
// acks late, and others claim the head meanwhile. Every AckOutbox and RetryOutbox either succeeds or gives
// queue.ErrLeaseLost; the items acked are every item, each once, in
// claims that took the head of the outbox; and a lease is lost only to a
// claim of the same head whose Now is at or after the lease's end.
func TestOutboxLeaseExpiryRace(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	stores := []*pgstore.Store{openStore(t, dsn, schema), openStore(t, dsn, schema)}
	const items, claimers, lease = 240, 4, 20 // lease in ticks
	ctx := context.Background()
	for i := 0; i < items; {
		var call []queue.OutboxEntry
		for range min(i%4+1, items-i) {
			call = append(call, queue.OutboxEntry{Endpoint: "ep", Time: oT0, Data: fmt.Appendf(nil, "item %03d", i)})
			i++
		}
		if err := stores[i%2].AppendOutbox(ctx, call...); err != nil {
			t.Fatal(err)
		}
	}
	tick := func(n int64) time.Time { return oT0.Add(time.Duration(n) * time.Millisecond) }
	deadline := time.Now().Add(raceDeadline)
	var (
		clock  atomic.Int64
		mu     sync.Mutex
		claims []*expiryClaim
		lost   atomic.Int32
		wg     sync.WaitGroup
	)
	for si, s := range stores {
		for c := range claimers {
			owner := fmt.Sprintf("s%dc%d", si, c)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ; {
					if time.Now().After(deadline) {
						t.Errorf("%s: claiming does not end", owner)
						return
					}
					now := tick(clock.Load())
					b, err := s.ClaimOutbox(ctx, queue.OutboxClaim{Endpoint: "ep", Owner: owner, Max: 1 + (n+c)%5,
						Now: now, Lease: lease * time.Millisecond})
					if err != nil {
						t.Errorf("%s: ClaimOutbox: %v", owner, err)
						return
					}
					if b == nil {
						if pending(t, s, "ep") == 0 {
							return
						}
						runtime.Gosched()
						continue
					}
					clock.Add(1)
					n++
					ec := &expiryClaim{owner: owner, now: now, until: b.Until}
					for _, it := range b.Items {
						ec.seqs = append(ec.seqs, it.Seq)
					}
					switch n % 5 {
					case 0: // stall, up to past the lease's end, then ack late
						clock.Add(int64(1 + (n*7+c*3)%(lease+10)))
						time.Sleep(time.Millisecond)
						err = s.AckOutbox(ctx, b)
						ec.acked = err == nil
					case 1:
						err = s.RetryOutbox(ctx, b, now, "try again")
						ec.retry = err == nil
					default:
						err = s.AckOutbox(ctx, b)
						ec.acked = err == nil
					}
					if errors.Is(err, queue.ErrLeaseLost) {
						lost.Add(1)
					} else if err != nil {
						t.Errorf("%s: AckOutbox or RetryOutbox: %v, want nil or ErrLeaseLost", owner, err)
						return
					}
					mu.Lock()
					claims = append(claims, ec)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d claims, %d acks or retries with a lost lease", len(claims), lost.Load())

	// The items acked: each once, and together every item, each batch a
	// run of consecutive Seqs, which sort in the order appended.
	var ackedSeqs []int64
	for _, c := range claims {
		if c.acked {
			ackedSeqs = append(ackedSeqs, c.seqs...)
		}
	}
	slices.Sort(ackedSeqs)
	if len(ackedSeqs) != items || len(slices.Compact(slices.Clone(ackedSeqs))) != items {
		t.Fatalf("%d items acked (%d distinct), want each of %d once", len(ackedSeqs),
			len(slices.Compact(slices.Clone(ackedSeqs))), items)
	}
	pos := map[int64]int{}
	for i, seq := range ackedSeqs {
		pos[seq] = i
	}
	for _, c := range claims {
		for i := 1; i < len(c.seqs); i++ {
			if pos[c.seqs[i]] != pos[c.seqs[i-1]]+1 {
				t.Fatalf("%s: a batch of Seq %v: not the head of the outbox", c.owner, c.seqs)
			}
		}
	}
	// A lease is lost only to a claim of the same head at or after its
	// end: the next claim of an endpoint whose lease was neither acked nor
	// retried starts with that lease's first item, and took it over
	// because the lease had ended by its Now. (Two claims' leases may
	// overlap by their Now: a sender whose Now lags the others' may take a
	// head nobody holds.)
	for _, l := range claims {
		if l.acked || l.retry {
			continue
		}
		if !slices.ContainsFunc(claims, func(c *expiryClaim) bool { return c.seqs[0] == l.seqs[0] && !c.now.Before(l.until) }) {
			t.Fatalf("%s (%v to %v, Seq %v) lost its lease, but no claim of Seq %d came at or after its end",
				l.owner, l.now.Sub(oT0), l.until.Sub(oT0), l.seqs, l.seqs[0])
		}
	}
	if n := pending(t, stores[0], "ep"); n != 0 {
		t.Fatalf("%d items left", n)
	}
}

// TestOutboxText: an endpoint name that is not UTF-8 is refused with
// queue.ErrInvalid (PostgreSQL text cannot hold it), is never leased and
// has no lease to lose; an owner or reason that is not UTF-8 text is kept
// with U+FFFD in place of what text cannot hold.
func TestOutboxText(t *testing.T) {
	dsn := testDSN(t)
	s := openStore(t, dsn, newSchema(t, dsn))
	ctx := context.Background()
	bad := "ep\xff"
	if err := s.AppendOutbox(ctx, queue.OutboxEntry{Endpoint: "ep", Time: oT0},
		queue.OutboxEntry{Endpoint: bad, Time: oT0}); !errors.Is(err, queue.ErrInvalid) {
		t.Fatalf("AppendOutbox with a name that is not UTF-8: %v, want ErrInvalid", err)
	}
	if b, err := s.ClaimOutbox(ctx, queue.OutboxClaim{Endpoint: bad, Owner: "x", Max: 1, Now: oT0, Lease: time.Minute}); b != nil || err != nil {
		t.Fatalf("ClaimOutbox of a name that is not UTF-8: %v, %v; want nothing", b, err)
	}
	if err := s.AckOutbox(ctx, &queue.OutboxBatch{Endpoint: bad, Token: "t"}); !errors.Is(err, queue.ErrLeaseLost) {
		t.Fatalf("AckOutbox of a name that is not UTF-8: %v, want ErrLeaseLost", err)
	}
	if err := s.AppendOutbox(ctx, queue.OutboxEntry{Endpoint: "ep", Time: oT0}); err != nil {
		t.Fatal(err)
	}
	b, err := s.ClaimOutbox(ctx, queue.OutboxClaim{Endpoint: "ep", Owner: "o\x00\xfe", Max: 1, Now: oT0, Lease: time.Minute})
	if err != nil || b == nil {
		t.Fatalf("ClaimOutbox: %v, %v", b, err)
	}
	sts, err := s.Outboxes(ctx)
	if err != nil || len(sts) != 1 || sts[0].Owner != "o\uFFFD\uFFFD" {
		t.Fatalf("Outboxes: %+v, %v; want one endpoint, owner %q", sts, err, "o\uFFFD\uFFFD")
	}
	if err := s.RetryOutbox(ctx, b, oT0, "503 \xc3 \x00"); err != nil {
		t.Fatal(err)
	}
	sts, err = s.Outboxes(ctx)
	if err != nil || len(sts) != 1 || sts[0].LastError != "503 \uFFFD \uFFFD" || sts[0].Attempts != 1 {
		t.Fatalf("Outboxes: %+v, %v; want last error %q", sts, err, "503 \uFFFD \uFFFD")
	}
}

// TestOutboxClosed: every method of a closed store gives queue.ErrClosed.
func TestOutboxClosed(t *testing.T) {
	dsn := testDSN(t)
	s := openStore(t, dsn, newSchema(t, dsn))
	ctx := context.Background()
	if err := s.AppendOutbox(ctx, queue.OutboxEntry{Endpoint: "ep", Time: oT0}); err != nil {
		t.Fatal(err)
	}
	b, err := s.ClaimOutbox(ctx, queue.OutboxClaim{Endpoint: "ep", Owner: "x", Max: 1, Now: oT0, Lease: time.Minute})
	if err != nil || b == nil {
		t.Fatalf("ClaimOutbox: %v, %v", b, err)
	}
	s.Close()
	for name, call := range map[string]func() error{
		"AppendOutbox": func() error { return s.AppendOutbox(ctx, queue.OutboxEntry{Endpoint: "ep", Time: oT0}) },
		"ClaimOutbox": func() error {
			_, err := s.ClaimOutbox(ctx, queue.OutboxClaim{Endpoint: "ep", Owner: "x", Max: 1, Now: oT0, Lease: time.Minute})
			return err
		},
		"AckOutbox":   func() error { return s.AckOutbox(ctx, b) },
		"RetryOutbox": func() error { return s.RetryOutbox(ctx, b, oT0, "") },
		"Outboxes":    func() error { _, err := s.Outboxes(ctx); return err },
	} {
		if err := call(); !errors.Is(err, queue.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// TestOutboxUpgrade: a schema at version 3 (jobs, suppressions, history)
// gains the outbox tables when a store opens it, and keeps what it held.
func TestOutboxUpgrade(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	s := openStore(t, dsn, schema)
	ctx := context.Background()
	job := testJob(1, "x.example")
	if err := s.Put(ctx, job); err != nil {
		t.Fatal(err)
	}
	if err := s.Keep(ctx, hRecord("r1", "ann@x.example")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	psql(t, dsn, dropKeysSQL(schema))
	psql(t, dsn, "DROP TABLE "+schema+".outbox_items, "+schema+".outbox_heads; UPDATE "+schema+".meta SET version = 3")
	s = openStore(t, dsn, schema)
	if _, err := s.Get(ctx, job.ID); err != nil {
		t.Fatalf("Get after the upgrade: %v", err)
	}
	if _, err := s.Record(ctx, "r1"); err != nil {
		t.Fatalf("Record after the upgrade: %v", err)
	}
	if err := s.AppendOutbox(ctx, queue.OutboxEntry{Endpoint: "ep", Time: oT0, Data: []byte("x")}); err != nil {
		t.Fatalf("AppendOutbox after the upgrade: %v", err)
	}
	if got := drainOutbox(t, s, "ep"); len(got) != 1 || string(got[0].Data) != "x" || got[0].Seq != 1 {
		t.Fatalf("the outbox after the upgrade: %+v", got)
	}
	var version int
	if err := s.Pool().QueryRow(ctx, "SELECT version FROM "+schema+".meta").Scan(&version); err != nil || version != pgstore.SchemaVersion {
		t.Fatalf("schema version %d, %v; want %d", version, err, pgstore.SchemaVersion)
	}
}
