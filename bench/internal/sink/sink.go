// Package sink runs Postfix's smtp-sink and smtp-source for the
// benchmarks: a real, fast SMTP peer that counts what it receives.
package sink

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// sinkPath and sourcePath are where Debian's postfix package installs
// Postfix's test programs.
const (
	sinkPath   = "/usr/sbin/smtp-sink"
	sourcePath = "/usr/sbin/smtp-source"
)

// Sink is a running smtp-sink: it accepts every message on 127.0.0.1:Port
// and throws it away, counting sessions and messages (-c).
type Sink struct {
	Port int
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when the process has exited
}

// Start starts smtp-sink on a free loopback port and waits (up to 5 s)
// until it accepts connections.
func Start() (*Sink, error) {
	bin, err := exec.LookPath("smtp-sink")
	if err != nil {
		bin = sinkPath
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("smtp-sink not found (Debian package postfix): %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	// -c: running counters on stdout; -h: the name in the greeting;
	// -m: sessions served at once (ours are 20; smtp-source's too);
	// -u nobody: required when run as root. 1024 is the listen backlog.
	args := []string{"-c", "-h", "mx.example.com", "-m", "512"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	args = append(args, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "1024")
	s := &Sink{Port: port, out: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting smtp-sink: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("smtp-sink exited: %s", s.out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("smtp-sink not listening on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var counterRE = regexp.MustCompile(`mesg=(\d+)`)

// PID is the process id of smtp-sink, for its CPU time.
func (s *Sink) PID() int { return s.cmd.Process.Pid }

// Messages is the last message count smtp-sink printed.
func (s *Sink) Messages() int {
	m := counterRE.FindAllSubmatch(s.out.Bytes(), -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(string(m[len(m)-1][1]))
	return n
}

// Stop ends smtp-sink by its PID: SIGTERM, then SIGKILL after 3 s.
func (s *Sink) Stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(3 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// RunSource runs smtp-source against the sink: n messages of a payload of
// length octets over sessions connections, each reused (-d). It is bounded
// by ctx and returns the wall time it took and the CPU time it used.
func RunSource(ctx context.Context, port, n, sessions, length int) (el, cpu time.Duration, err error) {
	bin, err := exec.LookPath("smtp-source")
	if err != nil {
		bin = sourcePath
	}
	args := []string{"-d", "-s", strconv.Itoa(sessions), "-m", strconv.Itoa(n), "-l", strconv.Itoa(length),
		"-M", "source.example", "-f", "bench@sender.example", "-t", "rcpt@example.com",
		net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	el = time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("smtp-source: %w: %s", err, out.String())
	}
	return el, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// SourceLength is the -l payload that makes smtp-source's messages about
// size octets on the wire: its header is about 100 octets, and its payload
// comes in lines of 79 characters and a newline, each sent as CRLF.
func SourceLength(size int) int { return (size - 100) * 80 / 81 }

// FreePort finds a TCP port free on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer is a bytes.Buffer safe for a writer and readers at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 {
		// Keep the tail only: the counters are rewritten with \r.
		tail := append([]byte(nil), b.b.Bytes()[b.b.Len()-4096:]...)
		b.b.Reset()
		b.b.Write(tail)
	}
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.b.Bytes()...)
}

func (b *syncBuffer) String() string { return string(b.Bytes()) }
