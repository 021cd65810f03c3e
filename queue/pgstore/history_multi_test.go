package pgstore_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/pgstore"
)

// What the suite (queuetest.TestHistory) cannot check from one store:
// stores with pools of their own, and processes of their own, changing
// one record at once; and the upgrade of a schema from version 2.

// hRecord is record id with a delivered entry for each of addrs.
func hRecord(id string, addrs ...string) queue.Record {
	r := queue.Record{ID: id, Subject: "s " + id, Created: t0, Updated: t0}
	for _, a := range addrs {
		r.Recipients = append(r.Recipients, queue.RecipientRecord{Addr: a, Status: "delivered", Code: 250, Time: t0})
	}
	return r
}

// noteTypes returns the types of the notes of addr's entry in rec.
func noteTypes(t *testing.T, rec *queue.Record, addr string) []string {
	t.Helper()
	for _, o := range rec.Recipients {
		if queue.FoldAddr(o.Addr) == queue.FoldAddr(addr) {
			var out []string
			for _, n := range o.Notes {
				out = append(out, n.Type)
			}
			return out
		}
	}
	t.Fatalf("record %s has no entry for %s", rec.ID, addr)
	return nil
}

// checkAllNotes fails unless types holds each of want exactly once and
// nothing else.
func checkAllNotes(t *testing.T, types []string, want []string) {
	t.Helper()
	seen := make(map[string]int, len(types))
	for _, ty := range types {
		seen[ty]++
	}
	for _, w := range want {
		if seen[w] != 1 {
			t.Errorf("note %q is there %d times, want once", w, seen[w])
		}
		delete(seen, w)
	}
	for ty, n := range seen {
		t.Errorf("unexpected note %q (%d times)", ty, n)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// TestHistoryNotesTwoStores: writers on three stores, each with a pool of
// its own, note one entry and keep it again (with notes of their own) at
// once; every note is there at the end, once.
func TestHistoryNotesTwoStores(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	stores := []*pgstore.Store{openStore(t, dsn, schema), openStore(t, dsn, schema), openStore(t, dsn, schema)}
	ctx := context.Background()
	const addr = "Ann@X.example"
	if err := stores[0].Keep(ctx, hRecord("r1", addr, "bob@x.example")); err != nil {
		t.Fatal(err)
	}
	const writers, each = 9, 25
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		want []string
		errc = make(chan error, writers)
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := stores[w%len(stores)]
			for i := range each {
				ty := fmt.Sprintf("w%d-%d", w, i)
				var err error
				if i%5 == 4 { // a later outcome for the entry, with a note of its own
					rec := hRecord("r1", strings.ToLower(addr))
					rec.Recipients[0].Status = "bounced"
					rec.Recipients[0].Notes = []queue.Note{{Type: ty, Time: t0}}
					err = s.Keep(ctx, rec)
				} else {
					err = s.Note(ctx, "r1", addr, queue.Note{Type: ty, Time: t0.Add(time.Duration(i) * time.Second)})
				}
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				want = append(want, ty)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	rec, err := stores[1].Record(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Recipients) != 2 || rec.Recipients[0].Addr != "ann@x.example" || rec.Recipients[1].Addr != "bob@x.example" {
		t.Fatalf("entries %+v, want ann's (last kept in lower case) then bob's", rec.Recipients)
	}
	checkAllNotes(t, noteTypes(t, rec, addr), want)
}

// TestHistoryForgetRacesKeep: Forget of one address while other stores
// keep a new entry for another address in the same records never loses
// such an entry: Forget either removes a record before the Keep, which
// then makes it anew, or leaves it holding the new entry. Rounds of
// fresh records give the race many chances.
func TestHistoryForgetRacesKeep(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	f := openStore(t, dsn, schema)
	keepers := []*pgstore.Store{openStore(t, dsn, schema), openStore(t, dsn, schema)}
	ctx := context.Background()
	const rounds, n, perKeeper = 30, 40, 4
	for round := range rounds {
		id := func(i int) string { return fmt.Sprintf("r%02d-%03d", round, i) }
		for i := range n {
			if err := f.Keep(ctx, hRecord(id(i), "gone@x.example")); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		errc := make(chan error, 1+perKeeper)
		var forgot []queue.Record
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			var err error
			if forgot, err = f.Forget(ctx, "GONE@x.example"); err != nil {
				errc <- err
			}
		}()
		for k := range perKeeper {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := keepers[k%len(keepers)]
				<-start
				for i := n - 1 - k; i >= 0; i -= perKeeper { // against Forget's order
					if err := s.Keep(ctx, hRecord(id(i), fmt.Sprintf("new%d@x.example", i))); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		if len(forgot) != n {
			t.Fatalf("round %d: Forget returned %d records, want %d", round, len(forgot), n)
		}
		for i := range n {
			rec, err := f.Record(ctx, id(i))
			if err != nil {
				t.Fatalf("round %d: Record(%s) after the race: %v (the new entry was lost)", round, id(i), err)
			}
			if len(rec.Recipients) != 1 || rec.Recipients[0].Addr != fmt.Sprintf("new%d@x.example", i) {
				t.Fatalf("round %d: record %s after the race: %+v, want only the new entry", round, id(i), rec.Recipients)
			}
		}
	}
	if got, _, err := f.Records(ctx, queue.RecordFilter{Recipient: "gone@x.example"}); err != nil || len(got) != 0 {
		t.Fatalf("Records of the forgotten address: %d, %v", len(got), err)
	}
}

// TestHistoryUpgrade: a schema at version 2 (jobs and suppressions)
// gains the history tables (and the later ones) when a store opens it,
// and keeps its jobs and suppressions.
func TestHistoryUpgrade(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	s := openStore(t, dsn, schema)
	ctx := context.Background()
	job := testJob(1, "x.example")
	sup := queue.Suppression{Address: "a@x.example", Reason: queue.Manual, Created: t0}
	if err := s.Put(ctx, job); err != nil {
		t.Fatal(err)
	}
	if err := s.Suppress(ctx, sup); err != nil {
		t.Fatal(err)
	}
	s.Close()
	psql(t, dsn, dropKeysSQL(schema))
	psql(t, dsn, "DROP TABLE "+schema+".history_rcpt, "+schema+".history, "+schema+".outbox_items, "+
		schema+".outbox_heads; UPDATE "+schema+".meta SET version = 2")
	s = openStore(t, dsn, schema)
	if _, err := s.Get(ctx, job.ID); err != nil {
		t.Fatalf("Get after the upgrade: %v", err)
	}
	if got, err := s.Suppressed(ctx, "", []string{sup.Address}, t0); err != nil || len(got) != 1 {
		t.Fatalf("Suppressed after the upgrade: %v, %v", got, err)
	}
	if err := s.Keep(ctx, hRecord("r1", "ann@x.example")); err != nil {
		t.Fatalf("Keep after the upgrade: %v", err)
	}
	if got, _, err := s.Records(ctx, queue.RecordFilter{Recipient: "ANN@x.example"}); err != nil || len(got) != 1 {
		t.Fatalf("Records after the upgrade: %v, %v", got, err)
	}
	var version int
	conn := s.Pool()
	if err := conn.QueryRow(ctx, "SELECT version FROM "+schema+".meta").Scan(&version); err != nil || version != pgstore.SchemaVersion {
		t.Fatalf("schema version %d, %v; want %d", version, err, pgstore.SchemaVersion)
	}
}

// envHistoryChild switches on TestHistoryNotesChild in a child process;
// its value is the child's name.
const envHistoryChild = "MXRELAY_PGSTORE_HISTORY_CHILD"

// historyChildNotes is how many notes each process adds.
const historyChildNotes = 200

// TestHistoryNotesTwoProcesses: two child processes (this test binary run
// again) and this one note the same entry at once, each from its own
// pool; every note of the three is there at the end.
func TestHistoryNotesTwoProcesses(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	s := openStore(t, dsn, schema)
	ctx := context.Background()
	if err := s.Keep(ctx, hRecord("shared", "ann@x.example")); err != nil {
		t.Fatal(err)
	}
	type child struct {
		cmd  *exec.Cmd
		log  string
		done chan error
	}
	var children []*child
	for _, name := range []string{"c1", "c2"} {
		c := &child{log: filepath.Join(t.TempDir(), name+".log"), done: make(chan error, 1)}
		logf, err := os.Create(c.log)
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		c.cmd = exec.Command(os.Args[0], "-test.run=^TestHistoryNotesChild$", "-test.v")
		c.cmd.Env = append(os.Environ(), envHistoryChild+"="+name, envSchema+"="+schema)
		c.cmd.Stdout, c.cmd.Stderr = logf, logf
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { c.done <- c.cmd.Wait() }()
		t.Cleanup(func() {
			select {
			case <-c.done:
			default:
				c.cmd.Process.Kill()
				<-c.done
			}
		})
		children = append(children, c)
	}
	want := noteAll(t, s, "parent")
	for _, c := range children {
		select {
		case err := <-c.done:
			c.done <- err // for the cleanup
			if err != nil {
				out, _ := os.ReadFile(c.log)
				t.Fatalf("child: %v\n%s", err, out)
			}
		case <-time.After(120 * time.Second):
			out, _ := os.ReadFile(c.log)
			t.Fatalf("a child did not finish; its output:\n%s", out)
		}
	}
	for _, name := range []string{"c1", "c2"} {
		for i := range historyChildNotes {
			want = append(want, name+"-"+strconv.Itoa(i))
		}
	}
	rec, err := s.Record(ctx, "shared")
	if err != nil {
		t.Fatal(err)
	}
	checkAllNotes(t, noteTypes(t, rec, "ann@x.example"), want)
}

// TestHistoryNotesChild is a child's half of
// TestHistoryNotesTwoProcesses; it is skipped unless that test runs it.
func TestHistoryNotesChild(t *testing.T) {
	name := os.Getenv(envHistoryChild)
	if name == "" {
		t.Skip("run by TestHistoryNotesTwoProcesses")
	}
	dsn := testDSN(t)
	noteAll(t, openStore(t, dsn, os.Getenv(envSchema)), name)
}

// noteAll adds historyChildNotes notes named after who to the shared
// entry, four at a time, and returns their types.
func noteAll(t *testing.T, s *pgstore.Store, who string) []string {
	t.Helper()
	ctx := context.Background()
	types := make([]string, historyChildNotes)
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < historyChildNotes; i += 4 {
				types[i] = who + "-" + strconv.Itoa(i)
				if err := s.Note(ctx, "shared", "ANN@x.example", queue.Note{Type: types[i], Time: time.Now()}); err != nil {
					errc <- fmt.Errorf("%s: note %d: %w", who, i, err)
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
	return types
}
