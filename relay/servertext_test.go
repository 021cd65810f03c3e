package relay_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// A server's text reaches results, events and the transcript with every
// control byte escaped: no ESC sequence, NUL, backspace or lone CR.
func TestServerTextMadePrintable(t *testing.T) {
	hostile := "no\x1b[2J such\x00 user\b\b\rOK delivered\x7f"
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{
		RcptReply: func(rcpt string) *relaytest.Reply {
			return &relaytest.Reply{Code: 550, Enhanced: "5.1.1", Text: hostile}
		},
	})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	var transcript lockedTranscript
	direct(c).DebugWriter = &transcript
	log := newEventLog()
	c.Events = log.hook
	res, _ := c.Send(ctx(t), testMessage("gone@example.com"))
	if res == nil || len(res.Recipients) != 1 {
		t.Fatalf("result %+v", res)
	}
	r := res.Recipients[0]
	if r.Status != relay.Bounced {
		t.Fatalf("status %v: %s", r.Status, r.Message)
	}
	e := log.waitFor(t, relay.EventBounced, "gone@example.com")
	for what, text := range map[string]string{"result": r.Message, "error": r.Err().Error(), "event": e.Message, "transcript": transcript.String()} {
		if !strings.Contains(text, `no\x1b[2J such\x00 user\x08\x08\x0dOK delivered\x7f`) {
			t.Errorf("%s lacks the escaped text: %q", what, text)
		}
		for _, c := range strings.ReplaceAll(text, "\n", "") {
			if !unicode.IsPrint(c) {
				t.Errorf("%s holds %U: %q", what, c, text)
				break
			}
		}
	}
}
