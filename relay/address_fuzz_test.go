package relay

import (
	"testing"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/relay/internal/smtpclient"
)

// One rule for addresses from mime to the wire: whatever mime accepts, the
// SMTP client sends, unless the whole path is over RFC 5321's 256 octets
// (then the recipient bounces alone, 5.1.3).
func FuzzAddressRuleAgrees(f *testing.F) {
	for _, s := range []string{
		"a@example.com", `"john smith"@example.com`, `"a\"b"@example.com`, `"a\\b"@example.com`,
		`"john"@example.com`, "用户@例子.测试", `"用户 x"@example.com`, "a@[192.0.2.1]",
		`"a@b"@example.com`, `"<x>"@example.com`, "a.b+c@EXAMPLE.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		n, err := mime.NormalizeAddress(addr)
		if err != nil || len(n) > 254 {
			return
		}
		if err := smtpclient.CheckForwardPath(n); err != nil {
			t.Fatalf("mime accepts %q as %q, the SMTP client refuses it: %v", addr, n, err)
		}
		if err := smtpclient.CheckReversePath(n); err != nil {
			t.Fatalf("mime accepts %q as %q, the SMTP client refuses it as sender: %v", addr, n, err)
		}
	})
}
