package smtpclient

import (
	"errors"
	"testing"
	"time"
)

// waitIdleErr calls CheckIdle until it fails, for at most two seconds:
// the server's late bytes take a moment to arrive.
func waitIdleErr(t *testing.T, c *Client) error {
	t.Helper()
	for range 200 {
		if err := c.CheckIdle(); err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("CheckIdle found nothing")
	return nil
}

// dialScript connects to a fake server with Dial (a plain *net.TCPConn,
// so CheckIdle peeks at the socket) or through a wrapper (so it falls
// back to a short read), and says EHLO.
func dialScript(t *testing.T, sc script, wrapped bool) *Client {
	t.Helper()
	srv := newFakeServer(t, sc.run)
	if wrapped {
		c, _ := dialFake(t, testCtx(t), srv.addr(), nil)
		if err := c.Hello(testCtx(t), "client.test"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c, err := Dial(testCtx(t), "tcp", srv.addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello(testCtx(t), "client.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckIdle(t *testing.T) {
	env := &Envelope{From: "a@x.test", To: []string{"b@y.test"}}
	for _, wrapped := range []bool{false, true} {
		name := map[bool]string{false: "socket", true: "wrapped"}[wrapped]
		t.Run(name+"/clean", func(t *testing.T) {
			c := dialScript(t, defaultScript, wrapped)
			for i := range 3 {
				if _, err := c.Send(testCtx(t), env, []byte("x\r\n")); err != nil {
					t.Fatal(err)
				}
				if err := c.CheckIdle(); err != nil {
					t.Fatalf("CheckIdle after message %d: %v", i, err)
				}
			}
		})
		t.Run(name+"/extra-reply", func(t *testing.T) {
			// The extra reply comes with the final one: Send keeps the
			// message's result and ends the session.
			c := dialScript(t, defaultScript.with(".", "250 2.0.0 queued\r\n250 2.0.0 and again\r\n"), wrapped)
			res, err := c.Send(testCtx(t), env, []byte("x\r\n"))
			if err != nil || res.Delivered() != 1 {
				t.Fatalf("Send: %v", err)
			}
			if err := c.CheckIdle(); !errors.Is(err, ErrProtocol) {
				t.Fatalf("CheckIdle: %v, want ErrProtocol", err)
			}
			if _, err := c.Send(testCtx(t), env, []byte("x\r\n")); err == nil {
				t.Fatal("Send on the ended session succeeded")
			}
		})
		t.Run(name+"/late-reply", func(t *testing.T) {
			sc := defaultScript.with("NOOP", "250 2.0.0 ok\r\n")
			c := dialScript(t, sc, wrapped)
			if _, err := c.Send(testCtx(t), env, []byte("x\r\n")); err != nil {
				t.Fatal(err)
			}
			// Make the server talk unasked: pipeline a NOOP by hand and
			// leave its reply unread, as a server's stray reply would be.
			c.writeLine("NOOP")
			if err := c.bw.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := waitIdleErr(t, c); !errors.Is(err, ErrProtocol) {
				t.Fatalf("CheckIdle: %v, want ErrProtocol", err)
			}
			if c.Err() == nil {
				t.Error("session still open")
			}
		})
		t.Run(name+"/server-closed", func(t *testing.T) {
			// QUIT with an empty scripted reply: the server closes
			// without a word.
			c := dialScript(t, defaultScript.with("QUIT", ""), wrapped)
			c.writeLine("QUIT")
			if err := c.bw.Flush(); err != nil {
				t.Fatal(err)
			}
			err := waitIdleErr(t, c)
			if !errors.Is(err, ErrClosed) || c.Err() == nil {
				t.Fatalf("CheckIdle: %v, session err %v", err, c.Err())
			}
		})
	}
}

// A reply of the wrong class for its command means replies and commands
// are out of step: the session ends and no recipient's result is taken
// from it, not even a refusal that came before.
func TestRepliesOutOfStep(t *testing.T) {
	env := func() *Envelope { return &Envelope{From: "a@x.test", To: []string{"gone@y.test", "b@y.test"}} }
	tests := []struct {
		name string
		sc   script
	}{
		{"354-to-mail", defaultScript.with("MAIL", "354 go ahead\r\n")},
		{"354-to-rcpt", script{"RCPT": {"550 5.1.1 no such user\r\n", "354 go ahead\r\n"}}},
		{"250-to-data", defaultScript.with("DATA", "250 2.0.0 ok\r\n")},
		{"354-to-end-of-data", defaultScript.with(".", "354 again\r\n")},
		{"354-to-bdat", defaultScript.with("EHLO", "250-fake\r\n250-PIPELINING\r\n250 CHUNKING\r\n", "BDAT", "354 go ahead\r\n")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := tc.sc
			for k, v := range defaultScript {
				if _, ok := sc[k]; !ok {
					sc[k] = v
				}
			}
			for _, pipe := range []bool{true, false} {
				srv := newFakeServer(t, sc.run)
				c, _ := dialFake(t, testCtx(t), srv.addr(), &Options{DisablePipelining: !pipe})
				if err := c.Hello(testCtx(t), "client.test"); err != nil {
					t.Fatal(err)
				}
				res, err := c.Send(testCtx(t), env(), []byte("x\r\n"))
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("pipelining %v: Send: %v, want ErrProtocol", pipe, err)
				}
				for _, r := range res.Rcpts {
					if !errors.Is(r.Err, ErrProtocol) || IsPermanent(r.Err) {
						t.Errorf("pipelining %v: %s: %v, want a temporary protocol error", pipe, r.Addr, r.Err)
					}
				}
				if c.Err() == nil {
					t.Errorf("pipelining %v: session not ended", pipe)
				}
			}
		})
	}
}
