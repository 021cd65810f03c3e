package console_test

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/boltstore"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/console"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// The acceptance figure: every page renders in under 100 ms with 100,000
// queued messages and a year of history in boltstore.
const (
	benchJobs        = 100_000
	benchHeldEvery   = 50 // one job in 50 is held for review: 2,000
	benchDeferEvery  = 30 // one in 30 was tried already
	benchDomains     = 500
	benchRecords     = 1_000_000 // a year of history: ~2,700 messages a day
	benchAddrs       = 200_000
	benchSuppressed  = 50_000
	benchRare        = "rare.example" // the domain of 3 jobs at the end of the queue
	benchHeavy       = "heavy.user@example.com"
	benchHeavyEvery  = 1000 // one record in 1,000 is to benchHeavy
	benchMessageSize = 5000
)

// benchEnv is the console over a boltstore holding the queue, the
// history and the suppressions; it is built once per run of
// BenchmarkPages, so that a plain go test never pays for it.
type benchEnv struct {
	c       *relay.Client
	h       http.Handler
	store   *boltstore.Store
	queued  string // a queued job to example.com
	record  string // a message of the history
	cleanup func()
}

// benchID is an id as queue.NewID makes them: the time, then n for the
// rest, so that ids sort in time order.
func benchID(t time.Time, n int) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixNano()))
	binary.BigEndian.PutUint64(b[8:], uint64(n)*0x9e3779b97f4a7c15)
	return hex.EncodeToString(b[:])
}

func benchAddr(i int) string { return fmt.Sprintf("user%d@d%d.example", i, i%benchDomains) }

// benchMessage is a multipart/alternative message of about 5 KB.
func benchMessage(to string, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: \"Shop\" <shop@sender.example>\r\nTo: <%s>\r\nSubject: Your order %d has shipped\r\n", to, n)
	fmt.Fprintf(&b, "Date: Mon, 02 Jun 2031 10:00:00 +0000\r\nMessage-ID: <%d@sender.example>\r\nMIME-Version: 1.0\r\n", n)
	b.WriteString("Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	for b.Len() < benchMessageSize/2 {
		b.WriteString("Your parcel is on its way. Track it at https://shop.example/track?order=12345\r\n")
	}
	b.WriteString("\r\n--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>")
	for b.Len() < benchMessageSize {
		b.WriteString("<p>Your parcel is on its way. <a href=\"https://shop.example/track?order=12345\">Track it</a>.</p>\r\n")
	}
	b.WriteString("<img src=\"https://shop.example/logo.png\" alt=\"\"></body></html>\r\n--b1--\r\n")
	return []byte(b.String())
}

func newBenchEnv(b *testing.B) *benchEnv {
	start := time.Now()
	srv, err := relaytest.NewServer()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := srv.AddHost("mx.example.com", relaytest.HostConfig{}); err != nil {
		b.Fatal(err)
	}
	srv.AddDomain("example.com", "mx.example.com")
	// Filling without fsync keeps the setup short; reading does not
	// depend on it.
	store, err := boltstore.OpenWith(filepath.Join(b.TempDir(), "console.db"), boltstore.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	env := &benchEnv{store: store, cleanup: func() { store.Close(); srv.Close() }}
	ctx := context.Background()
	now := time.Now()

	// The queue: 100,000 jobs created over the last three days, in id
	// order, to 500 domains; 2,000 held in five campaigns, one in 30
	// deferred, three to the rare domain at the very end, and one to
	// example.com in the middle, for the message page.
	span := 72 * time.Hour
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= benchJobs {
					return
				}
				created := now.Add(-span + time.Duration(i)*(span/benchJobs))
				to := benchAddr(i)
				switch {
				case i >= benchJobs-3:
					to = fmt.Sprintf("buyer%d@%s", i, benchRare)
				case i == benchJobs/2:
					to = "buyer@example.com"
				}
				j := queue.NewJob("bounces@sender.example", []string{to}, benchMessage(to, i))
				j.ID, j.RoutingKey, j.Created, j.NextAttempt = benchID(created, i), queue.DomainOf(to), created, created
				if i%benchHeldEvery == 0 {
					j.Held = true
					j.Metadata = map[string]string{"mxrelay.campaign": fmt.Sprintf("campaign-%d", i/benchHeldEvery%5)}
				} else if i%benchDeferEvery == 0 {
					j.Attempts, j.LastError = 3, "451 4.7.1 Greylisted, try again later"
					j.Recipients[0].Reply = j.LastError
					j.NextAttempt = now.Add(time.Hour)
				}
				if i == benchJobs/2 {
					env.queued = j.ID
				}
				if err := store.Put(ctx, j); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	queued := time.Since(start)

	// The history: a million records over the last year, oldest first,
	// of one or two recipients each; one in a thousand to benchHeavy.
	rng := rand.New(rand.NewPCG(1, 2))
	const perCall = 20_000
	year := 365 * 24 * time.Hour
	batches := make(chan []queue.Record, 2)
	go func() {
		defer close(batches)
		batch := make([]queue.Record, 0, perCall)
		for n := range benchRecords {
			created := now.Add(-year + time.Duration(n)*(year/benchRecords))
			r := queue.Record{ID: benchID(created, n), MessageID: fmt.Sprintf("%d@sender.example", n), From: "bounces@sender.example",
				Subject: fmt.Sprintf("Your order %d has shipped", n), Campaign: fmt.Sprintf("campaign-%d", n%50),
				Created: created, Updated: created.Add(5 * time.Second)}
			for k := range 1 + rng.IntN(2) {
				addr := benchAddr(rng.IntN(benchAddrs))
				if k == 0 && n%benchHeavyEvery == 0 {
					addr = benchHeavy
				}
				rr := queue.RecipientRecord{Addr: addr, Status: "delivered", Code: 250, Enhanced: "2.0.0",
					Reply: "ok: queued as 4Xyz", MX: "mx." + queue.DomainOf(addr), TLSVersion: "TLS 1.3",
					Time: created.Add(2 * time.Second), Attempts: 1}
				switch x := rng.IntN(100); {
				case x < 3:
					rr.Status, rr.Code, rr.Enhanced, rr.Reply = "bounced", 550, "5.1.1", "user unknown"
				case x < 25:
					rr.Notes = []queue.Note{{Type: "opened", Time: created.Add(time.Hour)}}
				}
				r.Recipients = append(r.Recipients, rr)
			}
			batch = append(batch, r)
			if len(batch) == perCall {
				batches <- batch
				batch = make([]queue.Record, 0, perCall)
			}
			if n == benchRecords-10 {
				env.record = r.ID
			}
		}
		if len(batch) > 0 {
			batches <- batch
		}
	}()
	for batch := range batches {
		if err := store.Keep(ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	kept := time.Since(start) - queued

	// Suppressions, and events for the events page (an unsubscribe by
	// the API emits one).
	sup := make([]queue.Suppression, 0, 5000)
	for i := range benchSuppressed {
		sup = append(sup, queue.Suppression{Address: benchAddr(i * 3), Reason: queue.SuppressReason(1 + i%4),
			Source: "benchmark", Created: now.Add(-time.Duration(i) * time.Minute)})
		if len(sup) == cap(sup) {
			if err := store.Suppress(ctx, sup...); err != nil {
				b.Fatal(err)
			}
			sup = sup[:0]
		}
	}
	c := srv.Client()
	c.Store, c.History, c.Suppressions = store, store, store
	for i := range relay.RecentEventsKept {
		if err := c.Suppress(ctx, fmt.Sprintf("leaver%d@example.com", i), "news", queue.Unsubscribed, "benchmark"); err != nil {
			b.Fatal(err)
		}
	}
	env.c = c
	env.h = benchConsole(b, c)
	// The dashboard's figures from the history, read in the background:
	// wait for them, so that the pages are timed without that reading
	// going on.
	shared := env.waitShared(b, env.h)
	var size int64
	if fi, err := os.Stat(store.Path()); err == nil {
		size = fi.Size()
	}
	fmt.Printf("setup: %d jobs in %v, %d history records in %v, the dashboard's history figures in %v; %v in all, a file of %d MB\n",
		benchJobs, queued.Round(time.Millisecond), benchRecords, kept.Round(time.Millisecond),
		shared.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), size>>20)
	return env
}

func benchConsole(b *testing.B, c *relay.Client) http.Handler {
	h, err := console.New(c, console.Options{Path: "/console/", Authorize: console.BasicAuth(testUser, testPass)})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// get renders one page and fails the benchmark unless it is a 200.
func (env *benchEnv) get(b *testing.B, h http.Handler, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", "/console/"+path, nil)
	req.SetBasicAuth(testUser, testPass)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("GET %s: %d\n%s", path, w.Code, w.Body.String())
	}
	return w
}

// BenchmarkPages renders each page over a boltstore of 100,000 queued
// messages and a year of history (1,000,000 records). The setup takes
// under a minute and about 1.5 GB of disk; only this benchmark pays for it:
//
//	go test -run '^$' -bench Pages -benchtime 20x ./relay/console/
func BenchmarkPages(b *testing.B) {
	env := newBenchEnv(b)
	defer env.cleanup()
	pages := []struct{ name, path string }{
		{"dashboard", ""},
		{"queue", "queue"},
		{"queue-rare-domain", "queue?domain=" + benchRare},
		{"queue-deferred", "queue?state=deferred"},
		{"queue-held-campaign", "queue?state=held&campaign=campaign-3"},
		{"message", "message/" + env.queued},
		{"message-history", "message/" + env.record},
		{"approvals", "approvals"},
		{"history", "history"},
		{"history-recipient", "history?recipient=" + benchHeavy},
		{"history-campaign", "history?campaign=campaign-7"},
		{"suppressions", "suppressions"},
		{"suppressions-search", "suppressions?q=user1"},
		{"events", "events"},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			env.get(b, env.h, p.path) // warm: the first call of a page
			for b.Loop() {
				env.get(b, env.h, p.path)
			}
			b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/page")
		})
	}
	// A new console's first dashboard: it starts reading the history's
	// figures of the last day in the background and waits a moment for
	// them. The reading itself, waited for with the timer stopped, is
	// reported as ms/history-figures.
	b.Run("dashboard-first", func(b *testing.B) {
		var reading time.Duration
		for b.Loop() {
			b.StopTimer()
			h := benchConsole(b, env.c)
			b.StartTimer()
			t0 := time.Now()
			env.get(b, h, "")
			b.StopTimer()
			reading += env.waitShared(b, h) + time.Since(t0)
			b.StartTimer()
		}
		b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/page")
		b.ReportMetric(reading.Seconds()*1e3/float64(b.N), "ms/history-figures")
	})
}

// waitShared waits until h's dashboard shows the history's figures, and
// returns how long that took.
func (env *benchEnv) waitShared(b *testing.B, h http.Handler) time.Duration {
	t0 := time.Now()
	for !strings.Contains(env.get(b, h, "").Body.String(), "<table class=\"figures\">") {
		if time.Since(t0) > time.Minute {
			b.Fatal("the dashboard never shows the history's figures")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(t0)
}
