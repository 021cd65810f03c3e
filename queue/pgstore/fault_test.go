package pgstore_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/pgstore"
)

func TestOpenErrors(t *testing.T) {
	dsn := testDSN(t)
	// A port where nothing listens.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().String()
	l.Close()
	wrongDB, _ := url.Parse(dsn)
	wrongDB.Path = "/mxrelay_no_such_database"
	tests := []struct {
		name, dsn string
		want      string // in the error text
	}{
		{"malformed", "postgres://%zz", "pgstore: bad DSN"},
		{"unknown parameter", "host=127.0.0.1 port=notaport", "pgstore: bad DSN"},
		{"unreachable", "postgres://postgres@" + closedPort + "/test?sslmode=disable&connect_timeout=5", "pgstore: connect to database"},
		{"no such database", wrongDB.String(), "mxrelay_no_such_database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := pgstore.Open(ctx, tt.dsn)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "pgstore: ") {
				t.Fatalf("Open: %v; want an error with %q", err, tt.want)
			}
			t.Log(err)
		})
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	s := openStore(t, dsn, schema)
	s.Close()
	psql(t, dsn, "UPDATE "+schema+".meta SET version = 99")
	_, err := pgstore.OpenWith(context.Background(), dsn, pgstore.Options{Schema: schema})
	var ve *pgstore.SchemaVersionError
	if !errors.Is(err, pgstore.ErrSchemaTooNew) || !errors.As(err, &ve) {
		t.Fatalf("Open of a version 99 schema: %v, want ErrSchemaTooNew", err)
	}
	if ve.Found != 99 || ve.Supported != pgstore.SchemaVersion || ve.Schema != schema {
		t.Fatalf("SchemaVersionError: %+v", ve)
	}
	t.Log(err)
}

func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := pgstore.OpenWith(context.Background(), dsn, pgstore.Options{Schema: schema})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// TestServerRestart: the store's connections are terminated, as a server
// restart does to its clients. Operations report database errors and then
// work again, and the wake-up listener re-LISTENs.
func TestServerRestart(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	app := randomName("mxrelay_restart_")
	u, _ := url.Parse(dsn)
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	s := openStore(t, u.String(), schema)
	other := openStore(t, dsn, schema)
	ctx := context.Background()
	wake := s.Wake()
	waitWake(t, wake, "after LISTEN")
	if err := s.Put(ctx, testJob(1, "example.com")); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wake, "after Put")

	psql(t, dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", app)

	// The pool finds its connections dead: an operation may fail, with
	// an error that says the database failed; a later one succeeds.
	var failures []error
	ok := false
	for range 20 {
		_, err := s.Get(ctx, "job-000001")
		if err == nil {
			ok = true
			break
		}
		failures = append(failures, err)
		if !strings.HasPrefix(err.Error(), "pgstore: get: database: ") {
			t.Fatalf("Get after the restart: %v, want a pgstore database error", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !ok {
		t.Fatalf("Get never worked again: %v", failures)
	}
	t.Logf("errors seen before recovery: %v", failures)
	// The listener reconnected: another store's Put reaches it.
	drainWake(wake)
	if err := other.Put(ctx, testJob(2, "example.com")); err != nil {
		t.Fatal(err)
	}
	waitWake(t, wake, "after the reconnect")
	if st, err := s.Stats(ctx); err != nil || st.Queued != 2 {
		t.Fatalf("Stats: %+v, %v", st, err)
	}
}

func drainWake(c <-chan struct{}) {
	for {
		select {
		case <-c:
		case <-time.After(300 * time.Millisecond):
			return
		}
	}
}

// proxy forwards a loopback port to the database and can be cut and
// restored on the same port: the database unreachable mid-run.
type proxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	l      net.Listener
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	p.serve(l)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(l net.Listener) {
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, d)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(d, c); d.Close() }()
			go func() { defer p.wg.Done(); io.Copy(c, d); c.Close() }()
		}
	}()
}

// down closes the listener and every connection.
func (p *proxy) down() {
	p.mu.Lock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// up listens again on the same port.
func (p *proxy) up() {
	var l net.Listener
	var err error
	for range 50 { // the port may take a moment to be free again
		if l, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy up: %v", err)
	}
	p.serve(l)
}

// TestDatabaseUnreachable: with the database unreachable mid-run every
// operation fails with an error that names it; once it is back, they work
// again without reopening the store.
func TestDatabaseUnreachable(t *testing.T) {
	dsn := testDSN(t)
	u, _ := url.Parse(dsn)
	p := newProxy(t, u.Host)
	u.Host = p.addr
	q := u.Query()
	q.Set("connect_timeout", "3")
	u.RawQuery = q.Encode()
	schema := newSchema(t, dsn)
	s := openStore(t, u.String(), schema)
	ctx := context.Background()
	if err := s.Put(ctx, testJob(1, "example.com")); err != nil {
		t.Fatal(err)
	}

	p.down()
	ops := []struct {
		name string
		fn   func(ctx context.Context) error
	}{
		{"put", func(ctx context.Context) error { return s.Put(ctx, testJob(2, "example.com")) }},
		{"claim", func(ctx context.Context) error {
			_, err := s.Claim(ctx, queue.ClaimRequest{Max: 1, PerKey: 1, Now: t0, Lease: time.Minute})
			return err
		}},
		{"get", func(ctx context.Context) error { _, err := s.Get(ctx, "job-000001"); return err }},
		{"stats", func(ctx context.Context) error { _, err := s.Stats(ctx); return err }},
	}
	for _, op := range ops {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := op.fn(ctx)
		cancel()
		if err == nil || !strings.HasPrefix(err.Error(), "pgstore: "+op.name) || !strings.Contains(err.Error(), "database") {
			t.Errorf("%s with the database unreachable: %v, want a pgstore database error", op.name, err)
		}
		t.Log(err)
	}

	p.up()
	var err error
	for range 50 { // bounded: the pool reconnects on the next use
		if err = s.Put(ctx, testJob(3, "example.com")); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Put once the database is back: %v", err)
	}
	jobs, err := s.Claim(ctx, queue.ClaimRequest{Max: 5, PerKey: 5, Now: t0, Lease: time.Minute})
	if err != nil || len(jobs) != 2 {
		t.Fatalf("Claim once the database is back: %d jobs, %v; want 2", len(jobs), err)
	}
}
