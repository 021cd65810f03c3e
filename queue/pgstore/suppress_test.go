package pgstore_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/pgstore"
	"github.com/mxrelay/mxrelay/queue/queuetest"
)

func TestSuppressions(t *testing.T) {
	dsn := testDSN(t)
	queuetest.TestSuppressions(t, func(t *testing.T) queue.SuppressionStore {
		return openStore(t, dsn, newSchema(t, dsn))
	}, queuetest.SuppressionOptions{
		Reopen: func(t *testing.T, old queue.SuppressionStore) queue.SuppressionStore {
			s := old.(*pgstore.Store)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openStore(t, dsn, s.Schema())
		},
	})
}

// TestSuppressionsUpgrade: a schema at version 1 (jobs only) gains the
// suppression table (and the later ones) when a store opens it, and keeps
// its jobs.
func TestSuppressionsUpgrade(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	s := openStore(t, dsn, schema)
	ctx := context.Background()
	if err := s.Put(ctx, testJob(1, "x.example")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	psql(t, dsn, dropKeysSQL(schema))
	psql(t, dsn, "DROP TABLE "+schema+".suppressions, "+schema+".history_rcpt, "+schema+".history, "+
		schema+".outbox_items, "+schema+".outbox_heads; UPDATE "+schema+".meta SET version = 1")
	s = openStore(t, dsn, schema)
	if _, err := s.Get(ctx, testJob(1, "x.example").ID); err != nil {
		t.Fatalf("Get after the upgrade: %v", err)
	}
	e := queue.Suppression{Address: "a@x.example", Reason: queue.Manual, Created: t0}
	if err := s.Suppress(ctx, e); err != nil {
		t.Fatalf("Suppress after the upgrade: %v", err)
	}
	if got, err := s.Suppressed(ctx, "", []string{e.Address}, t0); err != nil || len(got) != 1 {
		t.Fatalf("Suppressed after the upgrade: %v, %v", got, err)
	}
}

// envSuppressChild switches on TestSuppressionsChild in a child process.
const envSuppressChild = "MXRELAY_PGSTORE_SUPPRESS_CHILD"

// TestSuppressionsTwoProcesses: a child process (this test binary run
// again) and this one share the list through one schema. The child
// suppresses an address, which this process sees; this process suppresses
// another, which the child sees before it removes its own entry.
func TestSuppressionsTwoProcesses(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	s := openStore(t, dsn, schema)
	ctx := context.Background()
	logPath := filepath.Join(t.TempDir(), "child.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	output := func() []byte { b, _ := os.ReadFile(logPath); return b }
	cmd := exec.Command(os.Args[0], "-test.run=^TestSuppressionsChild$", "-test.v")
	cmd.Env = append(os.Environ(), envSuppressChild+"=1", envSchema+"="+schema)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	})

	got := waitSuppressed(t, s, "news", "child@x.example", done, output)
	if got.Source != "child" || got.Reason != queue.Complained {
		t.Fatalf("the child's entry as seen here: %+v", got)
	}
	if err := s.Suppress(ctx, queue.Suppression{Address: "parent@x.example", Scope: "news",
		Reason: queue.Unsubscribed, Source: "parent", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			t.Fatalf("child: %v\n%s", err, output())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the child did not finish; its output:\n%s", output())
	}
	if hits, err := s.Suppressed(ctx, "news", []string{"child@x.example"}, time.Now()); err != nil || len(hits) != 0 {
		t.Fatalf("the child's entry after it removed it: %v, %v", hits, err)
	}
}

// TestSuppressionsChild is the child's half of
// TestSuppressionsTwoProcesses; it is skipped unless that test runs it.
func TestSuppressionsChild(t *testing.T) {
	if os.Getenv(envSuppressChild) == "" {
		t.Skip("run by TestSuppressionsTwoProcesses")
	}
	dsn := testDSN(t)
	s := openStore(t, dsn, os.Getenv(envSchema))
	ctx := context.Background()
	if err := s.Suppress(ctx, queue.Suppression{Address: "child@x.example", Reason: queue.Complained,
		Source: "child", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got := waitSuppressed(t, s, "news", "parent@x.example", nil, nil)
	if got.Source != "parent" || got.Scope != "news" {
		t.Fatalf("the parent's entry as seen here: %+v", got)
	}
	if ok, err := s.Unsuppress(ctx, "child@x.example", ""); !ok || err != nil {
		t.Fatalf("Unsuppress of the child's own entry: %v, %v", ok, err)
	}
}

// waitSuppressed polls until address is suppressed in scope and returns
// its entry, or fails after a minute or once the child (done) has exited.
func waitSuppressed(t *testing.T, s *pgstore.Store, scope, address string, done chan error, output func() []byte) queue.Suppression {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // a bound, not a timing assertion
	for {
		hits, err := s.Suppressed(context.Background(), scope, []string{address}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) == 1 {
			return hits[0]
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("the child exited (%v) before %s was suppressed; its output:\n%s", err, address, output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not suppressed within a minute", address)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
