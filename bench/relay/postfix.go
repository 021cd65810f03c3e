package main

import (
	"context"
	"fmt"
	"github.com/mxrelay/mxrelay/bench/internal/goals"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mxrelay/mxrelay/bench/internal/sink"
)

// The durable comparison: messages and rounds.
const (
	postfixMessages = 3000
	postfixRounds   = 3
	postfixSize     = 5 << 10
)

// postfixComparison times the durable path (Enqueue into boltstore, Run)
// against a private Postfix that queues every message on disk (its
// defaults: fsync on every queue file) and relays it to smtp-sink through
// relayhost, fed by smtp-source from 20 sessions: the same 3,000 messages
// of 5 KB, until the sink has counted them all. Rounds alternate.
func (k *coordinator) postfixComparison() error {
	sk, err := sink.Start()
	if err != nil {
		return err
	}
	defer sk.Stop()
	pf, err := startPostfix(sk.Port)
	if err != nil {
		return err
	}
	defer pf.stop()
	fmt.Printf("durable path against a private Postfix queueing on disk, relayhost the sink: %d messages of 5 KB, %d sessions or producers, %d rounds\n",
		postfixMessages, senders, postfixRounds)
	var ours, theirs []float64
	for round := range postfixRounds {
		for i := range 2 {
			counted := sk.Messages()
			if (i+round)%2 == 0 {
				_, wall, _, err := k.child(childArgs{Kind: kindDurable, Port: sk.Port, N: postfixMessages, Size: postfixSize, Dir: k.dir})
				if err != nil {
					return fmt.Errorf("durable run: %w", err)
				}
				if err := waitCount(k.ctx, sk, counted+postfixMessages); err != nil {
					return err
				}
				ours = append(ours, postfixMessages/wall.Seconds())
				continue
			}
			start := time.Now()
			if _, _, err := sink.RunSource(k.ctx, pf.port, postfixMessages, senders, sink.SourceLength(postfixSize)); err != nil {
				return fmt.Errorf("smtp-source into Postfix: %w", err)
			}
			if err := waitCount(k.ctx, sk, counted+postfixMessages); err != nil {
				return fmt.Errorf("Postfix relaying: %w", err)
			}
			theirs = append(theirs, postfixMessages/time.Since(start).Seconds())
		}
	}
	o, t := statOf(ours), statOf(theirs)
	var rs []float64
	for i := range min(len(ours), len(theirs)) {
		rs = append(rs, ours[i]/theirs[i])
	}
	r := statOf(rs)
	fmt.Printf("  Enqueue+boltstore+Run          %6.0f msgs/s (%.0f–%.0f)\n", o.med, o.lo, o.hi)
	fmt.Printf("  Postfix, queue on disk, relay %6.0f msgs/s (%.0f–%.0f), until the sink counted them\n", t.med, t.lo, t.hi)
	fmt.Printf("  ratio %.2f× (%.2f–%.2f)\n", r.med, r.lo, r.hi)
	goals.Record(goals.Line{Bench: "relay -postfix", What: "5 KB: durable path ÷ Postfix queueing on disk, msgs/s",
		Value: fmt.Sprintf("%.2f× (%.2f–%.2f)", r.med, r.lo, r.hi)})
	return nil
}

// waitCount waits, up to 5 minutes, until the sink has counted n messages.
func waitCount(ctx context.Context, sk *sink.Sink, n int) error {
	deadline := time.Now().Add(5 * time.Minute)
	for sk.Messages() < n {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the sink counted %d messages, waiting for %d", sk.Messages(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// postfixProc is a private Postfix instance, all of it under dir.
type postfixProc struct {
	bin, conf, dir string
	port           int
}

// startPostfix starts a Postfix whose smtpd listens on a free loopback
// port, accepts mail from loopback for any domain and relays all of it to
// 127.0.0.1:relayPort, queueing on disk in a temporary directory.
func startPostfix(relayPort int) (*postfixProc, error) {
	bin, err := exec.LookPath("postfix")
	if err != nil {
		bin = "/usr/sbin/postfix"
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("postfix not found (Debian package postfix): %w", err)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("a private Postfix needs root")
	}
	pfUser, err := user.Lookup("postfix")
	if err != nil {
		return nil, err
	}
	// A directory of its own, open to the postfix user (a temporary
	// directory is not), removed by stop.
	dir, err := os.MkdirTemp("", "mxrelay-bench-postfix-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	for _, d := range []string{"conf", "queue", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	uid, _ := strconv.Atoi(pfUser.Uid)
	gid, _ := strconv.Atoi(pfUser.Gid)
	if err := os.Chown(filepath.Join(dir, "data"), uid, gid); err != nil {
		return nil, err
	}
	port, err := sink.FreePort()
	if err != nil {
		return nil, err
	}
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
myhostname = relay.sender.example
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:%[2]d
smtp_tls_security_level = none
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
alias_maps =
alias_database =
biff = no
`, dir, relayPort)
	masterCF := fmt.Sprintf(`127.0.0.1:%d inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`, port)
	conf := filepath.Join(dir, "conf")
	if err := os.WriteFile(filepath.Join(conf, "main.cf"), []byte(mainCF), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(conf, "master.cf"), []byte(masterCF), 0o644); err != nil {
		return nil, err
	}
	p := &postfixProc{bin: bin, conf: conf, dir: dir, port: port}
	if out, err := exec.Command(bin, "-c", conf, "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "maillog"))
		p.stop()
		return nil, fmt.Errorf("postfix start: %w\n%s\n%s", err, out, log)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for i := 0; ; i++ { // bounded: 10 s
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		if i == 100 {
			p.stop()
			return nil, fmt.Errorf("postfix did not listen on %s: %w", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop stops Postfix, makes sure its master is gone, by its PID, and
// removes its directory.
func (p *postfixProc) stop() {
	defer os.RemoveAll(p.dir)
	_ = exec.Command(p.bin, "-c", p.conf, "stop").Run()
	b, err := os.ReadFile(filepath.Join(p.dir, "queue", "pid", "master.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	for i := 0; i < 50 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
