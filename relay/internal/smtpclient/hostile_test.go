package smtpclient

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestGreetingRefused(t *testing.T) {
	srv := newFakeServer(t, defaultScript.with("greeting", "554-5.7.1 go away\r\n554 5.7.1 no service\r\n").run)
	_, err := Dial(testCtx(t), "tcp", srv.addr(), nil)
	var e *Error
	if !errors.As(err, &e) || e.Code != 554 || e.Command != "greeting" || e.Enhanced != "5.7.1" || !e.Permanent() {
		t.Fatalf("err %v", err)
	}
}

func TestGreetingNever(t *testing.T) {
	block := make(chan struct{})
	srv := newFakeServer(t, func(fs *fakeSession) {
		select {
		case <-block:
		case <-time.After(10 * time.Second):
		}
	})
	t.Cleanup(func() { close(block) }) // runs before the server's cleanup
	t.Run("ctx-deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := Dial(ctx, "tcp", srv.addr(), nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want DeadlineExceeded", err)
		}
	})
	t.Run("greeting-timeout", func(t *testing.T) {
		_, err := Dial(context.Background(), "tcp", srv.addr(), &Options{GreetingTimeout: 200 * time.Millisecond})
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("err %v, want ErrTimeout", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			time.Sleep(100 * time.Millisecond)
			cancel()
		}()
		_, err := Dial(ctx, "tcp", srv.addr(), nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want Canceled", err)
		}
	})
}

func TestCancelDuringSend(t *testing.T) {
	// The server accepts EHLO, then never answers MAIL.
	stall := make(chan struct{})
	sc := defaultScript.with()
	srv := newFakeServer(t, func(fs *fakeSession) {
		fs.write(sc["greeting"][0])
		fs.readLine()
		fs.write(sc["EHLO"][0])
		select {
		case <-stall:
		case <-time.After(10 * time.Second):
		}
	})
	t.Cleanup(func() { close(stall) }) // runs before the server's cleanup
	c, _ := dialFake(t, testCtx(t), srv.addr(), nil)
	if err := c.Hello(testCtx(t), "client.test"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	res, err := c.Send(ctx, &Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("x"))
	if !errors.Is(err, context.Canceled) || res.Rcpts[0].Err == nil || IsPermanent(res.Rcpts[0].Err) {
		t.Fatalf("Send: %v / %+v", err, res)
	}
	if err := c.Noop(testCtx(t)); !errors.Is(err, context.Canceled) {
		t.Errorf("session should stay closed with the cause; Noop: %v", err)
	}
}

func TestHostileReplies(t *testing.T) {
	tests := []struct {
		name, greeting string
	}{
		{"garbage", "hello there\r\n"},
		{"bad-code", "999 what\r\n"},
		{"bad-separator", "220_ok\r\n"},
		{"short", "22\r\n"},
		{"mixed-codes", "220-fake\r\n250 other\r\n"},
		{"long-line", "220 " + strings.Repeat("x", 1<<20) + "\r\n"},
		{"many-lines", strings.Repeat("220-x\r\n", 10000) + "220 x\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(t, func(fs *fakeSession) { fs.write(tc.greeting) })
			_, err := Dial(testCtx(t), "tcp", srv.addr(), nil)
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("err %v, want ErrProtocol", err)
			}
		})
	}
}

func TestHostileEHLOReply(t *testing.T) {
	sc := defaultScript.with("EHLO", "250-fake\r\n"+strings.Repeat("250-X\r\n", 10000)+"250 X\r\n")
	srv := newFakeServer(t, sc.run)
	c, _ := dialFake(t, testCtx(t), srv.addr(), nil)
	if err := c.Hello(testCtx(t), "client.test"); !errors.Is(err, ErrProtocol) {
		t.Fatalf("Hello: %v", err)
	}
	if err := c.Noop(testCtx(t)); !errors.Is(err, ErrProtocol) {
		t.Errorf("closed session should keep returning the cause: %v", err)
	}
}

func TestStartTLSInjection(t *testing.T) {
	sc := defaultScript.with(
		"EHLO", "250-fake\r\n250 STARTTLS\r\n",
		"STARTTLS", "220 2.0.0 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n")
	c, _, _ := helloFake(t, sc, nil)
	err := c.StartTLS(testCtx(t), nil)
	if !errors.Is(err, ErrTLSInjection) || !errors.Is(err, ErrProtocol) {
		t.Fatalf("StartTLS: %v", err)
	}
	if err := c.Noop(testCtx(t)); !errors.Is(err, ErrTLSInjection) {
		t.Errorf("session should be closed: %v", err)
	}
}

func TestInvalidInputBeforeIO(t *testing.T) {
	c, cc, _ := helloFake(t, defaultScript, nil)
	ctx := testCtx(t)
	n := len(cc.writes)
	for _, name := range []string{"", "a b", "evil\r\nMAIL FROM:<x>", "x\n", "x\x00", "<x>", "ünï"} {
		if err := c.Hello(ctx, name); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("Hello(%q): %v", name, err)
		}
	}
	envs := []*Envelope{
		nil,
		{From: "a@x.test"},
		{From: "a@x.test\r\nRCPT TO:<evil@x>", To: []string{"b@y.test"}},
		{From: "a@x.test", To: []string{"b@y.test\r\nDATA"}},
		{From: "a@x.test", To: []string{"b@y.test\n"}},
		{From: "a@x.test", To: []string{"b@y.test\r"}},
		{From: "a@x.test", To: []string{"b@y.test> NOTIFY=NEVER"}},
		{From: "a@x.test", To: []string{"b@y.test SIZE=1"}},
		{From: "a@x.test", To: []string{"b\x00@y.test"}},
		{From: "a@x.test", To: []string{"nodomain"}},
		{From: "a@x.test", To: []string{"b@"}},
		{From: "a@x.test", To: []string{"\xff@y.test"}},
		{From: "a@x.test", To: []string{"b@y.test"}, DSN: &DSN{Return: "ALL"}},
		{From: "a@x.test", To: []string{"b@y.test"}, DSN: &DSN{Notify: []string{"NEVER", "SUCCESS"}}},
	}
	for i, env := range envs {
		res, err := c.Send(ctx, env, []byte("x"))
		if !errors.Is(err, ErrInvalidInput) || res != nil {
			t.Errorf("envelope %d: %v", i, err)
		}
	}
	if len(cc.writes) != n {
		t.Errorf("invalid input reached the wire: %q", cc.writes[n:])
	}
	// Null reverse-path and postmaster are fine.
	if _, err := c.Send(ctx, &Envelope{From: "", To: []string{"Postmaster"}}, []byte("x")); err != nil {
		t.Errorf("bounce to postmaster: %v", err)
	}
}

func TestServerClosing421(t *testing.T) {
	sc := defaultScript.with("RCPT", "421 4.3.2 shutting down\r\n")
	c, _, _ := helloFake(t, sc, nil)
	res, err := c.Send(testCtx(t), &Envelope{From: "a@x.test", To: []string{"b@y.test", "c@y.test"}}, []byte("x"))
	if err == nil || IsPermanent(err) {
		t.Fatalf("err %v", err)
	}
	var e *Error
	if !errors.As(res.Rcpts[0].Err, &e) || e.Code != 421 {
		t.Errorf("first recipient: %v", res.Rcpts[0].Err)
	}
	if res.Rcpts[1].Err == nil || IsPermanent(res.Rcpts[1].Err) {
		t.Errorf("second recipient: %v", res.Rcpts[1].Err)
	}
	if err := c.Noop(testCtx(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("after 421: %v", err)
	}
}

func TestStepTimeout(t *testing.T) {
	// The server answers EHLO, then never answers MAIL: MailTimeout, not
	// the (absent) context deadline, ends the wait.
	stall := make(chan struct{})
	srv := newFakeServer(t, func(fs *fakeSession) {
		fs.write(defaultScript["greeting"][0])
		fs.readLine()
		fs.write(defaultScript["EHLO"][0])
		select {
		case <-stall:
		case <-time.After(10 * time.Second):
		}
	})
	t.Cleanup(func() { close(stall) }) // runs before the server's cleanup
	c, _ := dialFake(t, testCtx(t), srv.addr(), &Options{MailTimeout: 100 * time.Millisecond})
	if err := c.Hello(testCtx(t), "client.test"); err != nil {
		t.Fatal(err)
	}
	res, err := c.Send(context.Background(), &Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("x"))
	if !errors.Is(err, ErrTimeout) || !errors.Is(res.Rcpts[0].Err, ErrTimeout) || IsPermanent(err) {
		t.Fatalf("Send: %v", err)
	}
}

func TestCancelDuringBlockedWrite(t *testing.T) {
	// The server says 354 and then stops reading: the data write blocks
	// once the socket buffers fill, and cancelling ctx must end it. The
	// server cancels, so the client is surely in its data phase by then.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stall := make(chan struct{})
	srv := newFakeServer(t, func(fs *fakeSession) {
		fs.write(defaultScript["greeting"][0])
		fs.readLine()
		fs.write("250-fake\r\n250 PIPELINING\r\n")
		for i := 0; i < 3; i++ { // MAIL, RCPT, DATA in one write
			fs.readLine()
		}
		fs.write("250 ok\r\n250 ok\r\n354 go\r\n")
		time.Sleep(200 * time.Millisecond)
		cancel()
		select {
		case <-stall:
		case <-time.After(10 * time.Second):
		}
	})
	t.Cleanup(func() { close(stall) }) // runs before the server's cleanup
	c, _ := dialFake(t, testCtx(t), srv.addr(), nil)
	if err := c.Hello(testCtx(t), "client.test"); err != nil {
		t.Fatal(err)
	}
	body := []byte(strings.Repeat("0123456789012345678901234567890123456789012345678901234567890123456789\r\n", 1<<18)) // 18 MB
	_, err := c.Send(ctx, &Envelope{From: "a@x.test", To: []string{"b@y.test"}}, body)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "DATA") {
		t.Fatalf("Send: %v, want Canceled while sending DATA", err)
	}
}
