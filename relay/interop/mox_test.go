package interop

import (
	"context"
	"fmt"
	"net/mail"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/relay"
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

// TestMoxWithoutSPF sends one message to 60 recipients from a sender
// whose SPF does not pass. mox then takes one recipient per transaction
// (452 4.5.3 "only one recipient allowed without spf pass" for the others:
// it does not want to send DSNs to unverified domains, below RFC 5321's
// minimum of 100 on purpose). mxrelay sends transaction after transaction
// on the session, up to its bound of transactions per attempt, and defers
// the recipients it did not get to. The test checks that every result is
// true to what mox stored: each Delivered recipient stored exactly once,
// no other stored, none Bounced.
func TestMoxWithoutSPF(t *testing.T) {
	p := startMox(t)
	zone := matrixZone(p)
	zone["example.org"] = mxtest.Domain{A: []string{"127.0.0.1"}} // no SPF record
	c := newClient(t, p, zone)

	const n = 60
	m := &mime.Message{
		From: mail.Address{Address: "zoe@example.org"}, Subject: "without SPF",
		Header: map[string][]string{caseField: {"nospf"}}, Text: "One recipient per transaction.\n",
	}
	for i := 1; i <= n; i++ {
		m.Bcc = append(m.Bcc, mail.Address{Address: fmt.Sprintf("n%03d@example.com", i)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := c.Send(ctx, m)
	if res == nil || len(res.Recipients) != n {
		t.Fatalf("Send: %v %+v", err, res)
	}
	c.CloseIdleConnections()
	var delivered []string
	deferred := 0
	for _, r := range res.Recipients {
		switch {
		case r.Status == relay.Delivered && r.Code == 250 && r.MX == p.mx:
			delivered = append(delivered, r.Recipient)
		case r.Status == relay.Deferred && r.Message != "":
			deferred++
		default:
			t.Errorf("%+v", r)
		}
	}
	t.Logf("mox without SPF: %d delivered, %d deferred; first deferral: %v", len(delivered), deferred, res.Err())
	if len(delivered) == 0 {
		t.Fatalf("nothing delivered\n%s", p.logs())
	}
	var got []string
	for _, s := range p.stored(t, len(delivered)) {
		got = append(got, s.rcpt)
	}
	slices.Sort(got)
	slices.Sort(delivered)
	if !slices.Equal(got, delivered) {
		t.Errorf("stored for %d recipients %q, results say %d delivered %q", len(got), short(got), len(delivered), short(delivered))
	}
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
