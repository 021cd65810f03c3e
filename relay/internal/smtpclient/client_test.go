package smtpclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// helloFake starts a fake server with sc and returns a Client after EHLO.
func helloFake(t *testing.T, sc script, opts *Options) (*Client, *countingConn, *fakeServer) {
	t.Helper()
	srv := newFakeServer(t, sc.run)
	ctx := testCtx(t)
	c, cc := dialFake(t, ctx, srv.addr(), opts)
	if err := c.Hello(ctx, "client.test"); err != nil {
		t.Fatalf("Hello: %v", err)
	}
	return c, cc, srv
}

// normalize is the reference CRLF normaliser: every CRLF, bare CR and bare
// LF becomes CRLF, and a non-empty result ends in CRLF.
func normalize(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	s = strings.ReplaceAll(s, "\n", "\r\n")
	if s != "" && !strings.HasSuffix(s, "\r\n") {
		s += "\r\n"
	}
	return s
}

var hostileBodies = []struct{ name, body string }{
	{"lf-dot-lf", "Subject: a\r\n\r\nfirst\n.\nMAIL FROM:<evil@x>\r\n"},
	{"crlf-dot-lf", "Subject: a\r\n\r\nfirst\r\n.\nRCPT TO:<evil@x>\r\n"},
	{"lf-dot-crlf", "Subject: a\r\n\r\nfirst\n.\r\nDATA\r\n"},
	{"cr-dot-cr", "Subject: a\r\n\r\nfirst\r.\rx"},
	{"bare-cr", "Subject: a\r\n\r\nline one\rline two\r"},
	{"bare-lf", "Subject: a\n\nline one\nline two"},
	{"dots", ".leading\r\n..two\r\n.\r\n"},
	{"empty", ""},
}

func TestSendHostileBodiesPipelined(t *testing.T) {
	for _, tc := range hostileBodies {
		t.Run(tc.name, func(t *testing.T) {
			c, cc, srv := helloFake(t, defaultScript, nil)
			before := len(cc.writes)
			res, err := c.Send(testCtx(t), &Envelope{From: "a@x.test", To: []string{"b@y.test", "c@y.test"}}, []byte(tc.body))
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if res.Delivered() != 2 || !res.Pipelined || res.Chunked {
				t.Fatalf("result %+v", res)
			}
			msgs := srv.gotMessages()
			if len(msgs) != 1 || msgs[0] != normalize(tc.body) {
				t.Fatalf("server got %q, want one message %q", msgs, normalize(tc.body))
			}
			// RFC 2920: MAIL, both RCPTs and DATA in the first write.
			first := cc.writes[before]
			if !strings.HasPrefix(first, "MAIL FROM:<a@x.test> SIZE=") ||
				!strings.HasSuffix(first, "RCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n") {
				t.Errorf("first write %q", first)
			}
			if got := len(srv.gotCommands()); got != 5 { // EHLO MAIL RCPT RCPT DATA
				t.Errorf("server saw %d commands: %q", got, srv.gotCommands())
			}
		})
	}
}

func TestSendNoPipelining(t *testing.T) {
	sc := defaultScript.with("EHLO", "250-fake.test\r\n250 8BITMIME\r\n")
	c, cc, srv := helloFake(t, sc, nil)
	before := len(cc.writes)
	res, err := c.Send(testCtx(t), &Envelope{From: "a@x.test", To: []string{"b@y.test", "c@y.test"}}, []byte("hi\r\n"))
	if err != nil || res.Pipelined || res.Delivered() != 2 {
		t.Fatalf("Send: %+v, %v", res, err)
	}
	// MAIL, RCPT, RCPT, DATA, data: five writes.
	if n := len(cc.writes) - before; n != 5 {
		t.Errorf("%d writes, want 5: %q", n, cc.writes[before:])
	}
	if m := srv.gotMessages(); len(m) != 1 || m[0] != "hi\r\n" {
		t.Errorf("messages %q", m)
	}
}

func TestSendBDAT(t *testing.T) {
	sc := defaultScript.with("EHLO", "250-fake.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n")
	for _, tc := range []struct {
		name   string
		body   string
		writes int
	}{
		{"small-one-write", "Subject: x\n\n.\nline\r.\r\n", 1},
		{"large-after-rcpt", strings.Repeat("0123456789abcdef\n", 5000), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, cc, srv := helloFake(t, sc, nil)
			before := len(cc.writes)
			res, err := c.Send(testCtx(t), &Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte(tc.body))
			if err != nil || !res.Chunked || res.Delivered() != 1 {
				t.Fatalf("Send: %+v, %v", res, err)
			}
			want := normalize(tc.body)
			if m := srv.gotMessages(); len(m) != 1 || m[0] != want {
				t.Fatalf("server got %d messages, want the normalised body", len(m))
			}
			if res.Size != int64(len(want)) {
				t.Errorf("Size %d, want %d", res.Size, len(want))
			}
			cmds := srv.gotCommands()
			if last := cmds[len(cmds)-1]; last != "BDAT "+strconv.Itoa(len(want))+" LAST" {
				t.Errorf("last command %q", last)
			}
			if tc.writes == 1 && len(cc.writes)-before != 1 {
				t.Errorf("%d writes, want MAIL, RCPT and BDAT in one", len(cc.writes)-before)
			}
			if tc.writes == 2 && !strings.HasSuffix(cc.writes[before], "RCPT TO:<b@y.test>\r\n") {
				t.Errorf("first write %q, want it to end after RCPT", cc.writes[before])
			}
		})
	}
}

func TestSendPerRecipientReplies(t *testing.T) {
	sc := defaultScript
	sc = sc.with()
	sc["RCPT"] = []string{"250 2.1.5 ok\r\n", "452 4.5.3 too many recipients\r\n", "550-5.1.1 no such\r\n550 5.1.1 user\r\n"}
	c, _, srv := helloFake(t, sc, nil)
	res, err := c.Send(testCtx(t), &Envelope{From: "a@x.test", To: []string{"ok@y.test", "later@y.test", "bad@y.test"}}, []byte("x\r\n"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.Delivered() != 1 || res.Rcpts[0].Err != nil {
		t.Fatalf("rcpts %+v", res.Rcpts)
	}
	var e *Error
	if !errors.As(res.Rcpts[1].Err, &e) || e.Code != 452 || e.Enhanced != "4.5.3" || e.Permanent() || IsPermanent(res.Rcpts[1].Err) {
		t.Errorf("452 recipient: %v", res.Rcpts[1].Err)
	}
	if !errors.As(res.Rcpts[2].Err, &e) || e.Code != 550 || e.Enhanced != "5.1.1" || !IsPermanent(res.Rcpts[2].Err) ||
		e.Command != "RCPT TO" || e.Message != "no such; user" {
		t.Errorf("550 recipient: %#v", e)
	}
	if len(srv.gotMessages()) != 1 {
		t.Errorf("messages %d", len(srv.gotMessages()))
	}
}

func TestSendAllRefusedThenRSETPipelined(t *testing.T) {
	sc := defaultScript.with("RCPT", "550 5.1.1 no\r\n", "DATA", "554 5.5.1 no valid recipients\r\n")
	c, cc, srv := helloFake(t, sc, nil)
	ctx := testCtx(t)
	res, err := c.Send(ctx, &Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("x\r\n"))
	var e *Error
	if !errors.As(err, &e) || e.Code != 550 || res.Delivered() != 0 || res.Data.Code != 554 {
		t.Fatalf("Send: %+v %v", res, err)
	}
	if len(srv.gotMessages()) != 0 {
		t.Fatal("message sent although no recipient was accepted")
	}
	// The next transaction starts with a pipelined RSET.
	sc["RCPT"] = []string{"250 ok\r\n"}
	before := len(cc.writes)
	if _, err := c.Send(ctx, &Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("x\r\n")); err == nil {
		t.Fatal("script still refuses RCPT; want an error")
	}
	if !strings.HasPrefix(cc.writes[before], "RSET\r\nMAIL FROM:") {
		t.Errorf("second transaction began with %q", cc.writes[before])
	}
}

func TestSendReuseAndReset(t *testing.T) {
	c, _, srv := helloFake(t, defaultScript, nil)
	ctx := testCtx(t)
	for i := 0; i < 3; i++ {
		if _, err := c.Send(ctx, &Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("m\r\n")); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		if err := c.Reset(ctx); err != nil {
			t.Fatalf("Reset: %v", err)
		}
	}
	if err := c.Noop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.gotMessages()); n != 3 {
		t.Errorf("%d messages, want 3", n)
	}
	if _, err := c.Send(ctx, &Envelope{From: "a@x.test", To: []string{"b@y.test"}}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Quit: %v", err)
	}
}

func TestSendTransactionFailures(t *testing.T) {
	tests := []struct {
		name    string
		sc      script
		pipe    bool
		code    int
		command string
	}{
		{"mail-refused-pipelined", defaultScript.with("MAIL", "553 5.1.8 bad sender\r\n", "RCPT", "503 5.5.1 need MAIL\r\n", "DATA", "503 5.5.1 need RCPT\r\n"), true, 553, "MAIL FROM"},
		{"mail-refused", defaultScript.with("EHLO", "250 fake\r\n", "MAIL", "451 4.3.0 try later\r\n"), false, 451, "MAIL FROM"},
		{"data-refused", defaultScript.with("DATA", "451 4.3.0 not now\r\n"), true, 451, "DATA"},
		{"final-refused", defaultScript.with(".", "554 5.7.1 spam\r\n"), true, 554, "DATA"},
		{"bdat-refused", defaultScript.with("EHLO", "250-fake\r\n250 CHUNKING\r\n", "BDAT", "552 5.3.4 too big\r\n"), false, 552, "BDAT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _ := helloFake(t, tc.sc, nil)
			res, err := c.Send(testCtx(t), &Envelope{From: "a@x.test", To: []string{"b@y.test", "c@y.test"}}, []byte("x\r\n"))
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code || e.Command != tc.command {
				t.Fatalf("err %v, want %d from %s", err, tc.code, tc.command)
			}
			for _, r := range res.Rcpts {
				if !errors.As(r.Err, &e) || e.Code != tc.code {
					t.Errorf("%s: %v", r.Addr, r.Err)
				}
			}
			if res.Pipelined != tc.pipe {
				t.Errorf("Pipelined %v", res.Pipelined)
			}
			// The session stays usable.
			if err := c.Noop(testCtx(t)); err != nil {
				t.Errorf("Noop after refusal: %v", err)
			}
		})
	}
}

func TestStartTLSNotOffered(t *testing.T) {
	c, cc, _ := helloFake(t, defaultScript, nil)
	n := len(cc.writes)
	if err := c.StartTLS(testCtx(t), nil); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("StartTLS: %v", err)
	}
	if len(cc.writes) != n {
		t.Error("STARTTLS sent although not offered")
	}
}

func TestLocalRefusals(t *testing.T) {
	tests := []struct {
		name     string
		ehlo     string
		env      Envelope
		sentinel error
		enhanced string
		wantMail bool   // MAIL still sent for the other recipients
		body     string // "" → a 7-bit line over ten octets
	}{
		{"utf8-rcpt", "250-fake\r\n250 PIPELINING\r\n",
			Envelope{From: "a@x.test", To: []string{"b@y.test", "用户@例子.测试"}}, ErrSMTPUTF8Required, "5.6.7", true, ""},
		{"utf8-from", "250-fake\r\n250 PIPELINING\r\n",
			Envelope{From: "用户@x.test", To: []string{"b@y.test"}}, ErrSMTPUTF8Required, "5.6.7", false, ""},
		{"utf8-forced", "250-fake\r\n250 PIPELINING\r\n",
			Envelope{From: "a@x.test", To: []string{"b@y.test"}, SMTPUTF8: true}, ErrSMTPUTF8Required, "5.6.7", false, ""},
		{"size", "250-fake\r\n250 SIZE 10\r\n",
			Envelope{From: "a@x.test", To: []string{"b@y.test"}}, ErrMessageTooLarge, "5.3.4", false, ""},
		{"requiretls-plaintext", "250-fake\r\n250 REQUIRETLS\r\n",
			Envelope{From: "a@x.test", To: []string{"b@y.test"}, RequireTLS: true}, ErrRequireTLS, "5.7.10", false, ""},
		{"rcptmax", "250-fake\r\n250 LIMITS RCPTMAX=1 MAILMAX=10\r\n",
			Envelope{From: "a@x.test", To: []string{"b@y.test", "c@y.test"}}, ErrTooManyRecipients, "4.5.3", true, ""},
		{"nul", "250-fake\r\n250 PIPELINING\r\n",
			Envelope{From: "a@x.test", To: []string{"b@y.test"}}, ErrInvalidData, "5.6.0", false, "a\x00b\r\n"},
		{"long-line", "250-fake\r\n250 PIPELINING\r\n",
			Envelope{From: "a@x.test", To: []string{"b@y.test"}}, ErrInvalidData, "5.6.0", false, strings.Repeat("x", 999) + "\r\n"},
		{"long-line-bare-lf", "250-fake\r\n250 PIPELINING\r\n",
			Envelope{From: "a@x.test", To: []string{"b@y.test"}}, ErrInvalidData, "5.6.0", false, "a\n" + strings.Repeat("x", 999)},
		{"long-line-after-cr", "250-fake\r\n250 PIPELINING\r\n",
			Envelope{From: "a@x.test", To: []string{"b@y.test"}}, ErrInvalidData, "5.6.0", false, "a\r" + strings.Repeat("x", 999) + "\r\n"},
		{"8bit-without-8bitmime", "250-fake\r\n250 PIPELINING\r\n",
			Envelope{From: "a@x.test", To: []string{"b@y.test"}}, ErrEightBitRequired, "5.6.3", false, "caf\xc3\xa9\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, srv := helloFake(t, defaultScript.with("EHLO", tc.ehlo), nil)
			body := tc.body
			if body == "" {
				body = "Subject: long enough to be over ten\r\n"
			}
			res, err := c.Send(testCtx(t), &tc.env, []byte(body))
			last := res.Rcpts[len(res.Rcpts)-1].Err
			var e *Error
			if !errors.Is(last, tc.sentinel) || !errors.As(last, &e) || e.Enhanced != tc.enhanced || e.Code != 0 {
				t.Fatalf("last recipient: %v", last)
			}
			if e.Permanent() != strings.HasPrefix(tc.enhanced, "5") {
				t.Errorf("Permanent %v for %s", e.Permanent(), tc.enhanced)
			}
			sawMail := false
			for _, cmd := range srv.gotCommands() {
				if strings.Contains(cmd, "用户") {
					t.Errorf("non-ASCII address sent: %q", cmd)
				}
				sawMail = sawMail || strings.HasPrefix(cmd, "MAIL")
			}
			if sawMail != tc.wantMail {
				t.Errorf("MAIL sent: %v, want %v", sawMail, tc.wantMail)
			}
			if tc.wantMail && (err != nil || res.Rcpts[0].Err != nil) {
				t.Errorf("first recipient should be delivered: %v %v", err, res.Rcpts[0].Err)
			}
			if !tc.wantMail && !errors.Is(err, tc.sentinel) {
				t.Errorf("Send error %v", err)
			}
		})
	}
}

func TestMailParameters(t *testing.T) {
	ehlo := "250-fake\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n250 SIZE\r\n"
	tests := []struct {
		name     string
		env      Envelope
		body     string
		mail     string
		rcptTail string
	}{
		{"7bit", Envelope{From: "a@x.test", To: []string{"b@y.test"}}, "plain\r\n", "MAIL FROM:<a@x.test> SIZE=7", "RCPT TO:<b@y.test>"},
		{"8bit", Envelope{From: "a@x.test", To: []string{"b@y.test"}}, "caf\xc3\xa9\r\n", "MAIL FROM:<a@x.test> SIZE=7 BODY=8BITMIME", "RCPT TO:<b@y.test>"},
		{"utf8", Envelope{From: "a@x.test", To: []string{"b@ü.test"}}, "x", "MAIL FROM:<a@x.test> SIZE=3 SMTPUTF8", "RCPT TO:<b@ü.test>"},
		{"null-sender", Envelope{From: "", To: []string{"b@y.test"}}, "x\r\n", "MAIL FROM:<> SIZE=3", "RCPT TO:<b@y.test>"},
		{"dsn", Envelope{From: "a@x.test", To: []string{"b+c=d@y.test"}, DSN: &DSN{Return: "hdrs", EnvelopeID: "id+1=2 x", Notify: []string{"failure", "DELAY"}, OriginalRecipient: true}},
			"x\r\n", "MAIL FROM:<a@x.test> SIZE=3 RET=HDRS ENVID=id+2B1+3D2+20x", "RCPT TO:<b+c=d@y.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b+2Bc+3Dd@y.test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, srv := helloFake(t, defaultScript.with("EHLO", ehlo), nil)
			if _, err := c.Send(testCtx(t), &tc.env, []byte(tc.body)); err != nil {
				t.Fatal(err)
			}
			cmds := srv.gotCommands()
			if cmds[1] != tc.mail || cmds[2] != tc.rcptTail {
				t.Errorf("got\n%q\n%q\nwant\n%q\n%q", cmds[1], cmds[2], tc.mail, tc.rcptTail)
			}
		})
	}
}

func TestHELOFallback(t *testing.T) {
	sc := defaultScript.with("EHLO", "502 5.5.2 what\r\n")
	c, cc, srv := helloFake(t, sc, nil)
	if len(c.Extensions()) != 0 || c.Supports("PIPELINING") {
		t.Errorf("extensions after HELO: %v", c.Extensions())
	}
	n := len(cc.writes)
	res, err := c.Send(testCtx(t), &Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("x\r\n"))
	if err != nil || res.Pipelined {
		t.Fatalf("Send: %v", err)
	}
	if cmds := srv.gotCommands(); cmds[0] != "EHLO client.test" || cmds[1] != "HELO client.test" || cmds[2] != "MAIL FROM:<a@x.test>" {
		t.Errorf("commands %q", cmds)
	}
	if len(cc.writes)-n != 4 {
		t.Errorf("writes %q", cc.writes[n:])
	}
}

func TestDebugWriterHasNoBody(t *testing.T) {
	var dbg bytes.Buffer
	c, _, _ := helloFake(t, defaultScript, &Options{DebugWriter: &dbg})
	if _, err := c.Send(testCtx(t), &Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("Subject: secret\r\n\r\nsecret body\r\n")); err != nil {
		t.Fatal(err)
	}
	out := dbg.String()
	for _, want := range []string{"S: 220 fake.test ESMTP", "C: EHLO client.test", "C: MAIL FROM:<a@x.test>", "S: 250 2.0.0 queued", "C: [32 octets of message data]"} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret") {
		t.Errorf("transcript holds the body:\n%s", out)
	}
}

func TestExtensions(t *testing.T) {
	sc := defaultScript.with("EHLO", "250-fake\r\n250-size 1024\r\n250-LIMITS RCPTMAX=50 MAILMAX=5\r\n250 8bitmime\r\n")
	c, _, _ := helloFake(t, sc, nil)
	if c.MaxSize() != 1024 || c.RcptMax() != 50 || !c.Supports("8BITMIME") || c.Supports("CHUNKING") {
		t.Errorf("MaxSize %d RcptMax %d ext %v", c.MaxSize(), c.RcptMax(), c.Extensions())
	}
	if _, ok := c.TLSConnectionState(); ok || c.IsTLS() {
		t.Error("TLS state on a plaintext session")
	}
}

func TestData354WithoutRecipients(t *testing.T) {
	// A broken server says 354 although it refused every RCPT: the client
	// ends the data at once and sends none of the message.
	sc := defaultScript.with("RCPT", "550 5.1.1 no\r\n", "DATA", "354 go ahead anyway\r\n", ".", "554 5.5.1 empty\r\n")
	c, _, srv := helloFake(t, sc, nil)
	res, err := c.Send(testCtx(t), &Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("secret\r\n"))
	var e *Error
	if !errors.As(err, &e) || e.Code != 550 || res.Data.Code != 354 {
		t.Fatalf("Send: %v %+v", err, res)
	}
	if m := srv.gotMessages(); len(m) != 1 || m[0] != "" {
		t.Fatalf("server got %q, want one empty data", m)
	}
	if err := c.Noop(testCtx(t)); err != nil {
		t.Error(err)
	}
}

func TestErrorClassification(t *testing.T) {
	tests := []struct {
		err  *Error
		perm bool
		text string
	}{
		{&Error{Command: "RCPT TO", Code: 550, Enhanced: "5.1.1", Message: "no such user"}, true, "smtpclient: RCPT TO: 550 5.1.1 no such user"},
		{&Error{Command: "RCPT TO", Code: 452, Enhanced: "4.5.3", Message: "later"}, false, "smtpclient: RCPT TO: 452 4.5.3 later"},
		{&Error{Command: "DATA", Code: 554}, true, "smtpclient: DATA: 554"},
		{&Error{Command: "greeting", Code: 421, Enhanced: "5.0.0"}, false, "smtpclient: greeting: 421 5.0.0"}, // the code decides
		{&Error{Command: "MAIL FROM", Enhanced: "5.3.4", Err: ErrMessageTooLarge}, true, "smtpclient: MAIL FROM: 5.3.4 " + ErrMessageTooLarge.Error()},
		{&Error{Command: "RCPT TO", Enhanced: "4.5.3", Message: "over RCPTMAX", Err: ErrTooManyRecipients}, false, "smtpclient: RCPT TO: 4.5.3 over RCPTMAX"},
		{&Error{Message: "no code"}, false, "smtpclient: no code"},
	}
	for _, tc := range tests {
		if tc.err.Permanent() != tc.perm || IsPermanent(fmt.Errorf("wrapped: %w", tc.err)) != tc.perm {
			t.Errorf("%v: Permanent %v, want %v", tc.err, tc.err.Permanent(), tc.perm)
		}
		if tc.err.Error() != tc.text {
			t.Errorf("Error() = %q, want %q", tc.err.Error(), tc.text)
		}
	}
	if IsPermanent(errors.New("connection reset")) || IsPermanent(nil) {
		t.Error("unknown errors must be temporary")
	}
}
