package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/boltstore"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// TestLoadWithFaults is the "load with faults" test of issue 7.
//
// N small messages are enqueued through relay.Client with boltstore and
// delivered by Client.Run in a child process (this test binary, run again)
// to relaytest MX hosts in this process, which tempfail 20% of RCPTs, drop
// 5% of connections after the final dot and now and then answer slowly.
// The child is killed with SIGKILL at three random moments and started
// again each time; the fourth child drains the queue and stops gracefully.
// Then this process opens the store and checks: no message whose Enqueue
// returned is lost (each was delivered or is still queued with a reason),
// and every duplicate follows a drop after the dot or a child killed
// before its store recorded the delivery. It prints the counts.
//
// N is 5,000 (2,000 with -short); MXRELAY_LOADTEST_N sets another, such as
// the full 100,000 that bench/loadtest runs. MXRELAY_LOADTEST_SEED replays
// another fault pattern.
func TestLoadWithFaults(t *testing.T) {
	if s := os.Getenv(loadEnvChild); s != "" {
		if err := runLoadChild(s); err != nil {
			fmt.Fprintln(os.Stderr, "load child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	switch runtime.GOOS {
	case "js", "wasip1", "ios", "android":
		t.Skipf("cannot run the test binary again on %s", runtime.GOOS)
	}
	n, seed := 5000, uint64(7)
	if testing.Short() {
		n = 2000
	}
	if v := os.Getenv("MXRELAY_LOADTEST_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("MXRELAY_LOADTEST_N=%q: want a positive count", v)
		}
	}
	if v := os.Getenv("MXRELAY_LOADTEST_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("MXRELAY_LOADTEST_SEED=%q: %v", v, err)
		}
	}
	t.Logf("%d messages, seed %d (MXRELAY_LOADTEST_N, MXRELAY_LOADTEST_SEED)", n, seed)

	srv, err := relaytest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	faults := &loadFaults{seed: seed, rcpts: map[int]int{}, datas: map[int]int{}, accepted: map[int]bool{}}
	for h := range loadHosts {
		if _, err := srv.AddHost(fmt.Sprintf("mx%d.load.test", h), relaytest.HostConfig{
			TLS: relaytest.TLSNone, RcptReply: faults.rcpt, DataReply: faults.data,
		}); err != nil {
			t.Fatal(err)
		}
	}
	for d := range loadDomains {
		srv.AddDomain(fmt.Sprintf("d%d.load.test", d), fmt.Sprintf("mx%d.load.test", d%loadHosts))
	}

	// Every wait is bounded: each round by phase, the whole run by the
	// children's deadline.
	phase := 30*time.Second + time.Duration(n)*2*time.Millisecond
	deadline := time.Now().Add((loadKills + 2) * phase)
	storePath := filepath.Join(t.TempDir(), "queue.db")
	st := &loadState{started: make([]bool, n), acked: make([]bool, n), finished: make([]uint8, n), maxStarted: -1}
	rng := rand.New(rand.NewPCG(seed, 1))
	start := time.Now()
	for gen := 0; gen <= loadKills; gen++ {
		st.mu.Lock()
		from := st.maxStarted + 1 // never enqueue a message twice
		st.mu.Unlock()
		cfg := loadChildConfig{Store: storePath, DNS: srv.DNS.Addr(), Port: srv.Port, N: n,
			From: from, Drain: gen == loadKills, Gen: gen, Deadline: deadline}
		ch := startLoadChild(t, cfg, st)
		if cfg.Drain {
			select {
			case <-ch.done:
			case <-time.After(time.Until(deadline) + 10*time.Second):
				ch.kill()
				t.Fatalf("the last child did not drain the queue in time; stderr:\n%s", ch.stderr)
			}
			if ch.err != nil {
				t.Fatalf("last child: %v; stderr:\n%s", ch.err, ch.stderr)
			}
			break
		}
		// Kill at a random point of the progress (enqueued + delivered,
		// out of 2n) within this round's window: 10-30%, 40-60%, 70-90%.
		target := int64((0.1 + 0.3*float64(gen) + 0.2*rng.Float64()) * float64(2*n))
		for limit := time.Now().Add(phase); time.Now().Before(limit); {
			st.mu.Lock()
			progress := int64(st.nAcked) + faults.delivered.Load()
			st.mu.Unlock()
			if progress >= target {
				break
			}
			select {
			case <-ch.done:
				t.Fatalf("child %d exited before being killed: %v; stderr:\n%s", gen, ch.err, ch.stderr)
			case <-time.After(2 * time.Millisecond):
			}
		}
		ch.kill()
		if s := ch.stderr.String(); strings.Contains(s, "DATA RACE") || strings.Contains(s, "panic:") {
			t.Fatalf("child %d failed:\n%s", gen, s)
		}
		st.mu.Lock()
		t.Logf("kill %d after %v: %d enqueued, %d delivered", gen+1, time.Since(start).Round(time.Millisecond),
			st.nAcked, faults.delivered.Load())
		st.mu.Unlock()
	}
	elapsed := time.Since(start)

	// The children are gone; nothing changes any more.
	queued := readLoadStore(t, storePath, n)
	copies := map[int][]loadCopy{}
	for _, m := range srv.Messages() {
		i, _, ok := loadIndex(m.To[0])
		gen, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(m.Helo, "child"), ".load.test"))
		if !ok || i >= n || m.Helo != loadHelo(gen) ||
			!bytes.Contains(m.Data, []byte("\r\nX-Load-Index: "+strconv.Itoa(i)+"\r\n")) {
			t.Errorf("unexpected message to %v from %q", m.To, m.Helo)
			continue
		}
		copies[i] = append(copies[i], loadCopy{gen, m})
	}
	r := checkLoad(t, n, st, queued, copies)
	faults.mu.Lock()
	summary := fmt.Sprintf("loadtest: %d messages in %v, %d kills: %d delivered, %d stuck still queued (451), "+
		"%d enqueues cut by a kill (%d not stored); faults: %d RCPT tempfails, %d drops after the dot, "+
		"%d slow replies; duplicates: %d after a drop, %d after a kill",
		n, elapsed.Round(time.Millisecond), loadKills, r.delivered, r.stuckQueued, r.cut, r.cutAbsent,
		faults.tempfails, faults.drops, faults.slow, r.dupDropped, r.dupKilled)
	faults.mu.Unlock()
	t.Log(summary)
	fmt.Println(summary)
}

const (
	loadEnvChild = "MXRELAY_LOADTEST_CHILD" // the child's loadChildConfig, in JSON
	loadDomains  = 8                        // recipient domains d0..d7.load.test
	loadHosts    = 4                        // MX hosts, two domains each (MX rollup)
	loadStuck    = 500                      // every 500th recipient is told 451 for ever
	loadKills    = 3
)

// loadChildConfig is what the parent tells a child.
type loadChildConfig struct {
	Store    string    // boltstore file
	DNS      string    // relaytest DNS server address
	Port     int       // relaytest SMTP port
	N        int       // messages in all
	From     int       // first message this child enqueues
	Drain    bool      // the last child: stop once only stuck messages remain
	Gen      int       // 0 for the first child, then 1...; its EHLO name tells it
	Deadline time.Time // the child exits by then, whatever happens
}

// loadAddr is message i's only recipient.
func loadAddr(i int) string {
	local := "m"
	if i%loadStuck == loadStuck-1 {
		local = "stuck"
	}
	return fmt.Sprintf("%s%d@d%d.load.test", local, i, i%loadDomains)
}

// loadIndex parses the message index out of a recipient address.
func loadIndex(addr string) (i int, stuck, ok bool) {
	local, _, _ := strings.Cut(addr, "@")
	stuck = strings.HasPrefix(local, "stuck")
	i, err := strconv.Atoi(strings.TrimLeft(local, "mstuck"))
	return i, stuck, err == nil && i >= 0
}

// loadHelo is the EHLO name of the child of generation gen.
func loadHelo(gen int) string { return fmt.Sprintf("child%d.load.test", gen) }

func loadMessage(i int) *mime.Message {
	return &mime.Message{
		From:      mail.Address{Address: "sender@load.test"},
		To:        []mail.Address{{Address: loadAddr(i)}},
		Subject:   "load " + strconv.Itoa(i),
		Text:      "Message " + strconv.Itoa(i) + " of the load test.\n",
		MessageID: fmt.Sprintf("<load-%d@load.test>", i),
		Header:    map[string][]string{"X-Load-Index": {strconv.Itoa(i)}},
		Date:      time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

// loadChance is a number in [0, 1) for the nth event of a kind about
// message i (splitmix64 of the seed and the three): the same attempts meet
// the same faults whatever the interleaving.
func loadChance(seed uint64, kind, i, n int) float64 {
	z := seed ^ uint64(kind)<<56 ^ uint64(i)<<20 ^ uint64(n)
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}

// loadFaults scripts the MX hosts and counts what they did.
type loadFaults struct {
	seed      uint64
	delivered atomic.Int64 // messages accepted at least once

	mu        sync.Mutex
	rcpts     map[int]int // RCPTs seen per message
	datas     map[int]int // final dots seen per message
	accepted  map[int]bool
	tempfails int
	drops     int
	slow      int
}

// maybeSlow sleeps 1 to 20 ms before 2% of the replies.
func (f *loadFaults) maybeSlow(kind, i, n int) {
	if c := loadChance(f.seed, kind, i, n); c < 0.02 {
		f.mu.Lock()
		f.slow++
		f.mu.Unlock()
		time.Sleep(time.Duration(1+int(c*1000)) * time.Millisecond)
	}
}

func (f *loadFaults) rcpt(to string) *relaytest.Reply {
	i, stuck, ok := loadIndex(to)
	if !ok {
		return &relaytest.Reply{Code: 550, Enhanced: "5.1.1", Text: "unknown recipient"}
	}
	f.mu.Lock()
	n := f.rcpts[i]
	f.rcpts[i]++
	fail := stuck || loadChance(f.seed, 1, i, n) < 0.20
	if fail {
		f.tempfails++
	}
	f.mu.Unlock()
	f.maybeSlow(2, i, n)
	switch {
	case stuck:
		return &relaytest.Reply{Code: 451, Enhanced: "4.7.1", Text: "stuck for the load test"}
	case fail:
		return &relaytest.Reply{Code: 451, Enhanced: "4.3.0", Text: "try again later"}
	}
	return nil
}

func (f *loadFaults) data(m *relaytest.Message) *relaytest.Reply {
	i, _, ok := loadIndex(m.To[0])
	if !ok {
		return &relaytest.Reply{Code: 554, Text: "unexpected"}
	}
	f.mu.Lock()
	n := f.datas[i]
	f.datas[i]++
	drop := loadChance(f.seed, 3, i, n) < 0.05
	if drop {
		f.drops++
	} else if !f.accepted[i] {
		f.accepted[i] = true
		f.delivered.Add(1)
	}
	f.mu.Unlock()
	f.maybeSlow(4, i, n)
	if drop {
		return &relaytest.Reply{Drop: true}
	}
	return nil
}

// loadState is what the parent learns from the children's stdout: "s i"
// before Enqueue of message i is called, "a i" once it returned nil, "f i"
// once the store recorded i as done.
type loadState struct {
	mu         sync.Mutex
	started    []bool
	acked      []bool
	finished   []uint8 // bit g: child g recorded the message as done
	nAcked     int
	maxStarted int
}

// loadOutput parses one child's stdout, line by line.
type loadOutput struct {
	st      *loadState
	gen     int
	partial []byte
}

func (o *loadOutput) Write(p []byte) (int, error) {
	s := o.st
	s.mu.Lock()
	defer s.mu.Unlock()
	o.partial = append(o.partial, p...)
	for {
		line, rest, ok := bytes.Cut(o.partial, []byte("\n"))
		if !ok {
			break
		}
		o.partial = rest
		kind, num, _ := strings.Cut(string(line), " ")
		i, err := strconv.Atoi(num)
		if err != nil || i < 0 || i >= len(s.started) {
			continue
		}
		switch kind {
		case "s":
			s.started[i] = true
			s.maxStarted = max(s.maxStarted, i)
		case "a":
			if !s.acked[i] {
				s.acked[i] = true
				s.nAcked++
			}
		case "f":
			s.finished[i] |= 1 << o.gen
		}
	}
	o.partial = slices.Clip(o.partial)
	return len(p), nil
}

// limitedBuffer keeps the first 64 KB written to it (a child's stderr).
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 64<<10 - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// loadChild is a running child process.
type loadChild struct {
	cmd    *exec.Cmd
	stdin  io.Closer // the child stops when it is closed
	stderr *limitedBuffer
	done   chan struct{} // closed once Wait returned (and stdout was read)
	err    error
}

func startLoadChild(t *testing.T, cfg loadChildConfig, st *loadState) *loadChild {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestLoadWithFaults$")
	cmd.Env = append(os.Environ(), loadEnvChild+"="+string(js))
	cmd.Stdout = &loadOutput{st: st, gen: cfg.Gen}
	ch := &loadChild{cmd: cmd, stderr: &limitedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = ch.stderr
	if ch.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		ch.err = cmd.Wait()
		close(ch.done)
	}()
	// Whatever happens to the test, the child is killed by its PID and
	// waited for.
	t.Cleanup(ch.kill)
	return ch
}

// kill sends SIGKILL to the child, by PID, unless it has exited, and
// waits for it.
func (ch *loadChild) kill() {
	select {
	case <-ch.done:
	default:
		ch.cmd.Process.Kill()
		<-ch.done
	}
	ch.stdin.Close()
}

// readLoadStore returns the jobs left in the store, by message.
func readLoadStore(t *testing.T, path string, n int) map[int]*queue.Job {
	t.Helper()
	store, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	queued := map[int]*queue.Job{}
	for after := ""; ; {
		jobs, next, err := store.List(context.Background(), queue.ListRequest{After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			i, _, ok := loadIndex(j.Recipients[0].Addr)
			if !ok || i >= n || queued[i] != nil {
				t.Errorf("unexpected job in the store: %s to %v", j.ID, j.Recipients)
				continue
			}
			queued[i] = j
		}
		if next == "" {
			return queued
		}
		after = next
	}
}

// loadCopy is one copy of a message a host received, with the generation
// of the child that sent it.
type loadCopy struct {
	gen int
	*relaytest.Message
}

type loadResult struct {
	delivered, stuckQueued, cut, cutAbsent, dupDropped, dupKilled int
}

// checkLoad checks every message's fate and counts the outcomes.
func checkLoad(t *testing.T, n int, st *loadState, queued map[int]*queue.Job, copies map[int][]loadCopy) loadResult {
	t.Helper()
	var r loadResult
	for i := range n {
		_, stuck, _ := loadIndex(loadAddr(i))
		cs, job := copies[i], queued[i]
		ok := slices.ContainsFunc(cs, func(c loadCopy) bool { return !c.Dropped })
		if ok {
			r.delivered++
		}
		if !st.started[i] && (len(cs) > 0 || job != nil) {
			t.Errorf("message %d was never enqueued but appears (%d copies, in store %t)", i, len(cs), job != nil)
		}
		if st.started[i] && !st.acked[i] {
			r.cut++ // the child was killed inside Enqueue: either fate is right
			if !ok && job == nil {
				r.cutAbsent++
			}
		}
		switch {
		case st.acked[i] && !ok && job == nil:
			t.Errorf("message %d LOST: enqueued, never delivered, not in the store (%d dropped copies)", i, len(cs))
		case job == nil:
		case job.LastError == "" || job.Attempts == 0:
			t.Errorf("message %d still queued without a reason: %+v", i, job)
		case !stuck:
			t.Errorf("message %d still queued after the drain: %s", i, job.LastError)
		case !strings.Contains(job.LastError, "451"):
			t.Errorf("stuck message %d queued with reason %q, want the 451", i, job.LastError)
		default:
			r.stuckQueued++
		}
		if stuck && ok {
			t.Errorf("stuck message %d was delivered", i)
		}
		for g := range loadKills + 1 {
			if st.finished[i]&(1<<g) != 0 && !slices.ContainsFunc(cs, func(c loadCopy) bool { return c.gen == g && !c.Dropped }) {
				t.Errorf("message %d recorded as done by child %d, which never delivered it", i, g)
			}
		}
		// A copy after the first is a duplicate: it must follow a copy
		// whose connection was dropped after the dot, or one sent by a
		// child that was killed before its store recorded the delivery.
		slices.SortStableFunc(cs, func(a, b loadCopy) int { return a.gen - b.gen })
		for j := 1; j < len(cs); j++ {
			prev, cur := cs[j-1], cs[j]
			switch {
			case prev.Dropped:
				r.dupDropped++
			case prev.gen < cur.gen && st.finished[i]&(1<<prev.gen) == 0:
				r.dupKilled++
			case prev.gen == cur.gen:
				t.Errorf("message %d delivered twice by child %d, the first time with no drop (%v, %v)",
					i, cur.gen, prev.Received, cur.Received)
			default:
				t.Errorf("message %d delivered again by child %d after child %d had recorded it as delivered",
					i, cur.gen, prev.gen)
			}
		}
	}
	return r
}
