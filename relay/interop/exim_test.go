package interop

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestExim runs the matrix against Exim 4.96 (Debian's exim4-daemon-light,
// unpacked by .ci/peers, not installed). Exim takes at most 50 recipients
// per message (452 for the rest), 32 MiB messages, offers SMTPUTF8
// (smtputf8_advertise_hosts), 8BITMIME, PIPELINING, CHUNKING and STARTTLS
// (self-signed, GnuTLS), and sends no enhanced status codes.
func TestExim(t *testing.T) {
	runMatrix(t, startExim(t))
}

func startExim(t *testing.T) *peer {
	e := newExim(t)
	dir, nb := e.dir, e.nb
	certFile, keyFile := writeSelfSigned(t, dir, "mx.exim.test", nb.uid, nb.gid)

	// Every address at example.com goes to one maildir; Envelope-to
	// names the recipient.
	p := e.start(t, e.mainSettings()+fmt.Sprintf(`message_size_limit = 32M
recipients_max = 50
smtputf8_advertise_hosts = *
tls_advertise_hosts = *
tls_certificate = %[2]s
tls_privatekey = %[3]s
domainlist local_domains = example.com
acl_smtp_rcpt = check_rcpt

begin acl

check_rcpt:
  accept domains = +local_domains
  deny message = relay not permitted

begin routers

catchall:
  driver = accept
  domains = +local_domains
  transport = store

begin transports

store:
  driver = appendfile
  directory = %[1]s/mail
  maildir_format
  create_directory
  user = %[4]s
  group = %[5]s
  envelope_to_add
  return_path_add
`, dir, certFile, keyFile, nb.user, nb.group))

	logs := e.logs(p)
	maildir := filepath.Join(dir, "mail")
	return &peer{
		name: "exim", mx: "mx.exim.test", port: e.port,
		smtputf8: true, enhanced: false, tls: true,
		logs: logs,
		stored: func(t *testing.T, n int) []stored {
			t.Helper()
			if !waitCount(n, 60*time.Second, func() int { return maildirCount(maildir) }) {
				t.Errorf("fewer than %d messages arrived in 60 s; log:\n%s", n, logs())
			}
			return readMaildir(t, maildir, "Envelope-to")
		},
	}
}

// eximInstance is a private Exim being set up: a directory with spool/,
// log/ and mail/ (nobody's), the free port its daemon will listen on, and
// the path at which the daemon sees its binary.
type eximInstance struct {
	dir   string
	peers string // where the namespace shows the peers directory
	exim  string // the binary, under peers
	port  int
	nb    account
}

// newExim prepares a private Exim, or skips the test when Exim is not
// unpacked or the test does not run as root.
func newExim(t *testing.T) *eximInstance {
	t.Helper()
	peerPath(t, "exim", "exim/usr/sbin/exim4")
	needRoot(t)
	e := &eximInstance{nb: nobody(t), dir: peerDir(t, "exim")}
	mkdirs(t, e.dir, e.nb.uid, e.nb.gid, "spool", "log", "mail")
	e.port = freePort(t)

	// Inside the namespace the peers directory is seen at dir/peers: the
	// daemon runs as nobody, who may not be able to reach the real one
	// (it is in root's home by default), and must re-execute Exim from
	// there for every delivery.
	e.peers = filepath.Join(e.dir, "peers")
	mkdirs(t, e.dir, 0, 0, "peers")
	e.exim = filepath.Join(e.peers, "exim", "usr", "sbin", "exim4")
	return e
}

// mainSettings are the first lines of the configuration, which every
// private Exim needs.
//
// Debian builds Exim to run as Debian-exim, looked up before the
// configuration is read; the namespace's passwd file has that user.
// Here it runs as nobody throughout (exim_user, and
// deliver_drop_privilege so that deliveries need no setuid binary):
// .ci/peers removes the setuid bit, because a setuid Exim would drop
// the LD_LIBRARY_PATH that finds the unpacked libidn12.
func (e *eximInstance) mainSettings() string {
	return fmt.Sprintf(`exim_user = %[3]s
exim_group = %[4]s
exim_path = %[5]s
primary_hostname = mx.exim.test
spool_directory = %[1]s/spool
log_file_path = %[1]s/log/%%slog
pid_file_path = %[1]s/exim.pid
local_interfaces = <; 127.0.0.1
daemon_smtp_ports = %[2]d
keep_environment = LD_LIBRARY_PATH
deliver_drop_privilege = true
host_lookup =
rfc1413_hosts =
`, e.dir, e.port, e.nb.user, e.nb.group, e.exim)
}

// start writes conf as the configuration, runs the daemon in its
// namespace (stopped by PID when the test ends) and waits until it
// listens.
func (e *eximInstance) start(t *testing.T, conf string) *proc {
	t.Helper()
	confFile := filepath.Join(e.dir, "exim.conf")
	writeFile(t, confFile, conf)
	binds := append(withUsers(t, e.dir, "Debian-exim"), bind{peersDir(), e.peers})
	p := startSandboxed(t, "exim", e.dir, binds,
		[]string{"LD_LIBRARY_PATH=" + filepath.Join(e.peers, "exim", "lib")},
		e.exim, "-C", confFile, "-bdf", "-oX", strconv.Itoa(e.port))
	waitListen(t, p, e.port)
	return p
}

// logs returns a function that gives the end of Exim's main log and of
// the daemon's output.
func (e *eximInstance) logs(p *proc) func() string {
	mainlog := filepath.Join(e.dir, "log", "mainlog")
	return func() string { return tail(mainlog, 6000) + "\n" + tail(p.log, 2000) }
}
