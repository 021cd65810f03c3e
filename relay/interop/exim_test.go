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
	peerPath(t, "exim", "exim/usr/sbin/exim4")
	needRoot(t)
	nb := nobody(t)
	dir := peerDir(t, "exim")
	mkdirs(t, dir, nb.uid, nb.gid, "spool", "log", "mail")
	certFile, keyFile := writeSelfSigned(t, dir, "mx.exim.test", nb.uid, nb.gid)
	port := freePort(t)

	// Inside the namespace the peers directory is seen at dir/peers: the
	// daemon runs as nobody, who may not be able to reach the real one
	// (it is in root's home by default), and must re-execute Exim from
	// there for every delivery.
	peers := filepath.Join(dir, "peers")
	mkdirs(t, dir, 0, 0, "peers")
	exim := filepath.Join(peers, "exim", "usr", "sbin", "exim4")

	// Debian builds Exim to run as Debian-exim, looked up before the
	// configuration is read; the namespace's passwd file has that user.
	// Here it runs as nobody throughout (exim_user, and
	// deliver_drop_privilege so that deliveries need no setuid binary):
	// .ci/peers removes the setuid bit, because a setuid Exim would drop
	// the LD_LIBRARY_PATH that finds the unpacked libidn12. Every address
	// at example.com goes to one maildir; Envelope-to names the recipient.
	conf := filepath.Join(dir, "exim.conf")
	writeFile(t, conf, fmt.Sprintf(`exim_user = %[5]s
exim_group = %[6]s
exim_path = %[7]s
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
message_size_limit = 32M
recipients_max = 50
smtputf8_advertise_hosts = *
tls_advertise_hosts = *
tls_certificate = %[3]s
tls_privatekey = %[4]s
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
  user = %[5]s
  group = %[6]s
  envelope_to_add
  return_path_add
`, dir, port, certFile, keyFile, nb.user, nb.group, exim))

	binds := append(withUsers(t, dir, "Debian-exim"), bind{peersDir(), peers})
	p := startSandboxed(t, "exim", dir, binds,
		[]string{"LD_LIBRARY_PATH=" + filepath.Join(peers, "exim", "lib")},
		exim, "-C", conf, "-bdf", "-oX", strconv.Itoa(port))
	waitListen(t, p, port)

	mainlog := filepath.Join(dir, "log", "mainlog")
	logs := func() string { return tail(mainlog, 6000) + "\n" + tail(p.log, 2000) }
	maildir := filepath.Join(dir, "mail")
	return &peer{
		name: "exim", mx: "mx.exim.test", port: port,
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
