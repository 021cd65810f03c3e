package interop

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// peersDir is where .ci/peers put the unpacked and built peers:
// $MXRELAY_PEERS, or mxrelay-peers in the user's cache directory (the
// script's default too).
func peersDir() string {
	if d := os.Getenv("MXRELAY_PEERS"); d != "" {
		return d
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(cache, "mxrelay-peers")
}

// peerPath returns the path of rel inside the peers directory, or skips
// the test when it is not there.
func peerPath(t *testing.T, name, rel string) string {
	t.Helper()
	dir := peersDir()
	p := filepath.Join(dir, rel)
	if dir == "" {
		t.Skipf("%s not unpacked: run .ci/peers (no MXRELAY_PEERS and no cache directory)", name)
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not unpacked: run .ci/peers (looked for %s under MXRELAY_PEERS=%s)", name, rel, dir)
	}
	return p
}

// needRoot skips the test unless it runs as root, which starting a mail
// server with its own users and namespaces needs.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("starting a private mail server needs root")
	}
}

// nobody is the unprivileged account the peers store mail as.
type account struct {
	user, group string
	uid, gid    int
}

func nobody(t *testing.T) account {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no nobody user: ", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Skip("no group for nobody: ", err)
	}
	return account{user: u.Username, group: g.Name, uid: uid, gid: gid}
}

// peerDir makes a fresh directory for one peer's configuration and data,
// removed when the test ends (after the peer is stopped: cleanups run last
// registered first) unless MXRELAY_INTEROP_KEEP is set, for debugging. It is world-searchable because the peers' daemons
// drop to unprivileged users that must reach their spool inside it.
func peerDir(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mxrelay-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("MXRELAY_INTEROP_KEEP") != "" {
		t.Logf("%s: keeping %s (MXRELAY_INTEROP_KEEP is set)", name, dir)
	} else {
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// mkdirs creates directories under dir, owned by uid and gid.
func mkdirs(t *testing.T, dir string, uid, gid int, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeSelfSigned writes a self-signed ECDSA P-256 certificate for name
// and its key into dir. The key file is mode 0600, owned by uid and gid.
func writeSelfSigned(t *testing.T, dir, name string, uid, gid int) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(keyFile, uid, gid); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// bind is a bind mount made inside a peer's mount namespace: src (a path
// on this machine) is seen at dst by the peer's processes only.
type bind struct{ src, dst string }

// withUsers copies the system's passwd and group files into dir, adds the
// named users (each with a group of its name) that are missing, and
// returns the binds that show the copies to the peer as /etc/passwd and
// /etc/group. The system's own files are not touched.
func withUsers(t *testing.T, dir string, names ...string) []bind {
	t.Helper()
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	group, err := os.ReadFile("/etc/group")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	have := map[string]bool{}
	for _, b := range [][]byte{passwd, group} {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(line, ":")
			if len(f) >= 3 {
				used[f[2]] = true
				have[f[0]] = true
			}
		}
	}
	id := 60100
	for _, n := range names {
		if have[n] {
			continue
		}
		for used[strconv.Itoa(id)] {
			id++
		}
		used[strconv.Itoa(id)] = true
		passwd = fmt.Appendf(passwd, "%s:x:%d:%d::/nonexistent:/usr/sbin/nologin\n", n, id, id)
		group = fmt.Appendf(group, "%s:x:%d:\n", n, id)
	}
	pf, gf := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	writeFile(t, pf, string(passwd))
	writeFile(t, gf, string(group))
	return []bind{{pf, "/etc/passwd"}, {gf, "/etc/group"}}
}

// proc is a peer running in its own mount and PID namespaces.
type proc struct {
	name  string
	cmd   *exec.Cmd
	log   string        // file holding the peer's stdout and stderr
	done  chan struct{} // closed when the unshare process has exited
	child int           // PID of the namespace's first process, 0 if unknown
}

// startSandboxed runs argv in new mount and PID namespaces made by
// util-linux unshare, after making binds there (plus a resolv.conf that
// sends every DNS query to 127.0.0.1, where nothing answers on port 53:
// the peer's lookups fail at once and never leave the machine). env is
// added to a minimal environment. The peer is stopped when the test ends
// (see stop).
func startSandboxed(t *testing.T, name, dir string, binds []bind, env []string, argv ...string) *proc {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("util-linux unshare is needed to run ", name, ": ", err)
	}
	resolv := filepath.Join(dir, "resolv.conf")
	writeFile(t, resolv, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
	binds = append([]bind{{resolv, "/etc/resolv.conf"}}, binds...)

	// The shell makes the bind mounts, then becomes the peer: its
	// arguments are src dst pairs, "--", then the peer's command line.
	const script = `set -e
while [ "$1" != "--" ]; do mount --bind "$1" "$2"; shift 2; done
shift
exec "$@"`
	args := []string{"--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--mount-proc",
		"/bin/sh", "-c", script, "sh"}
	for _, b := range binds {
		args = append(args, b.src, b.dst)
	}
	args = append(args, "--")
	args = append(args, argv...)

	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(unshare, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}, env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	// Note the namespace's first process, to check in stop that it is gone.
	children := fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid)
	for i := 0; i < 50 && p.child == 0; i++ {
		if b, err := os.ReadFile(children); err == nil {
			p.child, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if p.child == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return p
}

// exited reports whether the peer has stopped.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the peer to exit by itself.
func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// stop kills the peer by PID and waits (bounded) until it is gone. The
// namespace's first process gets SIGKILL, which takes every other process
// of the namespace with it; unshare then exits by itself. unshare's
// --kill-child is only the fallback: the kernel forgets a process's
// parent-death signal when the process changes its user, as Exim's daemon
// does.
func (p *proc) stop(t *testing.T) {
	if !p.exited() {
		if p.child > 1 && running(p.child) {
			syscall.Kill(p.child, syscall.SIGKILL)
		} else {
			p.cmd.Process.Kill()
		}
		if !p.wait(10 * time.Second) {
			p.cmd.Process.Kill()
			if !p.wait(5 * time.Second) {
				t.Errorf("%s: unshare (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
				return
			}
		}
	}
	if p.child > 1 {
		for i := 0; i < 100 && running(p.child); i++ {
			time.Sleep(50 * time.Millisecond)
		}
		if running(p.child) {
			syscall.Kill(p.child, syscall.SIGKILL)
			t.Errorf("%s: namespace process %d outlived unshare; killed", p.name, p.child)
		}
	}
}

// running reports whether process pid exists and is not a zombie (a
// killed namespace process whose parent, unshare, is gone waits as a
// zombie until the system's init reaps it).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state != 'Z' && state != 'X'
}

// waitListen waits (bounded) until something accepts connections on port,
// failing the test with the peer's log if the peer exits first.
func waitListen(t *testing.T, p *proc, port int) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for i := 0; i < 150; i++ {
		if p != nil && p.exited() {
			t.Fatalf("%s exited before listening on %s:\n%s", p.name, addr, tail(p.log, 4000))
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	msg := ""
	if p != nil {
		msg = tail(p.log, 4000)
	}
	t.Fatalf("nothing listens on %s after 15 s:\n%s", addr, msg)
}

// tail returns up to the last n bytes of a file, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// stored is one message as a peer stored it: one copy per recipient.
type stored struct {
	file string // where it was read from, for failure messages
	rcpt string // envelope recipient, from the header the peer added
	raw  []byte
}

// readMaildir reads the messages in a maildir's new and cur directories.
// rcptField names the header field in which the peer records the envelope
// recipient (Delivered-To, Envelope-to).
func readMaildir(t *testing.T, dir, rcptField string) []stored {
	t.Helper()
	var out []stored
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			f := filepath.Join(dir, sub, e.Name())
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, stored{file: f, rcpt: headerField(b, rcptField), raw: b})
		}
	}
	return out
}

// maildirCount counts the messages in a maildir's new and cur directories.
func maildirCount(dir string) int {
	return countFiles(filepath.Join(dir, "new")) + countFiles(filepath.Join(dir, "cur"))
}

// countFiles counts the regular files in and under dir.
func countFiles(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// waitCount polls count (bounded, up to timeout) until it reaches n and
// reports whether it did.
func waitCount(n int, timeout time.Duration, count func() int) bool {
	deadline := time.Now().Add(timeout)
	for {
		if count() >= n {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// headerField returns the first value of the named field in the header
// of a stored message, "" if absent.
func headerField(msg []byte, name string) string {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(msg)))
	h, _ := r.ReadMIMEHeader()
	return h.Get(name)
}

// serveDNS53 answers DNS queries on 127.0.0.1:53, UDP and TCP, by asking
// upstream (the test's mxtest server) and passing its answers back, until
// the test ends. It is for mox, which takes its nameservers from
// resolv.conf and always asks them on port 53. It skips the test if the
// port is taken.
func serveDNS53(t *testing.T, upstream string) {
	t.Helper()
	udp, err := net.ListenPacket("udp", "127.0.0.1:53")
	if err != nil {
		t.Skip("127.0.0.1:53 is taken, and the peer's resolver asks only port 53: ", err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:53")
	if err != nil {
		udp.Close()
		t.Skip("127.0.0.1:53 is taken, and the peer's resolver asks only port 53: ", err)
	}
	forward := func(network string) dns.Handler {
		c := &dns.Client{Net: network, Timeout: 2 * time.Second}
		return dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
			a, _, err := c.Exchange(q, upstream)
			if err != nil {
				a = new(dns.Msg)
				a.SetRcode(q, dns.RcodeServerFailure)
			}
			w.WriteMsg(a)
		})
	}
	for _, srv := range []*dns.Server{
		{PacketConn: udp, Handler: forward("udp")},
		{Listener: tcp, Handler: forward("tcp")},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("DNS server on 127.0.0.1:53 did not start")
		}
		t.Cleanup(func() { srv.Shutdown() })
	}
}
