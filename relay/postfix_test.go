package relay_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	stdmime "mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/relay"
)

// postfix is a private Postfix instance: its own configuration, queue and
// maildir under one directory, listening on 127.0.0.1 and a free port,
// accepting mail for any domain into one maildir and relaying nothing.
type postfix struct {
	dir  string
	port int
}

func startPostfix(t *testing.T) *postfix {
	t.Helper()
	bin, err := exec.LookPath("postfix")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/postfix"); err2 != nil {
			t.Skip("postfix is not installed (Debian package postfix; .ci/run installs it)")
		}
		bin = "/usr/sbin/postfix"
	}
	if os.Geteuid() != 0 {
		t.Skip("starting a private Postfix needs root")
	}
	pfUser, err := user.Lookup("postfix")
	if err != nil {
		t.Skip("no postfix user: ", err)
	}
	dir, err := os.MkdirTemp("", "mxrelay-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Postfix's daemons run as the postfix user and must reach the queue.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"conf", "queue", "data", "mail"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ := strconv.Atoi(pfUser.Uid)
	gid, _ := strconv.Atoi(pfUser.Gid)
	if err := os.Chown(filepath.Join(dir, "data"), uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(dir, "mail"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writeSelfSigned(t, filepath.Join(dir, "conf"), "mx.postfix.test")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	mainCF := fmt.Sprintf(`compatibility_level = 3.6
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
virtual_mailbox_domains = static:all
virtual_mailbox_base = %[1]s/mail
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 1
smtpd_tls_security_level = may
smtpd_tls_cert_file = %[2]s
smtpd_tls_key_file = %[3]s
smtpd_tls_received_header = yes
smtpd_forbid_bare_newline = reject
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
alias_maps =
alias_database =
local_transport = error:no local delivery
default_transport = error:no relaying
relay_transport = error:no relaying
biff = no
`, dir, certFile, keyFile)
	masterCF := fmt.Sprintf(`127.0.0.1:%d inet n - n - - smtpd
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
`, port)
	conf := filepath.Join(dir, "conf")
	if err := os.WriteFile(filepath.Join(conf, "main.cf"), []byte(mainCF), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "master.cf"), []byte(masterCF), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &postfix{dir: dir, port: port}
	out, err := exec.Command(bin, "-c", conf, "start").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "maillog"))
		t.Fatalf("postfix start: %v\n%s\n%s", err, out, log)
	}
	t.Cleanup(func() {
		exec.Command(bin, "-c", conf, "stop").Run()
		// Make sure the master is gone, by its PID.
		if b, err := os.ReadFile(filepath.Join(dir, "queue", "pid", "master.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
				for i := 0; i < 50 && syscall.Kill(pid, 0) == nil; i++ {
					time.Sleep(100 * time.Millisecond)
				}
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	// Wait (bounded) until smtpd listens.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatalf("postfix did not listen on port %d", port)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

// waitMail returns the messages in the maildir once n have arrived.
func (p *postfix) waitMail(t *testing.T, n int) [][]byte {
	t.Helper()
	dir := filepath.Join(p.dir, "mail", "inbox", "new")
	for i := 0; i < 150; i++ {
		entries, _ := os.ReadDir(dir)
		if len(entries) >= n {
			var out [][]byte
			for _, e := range entries {
				b, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b)
			}
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	t.Fatalf("fewer than %d messages arrived; maillog:\n%s", n, log)
	return nil
}

func writeSelfSigned(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
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
	return certFile, keyFile
}

// TestPostfix delivers through mxrelay to a real Postfix and checks that
// the message arrived intact, over TLS, and that dkimpy verifies its
// signatures at the receiving end.
func TestPostfix(t *testing.T) {
	pf := startPostfix(t)
	dns := mxtest.NewServer(mxtest.Zone{
		"example.com":     {MX: []mx.MX{{Host: "mx.postfix.test", Pref: 10}}},
		"mx.postfix.test": {A: []string{"127.0.0.1"}},
	})
	defer dns.Close()

	signer, txt := twoKeySigner(t)
	c := &relay.Client{
		Hostname: "client.example.org", Resolver: dns.Resolver(), Port: pf.port,
		AllowPrivateAddrs: true, Signer: signer,
	}
	m := &mime.Message{
		From:        addr("Zoë <zoe@example.org>"),
		To:          []mail.Address{addr("a@example.com")},
		Cc:          []mail.Address{addr("B <b@example.com>")},
		Subject:     "Postfix interop — ✓",
		Text:        "Line one\n.\nA lone dot above; bare LF line endings here.\n",
		HTML:        "<p>Hello from <b>mxrelay</b></p>",
		Attachments: []mime.Attachment{{Filename: "data.bin", ContentType: "application/octet-stream", Data: bytes.Repeat([]byte{0, 1, 2, 0xff}, 5000)}},
	}
	cctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := c.Send(cctx, m)
	if err != nil {
		t.Fatalf("Send: %v %+v", err, res)
	}
	for _, r := range res.Recipients {
		if r.Status != relay.Delivered || r.TLS.Version == "" || r.MX != "mx.postfix.test" {
			t.Errorf("%+v", r)
		}
	}
	// A raw message with bare LFs and a smuggling attempt: Postfix runs
	// with smtpd_forbid_bare_newline=reject, so it must arrive normalized.
	raw := "From: zoe@example.org\nTo: a@example.com\nSubject: raw\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <raw@example.org>\n\nbare LF\n.\nMAIL FROM:<evil@example.org>\r\n.\r\nend\n"
	if res, err := c.SendRaw(cctx, "zoe@example.org", []string{"a@example.com"}, strings.NewReader(raw)); err != nil {
		t.Fatalf("SendRaw: %v %+v", err, res)
	}

	msgs := pf.waitMail(t, 3)
	var signed, rawGot [][]byte
	for _, b := range msgs {
		if bytes.Contains(b, []byte("Subject: raw")) {
			rawGot = append(rawGot, b)
		} else {
			signed = append(signed, b)
		}
	}
	if len(signed) != 2 || len(rawGot) != 1 {
		t.Fatalf("got %d signed and %d raw messages, want 2 and 1", len(signed), len(rawGot))
	}
	for _, b := range signed {
		if !bytes.Contains(b, []byte("with ESMTPS")) {
			t.Errorf("Received header does not show TLS:\n%s", b[:min(len(b), 600)])
		}
		if !bytes.Contains(b, []byte("Subject: =?utf-8?")) || !bytes.Contains(b, []byte("DKIM-Signature:")) {
			t.Errorf("message lost its headers")
		}
		checkIntact(t, b, m)
	}
	if !bytes.Contains(rawGot[0], []byte("\n..\nMAIL FROM:<evil@example.org>\n")) && !bytes.Contains(rawGot[0], []byte("\n.\nMAIL FROM:<evil@example.org>\n")) {
		t.Errorf("raw message body altered:\n%s", rawGot[0])
	}
	if bytes.Contains(rawGot[0], []byte("\r")) {
		t.Errorf("maildir copy holds CR bytes")
	}
	dkimpyVerify(t, signed, txt)
}

// dkimpyVerify runs Debian's dkimpy over each message, serving keys from
// txt, and fails unless every signature verifies.
func dkimpyVerify(t *testing.T, msgs [][]byte, txt map[string]string) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import dkim").Run(); err != nil {
		t.Skip("dkimpy is not installed (Debian package python3-dkim; .ci/run installs it)")
	}
	keys, _ := json.Marshal(txt)
	const script = `
import sys, json, dkim
keys = json.loads(sys.argv[1])
def dnsfunc(name, timeout=5):
    n = name.decode() if isinstance(name, bytes) else name
    v = keys.get(n) or keys.get(n + ".")
    return v.encode() if v else None
data = sys.stdin.buffer.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
d = dkim.DKIM(data)
ok = []
for i in range(data.count(b"DKIM-Signature:")):
    ok.append(bool(d.verify(idx=i, dnsfunc=dnsfunc)))
print(json.dumps(ok))
`
	for _, m := range msgs {
		cmd := exec.Command("/usr/bin/python3", "-c", script, string(keys))
		cmd.Stdin = bytes.NewReader(m)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("dkimpy: %v\n%s", err, out)
		}
		var ok []bool
		if err := json.Unmarshal(bytes.TrimSpace(out), &ok); err != nil {
			t.Fatalf("dkimpy output %q: %v", out, err)
		}
		if len(ok) != 2 || !ok[0] || !ok[1] {
			t.Errorf("dkimpy results %v, want both signatures valid\n%s", ok, m)
		}
	}
}

// checkIntact parses a received message with the standard library and
// compares its subject, text and attachment with what was sent.
func checkIntact(t *testing.T, raw []byte, m *mime.Message) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("received message does not parse: %v", err)
	}
	var dec stdmime.WordDecoder
	if subj, err := dec.DecodeHeader(msg.Header.Get("Subject")); err != nil || subj != m.Subject {
		t.Errorf("subject %q (%v), want %q", subj, err, m.Subject)
	}
	parts := map[string][]byte{}
	var walk func(ct string, body io.Reader, cte string)
	walk = func(ct string, body io.Reader, cte string) {
		mt, params, err := stdmime.ParseMediaType(ct)
		if err != nil {
			t.Fatalf("Content-Type %q: %v", ct, err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatalf("multipart: %v", err)
				}
				walk(p.Header.Get("Content-Type"), p, p.Header.Get("Content-Transfer-Encoding"))
			}
		}
		var r io.Reader = body
		switch strings.ToLower(cte) {
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, body)
		case "quoted-printable":
			r = quotedprintable.NewReader(body)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("%s body: %v", mt, err)
		}
		parts[mt] = b
	}
	walk(msg.Header.Get("Content-Type"), msg.Body, msg.Header.Get("Content-Transfer-Encoding"))
	if got := strings.ReplaceAll(string(parts["text/plain"]), "\r\n", "\n"); got != m.Text {
		t.Errorf("text %q, want %q", got, m.Text)
	}
	if got := parts["application/octet-stream"]; !bytes.Equal(got, m.Attachments[0].Data) {
		t.Errorf("attachment: %d bytes, want %d identical", len(got), len(m.Attachments[0].Data))
	}
}

// twoKeySigner signs for example.org with an Ed25519 and an RSA key
// (selectors "ed" and "rsa"), and returns their TXT records by name, as
// dkimpyVerify takes them.
func twoKeySigner(t *testing.T) (*dkim.Signer, map[string]string) {
	t.Helper()
	txt := map[string]string{}
	var cfgs []dkim.Config
	for _, k := range []struct {
		kind dkim.KeyType
		sel  string
	}{{dkim.Ed25519, "ed"}, {dkim.RSA, "rsa"}} {
		key, err := dkim.GenerateKey(k.kind)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := dkim.TXTRecord(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		txt[dkim.RecordName("example.org", k.sel)+"."] = rec
		cfgs = append(cfgs, dkim.Config{Domain: "example.org", Selector: k.sel, Key: key})
	}
	signer, err := dkim.NewSigner(cfgs...)
	if err != nil {
		t.Fatal(err)
	}
	return signer, txt
}
