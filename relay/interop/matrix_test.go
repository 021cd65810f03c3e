package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand/v2"
	stdmime "mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/relay"
)

// peer is a running receiving MTA, as the matrix sees it.
type peer struct {
	name string
	mx   string // host name the test DNS gives as example.com's MX
	port int

	smtputf8 bool // offers SMTPUTF8
	enhanced bool // answers with RFC 3463 enhanced status codes
	tls      bool // offers STARTTLS

	// dns53: the peer resolves names too, and only through port 53
	// (see serveDNS53).
	dns53 bool

	// stored returns every message the peer has stored, after waiting
	// (bounded) until there are at least n; with fewer it reports an
	// error with the peer's log and returns what there is. It is called
	// once, after every message was sent, and may stop the peer.
	stored func(t *testing.T, n int) []stored
	// logs returns the end of the peer's log, for failure messages.
	logs func() string
}

// mcase is one message of the matrix.
type mcase struct {
	name  string
	rcpts []string // envelope recipients, in the order of the Result
	utf8  bool     // the message needs SMTPUTF8

	// Either msg, sent with Client.Send, or raw, sent with
	// Client.SendRaw from rawFrom to rcpts.
	msg     *mime.Message
	raw     string
	rawFrom string
}

// caseField is the header field that tells the stored copies of the
// matrix's messages apart.
const caseField = "X-Interop-Case"

var (
	matrixOnce sync.Once
	matrixList []mcase
)

// matrix returns the messages every peer receives. They are built once:
// the large one holds an 11 MiB attachment.
func matrix() []mcase {
	matrixOnce.Do(func() { matrixList = buildMatrix() })
	return matrixList
}

func buildMatrix() []mcase {
	date := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	from := mail.Address{Name: "Zoë Sender", Address: "zoe@example.org"}
	hdr := func(name string) map[string][]string { return map[string][]string{caseField: {name}} }
	rng := rand.New(rand.NewChaCha8([32]byte{'m', 'x', 'r', 'e', 'l', 'a', 'y'}))
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}

	var cases []mcase
	add := func(c mcase) {
		if c.msg != nil {
			c.rcpts = c.msg.Recipients()
			c.utf8 = c.msg.NeedsSMTPUTF8()
		}
		cases = append(cases, c)
	}

	// 1. Plain text, with lines that need dot-stuffing and one of 78
	// octets (the longest that stays 7bit).
	add(mcase{name: "plain", msg: &mime.Message{
		From:    from,
		To:      []mail.Address{{Address: "a@example.com"}},
		Cc:      []mail.Address{{Name: "Bee", Address: "b@example.com"}},
		Subject: "plain text message", Date: date, MessageID: "plain.interop@example.org",
		Header: hdr("plain"),
		Text:   "Hello,\n\nthis is plain text.\n.\n.leading dot\n" + strings.Repeat("x", 78) + "\nbye\n",
	}})

	// 2. HTML with an inline image beside it, a text alternative and a
	// PDF attachment with a non-ASCII file name (RFC 2231).
	add(mcase{name: "multipart", msg: &mime.Message{
		From:    from,
		To:      []mail.Address{{Address: "m@example.com"}},
		Subject: "HTML, inline image and attachment", Date: date, MessageID: "multipart.interop@example.org",
		Header: hdr("multipart"),
		Text:   "The logo is in the HTML part.\n",
		HTML:   `<p>Logo: <img src="cid:logo@example.org" alt="logo"></p>` + "\n<p>Grüße</p>\n",
		Attachments: []mime.Attachment{
			{Filename: "logo.png", ContentType: "image/png", Data: pngImage(), ContentID: "logo@example.org"},
			{Filename: "résumé.pdf", ContentType: "application/pdf", Data: append([]byte("%PDF-1.4\n"), randBytes(40000)...)},
		},
	}})

	// 3. An 8-bit body. Package mime writes non-ASCII text as
	// quoted-printable, so this one goes through SendRaw with
	// Content-Transfer-Encoding: 8bit, and mxrelay sends it with
	// BODY=8BITMIME.
	add(mcase{name: "8bit", rawFrom: "zoe@example.org", rcpts: []string{"eight@example.com"},
		raw: "From: Zoe <zoe@example.org>\r\nTo: eight@example.com\r\nSubject: 8-bit body\r\n" +
			"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <8bit.interop@example.org>\r\n" +
			caseField + ": 8bit\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" +
			"Content-Transfer-Encoding: 8bit\r\n\r\n" +
			"Grüße aus Zürich — ñandú, 日本語, 🐦.\r\n.ünïcode after a dot\r\nÀ la ligne.\r\n"})

	// 4. UTF-8 local parts: the message needs SMTPUTF8 (RFC 6531), and so
	// does every one of its recipients, the ASCII Cc included, because
	// the header carries UTF-8 addresses (RFC 6532).
	add(mcase{name: "smtputf8", msg: &mime.Message{
		From:    from,
		To:      []mail.Address{{Name: "Ñandú", Address: "ñandú@example.com"}, {Address: "josé@example.com"}},
		Cc:      []mail.Address{{Address: "ascii@example.com"}},
		Subject: "SMTPUTF8 ✓", Date: date, MessageID: "smtputf8.interop@example.org",
		Header: hdr("smtputf8"),
		Text:   "Hola ñandú, hola José.\n",
	}})

	// 5. 120 recipients (Bcc, so the header stays small): more than the
	// peers are configured to take in one transaction, and more than
	// the 100 that mxrelay sends in one transaction to a server without
	// LIMITS RCPTMAX.
	many := &mime.Message{
		From: from, Subject: "120 recipients", Date: date, MessageID: "many.interop@example.org",
		Header: hdr("many"), Text: "One message, 120 recipients.\n",
	}
	for i := 1; i <= 120; i++ {
		many.Bcc = append(many.Bcc, mail.Address{Address: fmt.Sprintf("r%03d@example.com", i)})
	}
	add(mcase{name: "many", msg: many})

	// 6. More than 15 MiB: an 11 MiB attachment, base64 in 76-column
	// lines.
	add(mcase{name: "large", msg: &mime.Message{
		From:    from,
		To:      []mail.Address{{Address: "big@example.com"}},
		Subject: "large message", Date: date, MessageID: "large.interop@example.org",
		Header:      hdr("large"),
		Text:        "An 11 MiB attachment follows.\n",
		Attachments: []mime.Attachment{{Filename: "big.bin", ContentType: "application/octet-stream", Data: randBytes(11 << 20)}},
	}})

	// 7. A raw RFC 5322 message: bare LF line ends (mxrelay sends CRLF),
	// a folded header field, lines that need dot-stuffing and an SMTP
	// smuggling attempt, which must arrive as plain body text.
	add(mcase{name: "raw", rawFrom: "bounces@example.org", rcpts: []string{"raw1@example.com", "raw2@example.com"},
		raw: "From: Raw Sender <raw@example.org>\nTo: raw1@example.com, raw2@example.com\n" +
			"Subject: raw RFC 5322 message\nDate: Fri, 27 Nov 2026 10:00:00 +0000\n" +
			"Message-ID: <raw.interop@example.org>\n" + caseField + ": raw\n" +
			"References: <one@example.org>\n <two@example.org>\n\t<three@example.org>\n\n" +
			"first line\n.\n..two dots\n.\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n" +
			"\r\n.\r\nlast line\n"})
	return cases
}

// pngImage is a small valid PNG, for the inline part.
func pngImage() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for x := 0; x < 16; x++ {
		for y := 0; y < 16; y++ {
			img.Set(x, y, color.RGBA{uint8(x * 16), uint8(y * 16), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// matrixZone is the DNS the client, and peers that look names up (mox),
// see. example.org, the senders' domain, has an address (an implicit MX)
// because mox takes mail only from domains that can receive mail
// themselves (nothing is ever sent there), and an SPF record that
// passes 127.0.0.1 because without an SPF pass mox takes one recipient
// per transaction (see TestMoxWithoutSPF).
func matrixZone(p *peer) mxtest.Zone {
	return mxtest.Zone{
		"example.com": {MX: []mx.MX{{Host: p.mx, Pref: 10}}},
		p.mx:          {A: []string{"127.0.0.1"}},
		"example.org": {A: []string{"127.0.0.1"}, TXT: []string{"v=spf1 ip4:127.0.0.1 -all"}},
	}
}

// newClient starts a DNS server for zone and returns a relay.Client that
// resolves through it and sends to p's port. With p.dns53 the zone is also
// served on port 53, for the peer.
func newClient(t *testing.T, p *peer, zone mxtest.Zone) *relay.Client {
	t.Helper()
	dns := mxtest.NewServer(zone)
	t.Cleanup(dns.Close)
	if p.dns53 {
		serveDNS53(t, dns.Addr())
	}
	c := &relay.Client{
		Hostname: "client.example.org", Resolver: dns.Resolver(), Port: p.port,
		AllowPrivateAddrs: true,
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// runMatrix sends every message of the matrix to p through one
// relay.Client, checks each recipient's Result, then checks what p stored.
func runMatrix(t *testing.T, p *peer) {
	start := time.Now()
	c := newClient(t, p, matrixZone(p))

	cases := matrix()
	want := map[string][]string{} // case → recipients that must have a stored copy
	total := 0
	for _, mc := range cases {
		delivered := !mc.utf8 || p.smtputf8
		if delivered {
			want[mc.name] = mc.rcpts
			total += len(mc.rcpts)
		}
		t.Run("send/"+mc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var res *relay.Result
			var err error
			if mc.msg != nil {
				res, err = c.Send(ctx, mc.msg)
			} else {
				res, err = c.SendRaw(ctx, mc.rawFrom, mc.rcpts, strings.NewReader(mc.raw))
			}
			if res == nil {
				t.Fatalf("no result: %v", err)
			}
			if delivered && err != nil {
				t.Errorf("error %v", err)
			}
			checkResults(t, p, mc, res, delivered)
		})
	}
	t.Logf("%s: matrix sent in %v", p.name, time.Since(start).Round(time.Millisecond))
	// Let the peer see its sessions end (QUIT) before it is stopped.
	c.CloseIdleConnections()

	// Group what the peer stored by case.
	got := map[string][]stored{}
	for _, s := range p.stored(t, total) {
		name := headerField(s.raw, caseField)
		got[name] = append(got[name], s)
	}
	for name, ss := range got {
		if _, ok := want[name]; !ok {
			for _, s := range ss {
				t.Errorf("unexpected stored message %s (%s %q)", s.file, caseField, name)
			}
		}
	}
	for _, mc := range cases {
		t.Run("stored/"+mc.name, func(t *testing.T) {
			ss := got[mc.name]
			var rcpts []string
			for _, s := range ss {
				rcpts = append(rcpts, s.rcpt)
			}
			wantRcpts := slices.Clone(want[mc.name])
			slices.Sort(rcpts)
			slices.Sort(wantRcpts)
			if !slices.Equal(rcpts, wantRcpts) {
				t.Fatalf("stored copies for %d recipients %q, want %d %q\n%s", len(rcpts), short(rcpts), len(wantRcpts), short(wantRcpts), p.logs())
			}
			for _, s := range ss {
				if mc.msg != nil {
					checkMessage(t, s, mc.msg)
				} else {
					checkRaw(t, s, mc.raw)
				}
			}
		})
	}
	t.Logf("%s: matrix done in %v", p.name, time.Since(start).Round(time.Millisecond))
}

// short abbreviates a long recipient list in failure messages.
func short(s []string) []string {
	if len(s) > 8 {
		return append(slices.Clone(s[:8]), fmt.Sprintf("... (%d more)", len(s)-8))
	}
	return s
}

var enhancedSuccess = regexp.MustCompile(`^2\.\d{1,3}\.\d{1,3}$`)

// checkResults checks the Result of one message: every recipient
// delivered by p, or, for a message that needs SMTPUTF8 at a peer that
// does not offer it, every recipient bounced by mxrelay with 5.6.7.
func checkResults(t *testing.T, p *peer, mc mcase, res *relay.Result, delivered bool) {
	t.Helper()
	if len(res.Recipients) != len(mc.rcpts) {
		t.Fatalf("%d results for %d recipients: %+v", len(res.Recipients), len(mc.rcpts), res.Recipients)
	}
	bad := 0
	for i, r := range res.Recipients {
		var problems []string
		if r.Recipient != mc.rcpts[i] {
			problems = append(problems, fmt.Sprintf("recipient %q, want %q", r.Recipient, mc.rcpts[i]))
		}
		if r.MX != p.mx {
			problems = append(problems, fmt.Sprintf("MX %q, want %q", r.MX, p.mx))
		}
		if p.tls && r.TLS.Version == "" {
			problems = append(problems, "not over TLS, but the peer offers STARTTLS")
		}
		if delivered {
			if r.Status != relay.Delivered {
				problems = append(problems, fmt.Sprintf("status %v, want Delivered", r.Status))
			}
			if r.Code != 250 {
				problems = append(problems, fmt.Sprintf("code %d, want 250", r.Code))
			}
			if p.enhanced && !enhancedSuccess.MatchString(r.Enhanced) {
				problems = append(problems, fmt.Sprintf("enhanced code %q, want 2.x.x", r.Enhanced))
			}
			if !p.enhanced && r.Enhanced != "" {
				problems = append(problems, fmt.Sprintf("enhanced code %q from a peer that sends none", r.Enhanced))
			}
		} else {
			// mxrelay never downgrades a message that needs SMTPUTF8:
			// it refuses it locally, after EHLO showed no SMTPUTF8,
			// without a reply from the peer.
			if r.Status != relay.Bounced {
				problems = append(problems, fmt.Sprintf("status %v, want Bounced", r.Status))
			}
			if r.Enhanced != "5.6.7" {
				problems = append(problems, fmt.Sprintf("enhanced code %q, want 5.6.7", r.Enhanced))
			}
			if r.Code != 0 && r.Code < 500 {
				problems = append(problems, fmt.Sprintf("code %d for a permanent failure", r.Code))
			}
		}
		if len(problems) > 0 {
			bad++
			if bad <= 5 {
				t.Errorf("%s: %s\n%+v", r.Recipient, strings.Join(problems, "; "), r)
			}
		}
	}
	if bad > 5 {
		t.Errorf("... %d recipients wrong in all", bad)
	}
	if bad > 0 {
		t.Logf("%s log:\n%s", p.name, p.logs())
	}
}

// normLF turns CRLF line ends into LF: the maildir peers store LF.
func normLF(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// checkRaw checks a message sent with SendRaw: after the trace fields the
// peer put in front, the stored copy must be the sent bytes exactly (line
// ends aside: mxrelay sends CRLF, most peers store LF).
func checkRaw(t *testing.T, s stored, raw string) {
	t.Helper()
	got, want := normLF(s.raw), normLF([]byte(raw))
	if !bytes.HasSuffix(got, want) {
		t.Errorf("%s: the stored copy does not end with the message as sent\ngot:\n%s\nwant (after the peer's trace fields):\n%s",
			s.file, got, want)
		return
	}
	prefix := got[:len(got)-len(want)]
	if len(prefix) > 0 && (prefix[len(prefix)-1] != '\n' || bytes.Contains(prefix, []byte("\n\n"))) {
		t.Errorf("%s: the peer put more than header fields before the message:\n%s", s.file, prefix)
	}
	if _, err := mail.ReadMessage(bytes.NewReader(got)); err != nil {
		t.Errorf("%s: stored copy does not parse: %v", s.file, err)
	}
}

// checkMessage checks a message sent with Send. Its exact bytes are not
// known here (Send draws the MIME boundaries), so the stored copy is
// compared with a rendering of the same mime.Message (Date and
// Message-ID are fixed): every header field of the rendering must be in
// the stored copy with the same value, the MIME tree must have the same
// shape, and every leaf must decode to the same bytes, which must be those
// of the Message's Text, HTML and attachments.
func checkMessage(t *testing.T, s stored, m *mime.Message) {
	t.Helper()
	ref, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	refMsg, err := mail.ReadMessage(bytes.NewReader(ref))
	if err != nil {
		t.Fatal(err)
	}
	gotMsg, err := mail.ReadMessage(bytes.NewReader(s.raw))
	if err != nil {
		t.Errorf("%s: stored copy does not parse: %v", s.file, err)
		return
	}
	for name, want := range refMsg.Header {
		got := gotMsg.Header[name]
		if name == "Content-Type" {
			want, got = slices.Clone(want), slices.Clone(got)
			for i := range want {
				want[i] = withoutBoundary(want[i])
			}
			for i := range got {
				got[i] = withoutBoundary(got[i])
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: header %s is %q, want %q", s.file, name, got, want)
		}
	}

	gotLeaves, err := leaves(gotMsg)
	if err != nil {
		t.Errorf("%s: %v", s.file, err)
		return
	}
	refLeaves, err := leaves(refMsg)
	if err != nil {
		t.Fatal(err)
	}
	if len(gotLeaves) != len(refLeaves) {
		t.Errorf("%s: %d MIME leaves, want %d: %v", s.file, len(gotLeaves), len(refLeaves), gotLeaves)
		return
	}
	for i, g := range gotLeaves {
		w := refLeaves[i]
		if g.path != w.path || g.ctype != w.ctype || g.disp != w.disp || g.cid != w.cid {
			t.Errorf("%s: part %d is %v, want %v", s.file, i, g, w)
		}
		if !bytes.Equal(g.data, w.data) {
			t.Errorf("%s: part %d (%s): %d bytes (sha256 %x), want %d (sha256 %x)", s.file, i, g.path,
				len(g.data), sha256.Sum256(g.data), len(w.data), sha256.Sum256(w.data))
		}
	}

	// The rendering must hold what the Message holds, or the comparison
	// above proves little.
	find := func(match func(l leaf) bool) *leaf {
		for i := range gotLeaves {
			if match(gotLeaves[i]) {
				return &gotLeaves[i]
			}
		}
		return nil
	}
	for _, body := range []struct{ ctype, text string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		if body.text == "" {
			continue
		}
		l := find(func(l leaf) bool { return strings.HasPrefix(l.ctype, body.ctype+";") })
		if l == nil {
			t.Errorf("%s: no %s part", s.file, body.ctype)
		} else if string(l.data) != body.text {
			t.Errorf("%s: %s is %q, want %q", s.file, body.ctype, l.data, body.text)
		}
	}
	for _, a := range m.Attachments {
		l := find(func(l leaf) bool { return l.filename == a.Filename })
		switch {
		case l == nil:
			t.Errorf("%s: no part named %q", s.file, a.Filename)
		case !bytes.Equal(l.data, a.Data):
			t.Errorf("%s: %s: %d bytes, want %d identical", s.file, a.Filename, len(l.data), len(a.Data))
		case a.ContentID != "" && l.cid != "<"+a.ContentID+">":
			t.Errorf("%s: %s has Content-ID %q, want <%s>", s.file, a.Filename, l.cid, a.ContentID)
		}
	}
}

// withoutBoundary is a Content-Type value without its boundary parameter.
func withoutBoundary(v string) string {
	mt, params, err := stdmime.ParseMediaType(v)
	if err != nil {
		return v
	}
	delete(params, "boundary")
	return stdmime.FormatMediaType(mt, params)
}

// leaf is a MIME part that is not multipart, decoded.
type leaf struct {
	path     string // media types from the top, "multipart/mixed/text/plain"
	ctype    string // Content-Type without boundary
	disp     string // Content-Disposition
	cid      string // Content-ID
	filename string // from Content-Disposition, RFC 2231 decoded
	data     []byte // decoded content; text with LF line ends
}

func (l leaf) String() string {
	return fmt.Sprintf("{%s %q %q %q %d bytes}", l.path, l.ctype, l.disp, l.cid, len(l.data))
}

// leaves walks a message's MIME tree with the standard library.
func leaves(m *mail.Message) ([]leaf, error) {
	var out []leaf
	type header interface{ Get(string) string }
	var walk func(h header, body io.Reader, path string) error
	walk = func(h header, body io.Reader, path string) error {
		ct := h.Get("Content-Type")
		if ct == "" {
			ct = "text/plain; charset=us-ascii"
		}
		mt, params, err := stdmime.ParseMediaType(ct)
		if err != nil {
			return fmt.Errorf("Content-Type %q: %v", ct, err)
		}
		path += "/" + mt
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return fmt.Errorf("%s: %v", path, err)
				}
				if err := walk(p.Header, p, path); err != nil {
					return err
				}
			}
		}
		var r io.Reader = body
		switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, body)
		case "quoted-printable":
			r = quotedprintable.NewReader(body)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("%s: %v", path, err)
		}
		if strings.HasPrefix(mt, "text/") {
			data = normLF(data)
		}
		l := leaf{path: path, ctype: withoutBoundary(ct), disp: h.Get("Content-Disposition"), cid: h.Get("Content-ID"), data: data}
		if _, dp, err := stdmime.ParseMediaType(l.disp); err == nil {
			l.filename = dp["filename"]
		}
		out = append(out, l)
		return nil
	}
	err := walk(m.Header, m.Body, "")
	return out, err
}
