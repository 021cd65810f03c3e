package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mxrelay/mxrelay/bench/internal/sink"
)

// sizes of the messages, in octets.
var messageSizes = []struct {
	name string
	size int
}{{"5 KB", 5 << 10}, {"60 KB", 60 << 10}}

// rtt is the emulated round-trip time of the proxied runs.
const rtt = 20 * time.Millisecond

// Key operations of the raw signing rows.
const (
	rawRSAOps = 3000
	rawEdOps  = 30000
)

// contender is one row of the table: a process run once a round.
type contender struct {
	key, label string
	n          int
	kind       string // a child kind, or "source" for smtp-source
	rtt        bool   // through the delay proxy
	rawOps     bool   // key operations, timed inside the process
	ms         []measure
}

// measure is one run of a contender.
type measure struct {
	wall    time.Duration // from the process's start to its exit
	inner   time.Duration // as the process timed itself (0 for smtp-source)
	enqueue time.Duration // durable runs: until the last Enqueue returned
	cli     time.Duration // CPU time of the contender process
	sink    time.Duration // CPU time of smtp-sink meanwhile
	note    string
}

// rate is the messages (or operations) per second of m.
func (c *contender) rate(m measure) float64 {
	if c.rawOps {
		return float64(c.n) / m.inner.Seconds()
	}
	return float64(c.n) / m.wall.Seconds()
}

// coordinator runs the contenders.
type coordinator struct {
	cfg  config
	ctx  context.Context
	self string // this program, for the child processes
	dir  string // a temporary directory for the durable runs' files
}

func run(cfg config) error {
	// Bounded: the whole program gives up after 40 minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "mxrelay-bench-relay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	k := &coordinator{cfg: cfg, ctx: ctx, self: self, dir: dir}

	fmt.Printf("mxrelay bulk sending into smtp-sink on 127.0.0.1, %d senders, one recipient per message (%s, %d CPUs)\n",
		senders, runtime.Version(), runtime.NumCPU())
	fmt.Printf("every contender its own process, started fresh; direct runs %d messages, 20 ms RTT runs %d; %d rounds, contenders rotated\n\n",
		cfg.n, cfg.nRTT, cfg.rounds)
	var tables []sizeTable
	for _, sz := range messageSizes {
		if !cfg.wants(sz.name) {
			continue
		}
		t, err := k.size(sz.name, sz.size)
		if err != nil {
			return err
		}
		tables = append(tables, t)
	}
	printRows(tables)
	fmt.Println()
	printGoals(tables)
	if cfg.postfix {
		fmt.Println()
		if err := k.postfixComparison(); err != nil {
			return err
		}
	}
	return nil
}

// sizeTable is the rows of one message size.
type sizeTable struct {
	name string
	rows []*contender
}

// row returns the contender with key, or nil if it did not run.
func (t sizeTable) row(key string) *contender {
	for _, c := range t.rows {
		if c.key == key {
			return c
		}
	}
	return nil
}

// size runs every contender cfg.rounds times with messages of size octets.
func (k *coordinator) size(name string, size int) (sizeTable, error) {
	cfg := k.cfg
	all := []*contender{
		{key: "source", label: "smtp-source -d -s 20", n: cfg.n, kind: "source"},
		{key: "send", label: "mxrelay Send, defaults", n: cfg.n, kind: kindSend},
		{key: "send-tuned", label: fmt.Sprintf("mxrelay Send, tuned: %d conns, %d msgs/conn", tunedMaxConnections, tunedPerConnection), n: cfg.n, kind: kindSendTuned},
		{key: "sendraw", label: "mxrelay SendRaw, pre-written", n: cfg.n, kind: kindSendRaw},
		{key: "gomail", label: "go-mail (20 goroutines, reuse)", n: cfg.n, kind: kindGoMail},
		{key: "gomail-rtt", label: "go-mail, 20 ms RTT", n: cfg.nRTT, kind: kindGoMail, rtt: true},
		{key: "send-rtt", label: "mxrelay Send, defaults, 20 ms RTT", n: cfg.nRTT, kind: kindSend, rtt: true},
		{key: "durable", label: "Enqueue+boltstore+Run, defaults", n: cfg.n, kind: kindDurable},
		{key: "durable-rtt", label: "Enqueue+boltstore+Run, 20 ms RTT", n: cfg.nRTT, kind: kindDurable, rtt: true},
		{key: "signed-ed25519", label: "mxrelay Send, DKIM Ed25519", n: cfg.n, kind: kindEd25519},
		{key: "signed-rsa", label: "mxrelay Send, DKIM RSA-2048", n: cfg.n, kind: kindRSA},
		{key: "raw-rsa", label: "rsa.SignPKCS1v15, all cores (ops)", n: rawRSAOps, kind: kindRawRSA, rawOps: true},
		{key: "raw-ed25519", label: "ed25519.Sign, all cores (ops)", n: rawEdOps, kind: kindRawEd, rawOps: true},
	}
	var rows []*contender
	for _, c := range all {
		if cfg.runs(c.key) {
			rows = append(rows, c)
		}
	}
	fmt.Printf("%s: mxrelay's message %d octets, smtp-source -l %d\n", name, mxSize(size), sink.SourceLength(size))
	for round := range cfg.rounds {
		for i := range rows {
			c := rows[(i+round)%len(rows)]
			m, err := k.once(c, size)
			if err != nil {
				return sizeTable{}, fmt.Errorf("%s, %s, round %d: %w", c.label, name, round+1, err)
			}
			c.ms = append(c.ms, m)
		}
		fmt.Printf("  round %d of %d done\n", round+1, cfg.rounds)
	}
	return sizeTable{name: name, rows: rows}, nil
}

// once runs contender c once: a fresh sink (and proxy), the contender's
// process, then the sink's count checked.
func (k *coordinator) once(c *contender, size int) (measure, error) {
	var m measure
	if c.rawOps {
		r, wall, cpu, err := k.child(childArgs{Kind: c.kind, N: c.n})
		return measure{wall: wall, inner: r.Inner, cli: cpu}, err
	}
	sk, err := sink.Start()
	if err != nil {
		return m, err
	}
	defer sk.Stop()
	port := sk.Port
	if c.rtt {
		p, err := k.startProxy(sk.Port)
		if err != nil {
			return m, err
		}
		defer p.stop()
		port = p.port
	}
	sink0 := procCPU(sk.PID())
	if c.kind == "source" {
		m.wall, m.cli, err = sink.RunSource(k.ctx, port, c.n, senders, sink.SourceLength(size))
	} else {
		var r childResult
		a := childArgs{Kind: c.kind, Port: port, N: c.n, Size: size, Dir: k.dir}
		if k.cfg.profDir != "" {
			a.Profile = filepath.Join(k.cfg.profDir, fmt.Sprintf("%s-%d-%d.pprof", c.key, size>>10, len(c.ms)+1))
		}
		r, m.wall, m.cli, err = k.child(a)
		m.inner, m.enqueue, m.note = r.Inner, r.Enqueue, r.Note
	}
	if err != nil {
		return m, err
	}
	m.sink = procCPU(sk.PID()) - sink0
	sk.Stop()
	if got := sk.Messages(); got != c.n {
		return m, fmt.Errorf("smtp-sink counted %d messages, want %d", got, c.n)
	}
	return m, nil
}

// child runs this program as contender a and returns what it printed,
// its wall time and its CPU time.
func (k *coordinator) child(a childArgs) (childResult, time.Duration, time.Duration, error) {
	var r childResult
	spec, _ := json.Marshal(a)
	cmd := exec.CommandContext(k.ctx, k.self, "-child", string(spec))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return r, wall, 0, fmt.Errorf("%w: %s", err, strings.TrimSpace(errOut.String()))
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return r, wall, cpu, fmt.Errorf("the contender printed %q: %w", out.String(), err)
	}
	return r, wall, cpu, nil
}

// proxyProc is the delay proxy, running as a process of its own.
type proxyProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	port  int
}

// startProxy starts the delay proxy in front of target, a loopback port,
// and waits until it prints the port it listens on.
func (k *coordinator) startProxy(target int) (*proxyProc, error) {
	spec, _ := json.Marshal(childArgs{Kind: kindProxy, Port: target})
	cmd := exec.Command(k.self, "-child", string(spec))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proxyProc{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err == nil {
		p.port, err = strconv.Atoi(strings.TrimSpace(line))
	}
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("delay proxy: %w (it printed %q)", err, line)
	}
	return p, nil
}

// stop closes the proxy's standard input, which ends it, and waits for it
// by its PID: SIGKILL after 5 s.
func (p *proxyProc) stop() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// proxyMain is the delay proxy's process: it forwards to 127.0.0.1:port,
// prints its own port, and ends when its standard input closes.
func proxyMain(port int) error {
	p, err := newDelayProxy(fmt.Sprintf("127.0.0.1:%d", port), rtt/2)
	if err != nil {
		return err
	}
	defer p.Close()
	fmt.Println(p.Port())
	_, err = io.Copy(io.Discard, os.Stdin)
	if errors.Is(err, os.ErrClosed) {
		err = nil
	}
	return err
}

// mxSize is the size of mxrelay's message of about size octets.
func mxSize(size int) int {
	data, err := mxMessage(bodyFor(size)).Bytes()
	if err != nil {
		return 0
	}
	return len(data)
}

// stat is the median and the range of some values.
type stat struct{ med, lo, hi float64 }

func statOf(xs []float64) stat {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return stat{}
	}
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{med, s[0], s[len(s)-1]}
}

// each applies f to every measure of c.
func (c *contender) each(f func(measure) float64) []float64 {
	out := make([]float64, len(c.ms))
	for i, m := range c.ms {
		out[i] = f(m)
	}
	return out
}

// perMsg is CPU time per message, in µs.
func (c *contender) perMsg(d time.Duration) float64 {
	return float64(d.Nanoseconds()) / 1e3 / float64(c.n)
}
