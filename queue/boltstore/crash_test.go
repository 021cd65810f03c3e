package boltstore

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// The crash test re-runs this test binary as a child that enqueues jobs and
// delivers them through a Store to a recording deliverer, and kills it with
// SIGKILL at random moments.
const (
	crashChildEnv = "MXRELAY_BOLTSTORE_CRASH_DIR"
	crashRoundEnv = "MXRELAY_BOLTSTORE_CRASH_ROUND"
	crashWorkers  = 8
)

// appendLog appends fsynced lines to a file; a line is on disk when Write
// returns.
type appendLog struct {
	mu sync.Mutex
	f  *os.File
}

func openLog(path string) (*appendLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	return &appendLog{f: f}, err
}

func (l *appendLog) Write(line string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.WriteString(line + "\n"); err != nil {
		return err
	}
	return l.f.Sync()
}

// recorder is the deliverer: it records each delivery before reporting it.
func recorder(l *appendLog, round int) queue.Deliverer {
	return queue.DelivererFunc(func(ctx context.Context, j *queue.Job) []queue.Outcome {
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) // the "SMTP session"
		if err := l.Write(fmt.Sprintf("D %d %s", round, j.ID)); err != nil {
			return queue.Outcomes(j, queue.Deferred, err.Error())
		}
		return queue.Outcomes(j, queue.Delivered, "250 ok")
	})
}

// crashChild runs until killed (or 30 s): 4 producers enqueue and log each
// id once Enqueue returned, while the queue delivers.
func crashChild(dir string, round int) error {
	s, err := Open(filepath.Join(dir, "q.db"))
	if err != nil {
		return err
	}
	enq, err := openLog(filepath.Join(dir, "enqueued.log"))
	if err != nil {
		return err
	}
	del, err := openLog(filepath.Join(dir, "delivered.log"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := &queue.Queue{Store: s, Deliverer: recorder(del, round), Workers: crashWorkers, PerKey: -1}
	go q.Run(ctx)
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000 && ctx.Err() == nil; i++ {
				j := queue.NewJob("s@example.org", []string{fmt.Sprintf("r%d-%d@example.com", p, i)},
					[]byte("Subject: crash test\r\n\r\nhello\r\n"))
				id, err := q.Enqueue(ctx, j)
				if err != nil {
					continue
				}
				if err := enq.Write("E " + id); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	<-ctx.Done()
	return s.Close()
}

// readLog returns the complete lines' fields of a log (a kill may leave a
// partial last line).
func readLog(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return out
		}
		out = append(out, strings.Fields(line))
	}
}

func TestCrashSafety(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		round, _ := strconv.Atoi(os.Getenv(crashRoundEnv))
		if err := crashChild(dir, round); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	rounds := 6
	if testing.Short() {
		rounds = 2
	}
	dir := t.TempDir()
	ctx := context.Background()
	for round := 1; round <= rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSafety$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashRoundEnv+"="+strconv.Itoa(round))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(300+rand.IntN(900)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()

		// After each kill: every job whose Enqueue returned is delivered or
		// still queued.
		enq, del := readLog(t, filepath.Join(dir, "enqueued.log")), readLog(t, filepath.Join(dir, "delivered.log"))
		delivered := map[string]bool{}
		for _, f := range del {
			delivered[f[2]] = true
		}
		s, err := Open(filepath.Join(dir, "q.db"))
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		queued, lost := 0, 0
		for _, f := range enq {
			if delivered[f[1]] {
				continue
			}
			if _, err := s.Get(ctx, f[1]); err != nil {
				lost++
				t.Errorf("round %d: job %s was enqueued, is not delivered and not queued: %v", round, f[1], err)
			} else {
				queued++
			}
		}
		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		t.Logf("round %d: killed; %d enqueued, %d deliveries recorded, %d waiting, store %+v",
			round, len(enq), len(del), queued, st)
		if lost > 0 {
			t.FailNow()
		}
	}

	// Drain what is left in this process, then check the whole record.
	s, err := Open(filepath.Join(dir, "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	del, err := openLog(filepath.Join(dir, "delivered.log"))
	if err != nil {
		t.Fatal(err)
	}
	final := rounds + 1
	q := &queue.Queue{Store: s, Deliverer: recorder(del, final), Workers: crashWorkers}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { q.Run(rctx); close(done) }()
	for i := 0; ; i++ {
		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st == (queue.Stats{}) {
			break
		}
		if i > 3000 {
			t.Fatalf("drain did not finish: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done

	enq := readLog(t, filepath.Join(dir, "enqueued.log"))
	rounds2 := map[string][]int{}
	deliveries := 0
	for _, f := range readLog(t, filepath.Join(dir, "delivered.log")) {
		r, _ := strconv.Atoi(f[1])
		rounds2[f[2]] = append(rounds2[f[2]], r)
		deliveries++
	}
	missing := 0
	for _, f := range enq {
		if len(rounds2[f[1]]) == 0 {
			missing++
		}
	}
	dupsByRound := map[int]int{}
	dups := 0
	for id, rs := range rounds2 {
		for i := 1; i < len(rs); i++ {
			dups++
			// A second delivery only follows a kill: never twice in one
			// process, and only for a job in flight when it died.
			if rs[i] == rs[i-1] {
				t.Errorf("job %s delivered twice in round %d", id, rs[i])
			}
			dupsByRound[rs[i-1]]++
		}
	}
	for r, n := range dupsByRound {
		if r > rounds || n > crashWorkers {
			t.Errorf("round %d: %d jobs delivered again after the kill, more than the %d that can be in flight", r, n, crashWorkers)
		}
	}
	fmt.Printf("crash test: %d kills, %d jobs enqueued, %d delivered (%d deliveries), %d lost, %d duplicates (by killed round: %v), drained %d after the last kill\n",
		rounds, len(enq), len(rounds2), deliveries, missing, dups, dupsByRound, countRound(rounds2, final))
	if missing > 0 {
		t.Fatalf("%d enqueued jobs were never delivered", missing)
	}
}

func countRound(m map[string][]int, round int) int {
	n := 0
	for _, rs := range m {
		for _, r := range rs {
			if r == round {
				n++
			}
		}
	}
	return n
}
