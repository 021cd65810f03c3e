package interop

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPostfix runs the matrix against the system's Postfix (Debian
// package postfix, installed by .ci/run), started as a private instance:
// its own configuration, queue and maildir in a temporary directory,
// listening on 127.0.0.1 and a free port. It takes at most 50 recipients
// per transaction (452 4.5.3 for the rest), 32 MiB messages, offers
// SMTPUTF8, 8BITMIME, PIPELINING and STARTTLS (self-signed), and rejects
// bare LF line ends.
func TestPostfix(t *testing.T) {
	runMatrix(t, startPostfix(t))
}

func startPostfix(t *testing.T) *peer {
	pf := newPostfix(t)
	dir, conf := pf.dir, pf.conf
	certFile, keyFile := writeSelfSigned(t, conf, "mx.postfix.test", 0, 0)
	port, nb := pf.port, pf.nb

	// Every address at example.com goes to one maildir, mail/inbox/, as
	// nobody; nothing is relayed. Delivered-To names the recipient.
	pf.start(t, fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
myhostname = mx.postfix.test
mydomain = postfix.test
myorigin = mx.postfix.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains =
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_recipient_limit = 50
message_size_limit = 33554432
virtual_mailbox_limit = 0
smtputf8_enable = yes
virtual_mailbox_domains = example.com
virtual_mailbox_base = %[1]s/mail
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:%[4]d
virtual_gid_maps = static:%[5]d
virtual_minimum_uid = 1
smtpd_tls_security_level = may
smtpd_tls_cert_file = %[2]s
smtpd_tls_key_file = %[3]s
smtpd_forbid_bare_newline = reject
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
alias_maps =
alias_database =
local_transport = error:no local delivery
default_transport = error:no relaying
relay_transport = error:no relaying
biff = no
`, dir, certFile, keyFile, nb.uid, nb.gid), "")
	maillog := pf.maillog()

	inbox := filepath.Join(dir, "mail", "inbox")
	return &peer{
		name: "postfix", mx: "mx.postfix.test", port: port,
		smtputf8: true, enhanced: true, tls: true,
		logs: func() string { return tail(maillog, 6000) },
		stored: func(t *testing.T, n int) []stored {
			t.Helper()
			if !waitCount(n, 60*time.Second, func() int { return maildirCount(inbox) }) {
				t.Errorf("fewer than %d messages arrived in 60 s; maillog:\n%s", n, tail(maillog, 6000))
			}
			return readMaildir(t, inbox, "Delivered-To")
		},
	}
}

// postfixInstance is a private Postfix instance being set up: the
// postfix command, a directory with conf/, queue/, data/ (the postfix
// user's) and mail/ (nobody's), and the free port its smtpd will listen
// on.
type postfixInstance struct {
	bin, dir, conf string
	port           int
	nb             account
}

// newPostfix prepares a private Postfix instance, or skips the test when
// Postfix is not installed or the test does not run as root.
func newPostfix(t *testing.T) *postfixInstance {
	t.Helper()
	bin, err := exec.LookPath("postfix")
	if err != nil {
		bin = "/usr/sbin/postfix"
		if _, err := os.Stat(bin); err != nil {
			t.Skip("postfix is not installed (Debian package postfix; .ci/run installs it)")
		}
	}
	needRoot(t)
	pfUser, err := user.Lookup("postfix")
	if err != nil {
		t.Skip("no postfix user: ", err)
	}
	nb := nobody(t)
	dir := peerDir(t, "postfix")
	uid, _ := strconv.Atoi(pfUser.Uid)
	gid, _ := strconv.Atoi(pfUser.Gid)
	mkdirs(t, dir, 0, 0, "conf", "queue")
	mkdirs(t, dir, uid, gid, "data")
	mkdirs(t, dir, nb.uid, nb.gid, "mail")
	return &postfixInstance{bin: bin, dir: dir, conf: filepath.Join(dir, "conf"), port: freePort(t), nb: nb}
}

// postfixMaster is the master.cf of a private instance: smtpd on
// 127.0.0.1 and the port (%d), and the services a local delivery needs.
const postfixMaster = `127.0.0.1:%d inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

// maillog is the instance's log file (main.cf's maillog_file must name
// it).
func (pf *postfixInstance) maillog() string { return filepath.Join(pf.dir, "maillog") }

// start writes main.cf and master.cf (postfixMaster followed by extra
// services), starts the instance, stops it by its master's PID when the
// test ends, and waits until smtpd listens.
func (pf *postfixInstance) start(t *testing.T, mainCf, extraMaster string) {
	t.Helper()
	writeFile(t, filepath.Join(pf.conf, "main.cf"), mainCf)
	writeFile(t, filepath.Join(pf.conf, "master.cf"), fmt.Sprintf(postfixMaster, pf.port)+extraMaster)
	bin, conf, dir := pf.bin, pf.conf, pf.dir
	if out, err := exec.Command(bin, "-c", conf, "start").CombinedOutput(); err != nil {
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, tail(pf.maillog(), 4000))
	}
	t.Cleanup(func() {
		exec.Command(bin, "-c", conf, "stop").Run()
		// Make sure the master is gone, by its PID.
		b, err := os.ReadFile(filepath.Join(dir, "queue", "pid", "master.pid"))
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
		syscall.Kill(pid, syscall.SIGKILL)
	})
	waitListen(t, nil, pf.port)
}
