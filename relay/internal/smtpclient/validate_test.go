package smtpclient

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckForwardPath(t *testing.T) {
	long := strings.Repeat("a", 65)
	tests := []struct {
		addr string
		ok   bool
	}{
		{"b@y.test", true},
		{"postmaster", true},
		{"Postmaster", true},
		{`"john smith"@y.test`, true},
		{`"a\"b"@y.test`, true},
		{`"a\\b"@y.test`, true},
		{`"a@b"@y.test`, true},
		{`"用户 x"@y.test`, true},
		{strings.Repeat("a", 64) + "@y.test", true},
		{"", false},
		{"john smith@y.test", false},
		{`"john smith@y.test`, false},
		{`"john"smith@y.test`, false},
		{`""@y.test`, false},
		{`"a` + "\t" + `b"@y.test`, false},
		{`"a` + "\r\n" + `"@y.test`, false},
		{`"a\` + "\x01" + `"@y.test`, false},
		{`"abc"@`, false},
		{`"abc"`, false},
		{"a@b@y.test", false},
		{`a"b@y.test`, false},
		{"a>b@y.test", false},
		{"a@y.test> SIZE=1", false},
		{"a@y test", false},
		{long + "@y.test", false},
		{`"` + long + `"@y.test`, false},
		{"a@" + strings.Repeat("y", 260), false},
		{"a\xff@y.test", false},
		{"@y.test", false},
		{"a@", false},
	}
	for _, tc := range tests {
		err := CheckForwardPath(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("CheckForwardPath(%q) = %v, want ok %v", tc.addr, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidInput) {
			t.Errorf("CheckForwardPath(%q) = %v, not ErrInvalidInput", tc.addr, err)
		}
	}
	if err := CheckReversePath(""); err != nil {
		t.Errorf("null reverse-path refused: %v", err)
	}
	if err := CheckReversePath("postmaster"); err == nil {
		t.Error("reverse-path postmaster without a domain accepted")
	}
}

// A quoted local part goes to the wire as it is, quoted, next to the
// other recipients.
func TestQuotedLocalPartOnTheWire(t *testing.T) {
	c, _, srv := helloFake(t, defaultScript, nil)
	env := &Envelope{From: `"the sender"@x.test`, To: []string{`"john smith"@y.test`, "b@y.test"}}
	res, err := c.Send(testCtx(t), env, []byte("x\r\n"))
	if err != nil || res.Delivered() != 2 {
		t.Fatalf("Send: %v", err)
	}
	cmds := srv.gotCommands()
	if cmds[1] != `MAIL FROM:<"the sender"@x.test> SIZE=3` || cmds[2] != `RCPT TO:<"john smith"@y.test>` {
		t.Errorf("commands %q", cmds)
	}
}
