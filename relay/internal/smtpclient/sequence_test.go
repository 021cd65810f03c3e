package smtpclient

import (
	"errors"
	"slices"
	"testing"
)

// After a transaction refused at its end, the next one starts with RSET,
// for servers that keep the failed transaction's state.
func TestRSETAfterFailedTransaction(t *testing.T) {
	for _, pipe := range []bool{true, false} {
		sc := defaultScript.with()
		sc["."] = []string{"554 5.7.1 refused\r\n", "250 2.0.0 queued\r\n"}
		srv := newFakeServer(t, sc.run)
		c, _ := dialFake(t, testCtx(t), srv.addr(), &Options{DisablePipelining: !pipe})
		if err := c.Hello(testCtx(t), "client.test"); err != nil {
			t.Fatal(err)
		}
		env := &Envelope{From: "a@x.test", To: []string{"b@y.test"}}
		if _, err := c.Send(testCtx(t), env, []byte("x\r\n")); !IsPermanent(err) {
			t.Fatalf("first Send: %v, want the 554", err)
		}
		if _, err := c.Send(testCtx(t), env, []byte("x\r\n")); err != nil {
			t.Fatalf("second Send: %v", err)
		}
		cmds := srv.gotCommands()
		mails := 0
		for i, cmd := range cmds {
			if len(cmd) > 4 && cmd[:4] == "MAIL" {
				mails++
				if mails == 2 && cmds[i-1] != "RSET" {
					t.Errorf("pipelining %v: second MAIL not after RSET: %q", pipe, cmds)
				}
			}
		}
		// A successful transaction needs no RSET after it.
		if _, err := c.Send(testCtx(t), env, []byte("x\r\n")); err != nil {
			t.Fatal(err)
		}
		if n := len(slices.DeleteFunc(srv.gotCommands(), func(s string) bool { return s != "RSET" })); n != 1 {
			t.Errorf("pipelining %v: %d RSETs, want 1", pipe, n)
		}
	}
}

// A 503 (bad sequence) to a command the transaction was ready for means
// the server lost track: a temporary protocol error that ends the session,
// never a recipient's bounce.
func TestBadSequenceIsSessionFault(t *testing.T) {
	tests := []struct {
		name string
		sc   script
	}{
		{"mail", defaultScript.with("MAIL", "503 5.5.1 bad sequence\r\n")},
		{"rcpt", defaultScript.with("RCPT", "503 5.5.1 need MAIL first\r\n")},
		{"data", defaultScript.with("DATA", "503 5.5.1 need RCPT first\r\n")},
	}
	for _, tc := range tests {
		for _, pipe := range []bool{true, false} {
			srv := newFakeServer(t, tc.sc.run)
			c, _ := dialFake(t, testCtx(t), srv.addr(), &Options{DisablePipelining: !pipe})
			if err := c.Hello(testCtx(t), "client.test"); err != nil {
				t.Fatal(err)
			}
			res, err := c.Send(testCtx(t), &Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("x\r\n"))
			if !errors.Is(err, ErrProtocol) || IsPermanent(res.Rcpts[0].Err) || c.Err() == nil {
				t.Errorf("%s, pipelining %v: %v / %v, session %v", tc.name, pipe, err, res.Rcpts[0].Err, c.Err())
			}
		}
	}
	// A 503 to RCPT after MAIL was refused is the normal pipelined answer:
	// the recipients get MAIL's reply.
	c, _, _ := helloFake(t, defaultScript.with("MAIL", "550 5.7.1 sender refused\r\n", "RCPT", "503 5.5.1 need MAIL\r\n", "DATA", "503 5.5.1 no recipients\r\n"), nil)
	res, err := c.Send(testCtx(t), &Envelope{From: "a@x.test", To: []string{"b@y.test"}}, []byte("x\r\n"))
	var e *Error
	if !errors.As(err, &e) || e.Code != 550 || !errors.As(res.Rcpts[0].Err, &e) || e.Code != 550 || c.Err() != nil {
		t.Errorf("refused MAIL: %v / %v, session %v", err, res.Rcpts[0].Err, c.Err())
	}
}
