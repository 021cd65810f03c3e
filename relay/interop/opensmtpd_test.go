package interop

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestOpenSMTPD runs the matrix against OpenSMTPD 6.8 (Debian's
// opensmtpd, unpacked by .ci/peers, not installed). It takes at most 50
// recipients per transaction (max-rcpt), 32 MiB messages, offers 8BITMIME
// and ENHANCEDSTATUSCODES, but neither PIPELINING nor SMTPUTF8: the
// SMTPUTF8 message is bounced by mxrelay itself, every recipient with
// 5.6.7, and never reaches the peer.
//
// It runs without STARTTLS: OpenSMTPD 6.8 keeps its private key in a
// separate process and signs through an OpenSSL engine that OpenSSL 3
// (Debian 12's) no longer drives, so every handshake fails on the server
// side ("SSL routines::EVP lib", RSA and ECDSA keys alike; OpenSMTPD
// issues 1171 and 1239, fixed in 7.x).
func TestOpenSMTPD(t *testing.T) {
	runMatrix(t, startOpenSMTPD(t))
}

func startOpenSMTPD(t *testing.T) *peer {
	root := peerPath(t, "opensmtpd", "opensmtpd/usr/sbin/smtpd")
	root = filepath.Dir(filepath.Dir(filepath.Dir(root)))
	needRoot(t)
	nb := nobody(t)
	dir := peerDir(t, "opensmtpd")
	mkdirs(t, dir, 0, 0, "spool", "run", "peers")
	mkdirs(t, dir, nb.uid, nb.gid, "mail")
	port := freePort(t)

	// Every address at example.com maps to nobody (the catch-all "@" of a
	// virtual table), who stores it in one maildir; Delivered-To names
	// the recipient.
	conf := filepath.Join(dir, "smtpd.conf")
	writeFile(t, conf, fmt.Sprintf(`smtp max-message-size 32M
smtp limit max-rcpt 50
table catchall { "@" = "%[3]s" }
listen on 127.0.0.1 port %[2]d hostname mx.opensmtpd.test
action "store" maildir "%[1]s/mail" virtual <catchall>
match from any for domain "example.com" action "store"
`, dir, port, nb.user))

	// The Debian build has its paths compiled in: the users opensmtpd and
	// opensmtpq, the chroot directory /var/lib/opensmtpd/empty, the queue
	// in /var/spool/smtpd, the control socket in /var/run (/run) and the
	// delivery helpers in /usr/libexec/opensmtpd. The namespace provides
	// each from the unpacked package or from dir; the system's own
	// directories are not touched.
	binds := append(withUsers(t, dir, "opensmtpd", "opensmtpq"),
		bind{filepath.Join(root, "var", "lib"), "/var/lib"},
		bind{filepath.Join(dir, "spool"), "/var/spool"},
		bind{filepath.Join(dir, "run"), "/run"},
		bind{filepath.Join(root, "usr", "libexec"), "/usr/libexec"},
		bind{peersDir(), filepath.Join(dir, "peers")},
	)
	smtpd := filepath.Join(dir, "peers", "opensmtpd", "usr", "sbin", "smtpd")
	p := startSandboxed(t, "opensmtpd", dir, binds,
		[]string{"LD_LIBRARY_PATH=" + filepath.Join(dir, "peers", "opensmtpd", "lib")},
		smtpd, "-d", "-f", conf)
	waitListen(t, p, port)

	maildir := filepath.Join(dir, "mail")
	logs := func() string { return tail(p.log, 6000) }
	return &peer{
		name: "opensmtpd", mx: "mx.opensmtpd.test", port: port,
		smtputf8: false, enhanced: true, tls: false,
		logs: logs,
		stored: func(t *testing.T, n int) []stored {
			t.Helper()
			if !waitCount(n, 60*time.Second, func() int { return maildirCount(maildir) }) {
				t.Errorf("fewer than %d messages arrived in 60 s; log:\n%s", n, logs())
			}
			return readMaildir(t, maildir, "Delivered-To")
		},
	}
}
