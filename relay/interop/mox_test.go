package interop

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestMox runs the matrix against mox v0.0.15 (built from its Go module by
// .ci/peers). mox offers SMTPUTF8, 8BITMIME, PIPELINING, CHUNKING,
// ENHANCEDSTATUSCODES, LIMITS RCPTMAX=1000 and STARTTLS (self-signed),
// and takes 32 MiB messages here; its recipient limit cannot be lowered, so
// the 120 recipients are split only by mxrelay's own limit of 100 per
// transaction.
func TestMox(t *testing.T) {
	runMatrix(t, startMox(t))
}

func startMox(t *testing.T) *peer {
	bin := peerPath(t, "mox", "mox/mox")
	needRoot(t)
	nb := nobody(t)
	dir := peerDir(t, "mox")
	mkdirs(t, dir, 0, 0, "config", "peers", "export")
	mkdirs(t, dir, nb.uid, nb.gid, "data")
	config := filepath.Join(dir, "config")
	// mox reads its key as nobody, after it has dropped root.
	certFile, keyFile := writeSelfSigned(t, config, "mx.mox.test", nb.uid, nb.gid)
	port := freePort(t)

	// mox binds its port as root, then runs itself again as User. It
	// refuses (451 4.4.0) a sender whose domain has neither MX nor
	// address, so it needs DNS: the matrix answers on 127.0.0.1:53 from
	// the test's zone (dns53). It also checks the sender's SPF, DKIM and
	// DMARC and the client's reverse DNS, all absent here, which mox
	// takes as "no reputation"; without a junk filter or DNSBLs it
	// accepts such mail. The account gets every address at example.com
	// (the catch-all "@example.com") and no delay for first-time
	// senders.
	writeFile(t, filepath.Join(config, "mox.conf"), fmt.Sprintf(`DataDir: %[1]s/data
LogLevel: info
User: %[5]s
NoFixPermissions: true
Hostname: mx.mox.test
Postmaster:
	Account: inbox
	Mailbox: Inbox
Listeners:
	local:
		IPs:
			- 127.0.0.1
		Hostname: mx.mox.test
		TLS:
			KeyCerts:
				-
					CertFile: %[3]s
					KeyFile: %[4]s
		SMTPMaxMessageSize: 33554432
		SMTP:
			Enabled: true
			Port: %[2]d
`, dir, port, certFile, keyFile, nb.user))
	writeFile(t, filepath.Join(config, "domains.conf"), `Domains:
	example.com: nil
Accounts:
	inbox:
		Domain: example.com
		Destinations:
			@example.com: nil
		RejectsMailbox: Rejects
		KeepRejects: true
		NoFirstTimeSenderDelay: true
`)
	conf := filepath.Join(config, "mox.conf")

	// The unprivileged mox runs the binary again, as nobody, who may not
	// be able to reach the peers directory (in root's home by default):
	// inside the namespace it is seen at dir/peers.
	peers := filepath.Join(dir, "peers")
	p := startSandboxed(t, "mox", dir, []bind{{peersDir(), peers}}, nil,
		filepath.Join(peers, "mox", "mox"), "-config", conf, "serve")
	waitListen(t, p, port)

	logs := func() string { return tail(p.log, 6000) }
	account := filepath.Join(dir, "data", "accounts", "inbox")
	return &peer{
		name: "mox", mx: "mx.mox.test", port: port,
		smtputf8: true, enhanced: true, tls: true, dns53: true,
		logs: logs,
		// mox stores each message in a file of its own, but keeps the
		// header fields it adds (Delivered-To among them) in the
		// account's database. So: wait for the files, stop mox (through
		// its control socket, then by PID), and export the Inbox with
		// "mox export maildir", which writes each message with those
		// fields, as an IMAP client would see it.
		stored: func(t *testing.T, n int) []stored {
			t.Helper()
			msgs := filepath.Join(account, "msg")
			if !waitCount(n, 60*time.Second, func() int { return countFiles(msgs) }) {
				t.Errorf("fewer than %d messages arrived in 60 s; log:\n%s", n, logs())
			}
			if out, err := exec.Command(bin, "-config", conf, "stop").CombinedOutput(); err != nil {
				t.Logf("mox stop: %v\n%s", err, out)
			}
			if !p.wait(15 * time.Second) {
				t.Logf("mox did not stop in 15 s; killing it")
			}
			p.stop(t)
			export := filepath.Join(dir, "export")
			if out, err := exec.Command(bin, "export", "maildir", export, account, "Inbox").CombinedOutput(); err != nil {
				t.Fatalf("mox export maildir: %v\n%s", err, out)
			}
			return readMaildir(t, filepath.Join(export, "Inbox"), "Delivered-To")
		},
	}
}
