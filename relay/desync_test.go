package relay_test

import (
	"testing"

	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// A server that sends one reply more than it was asked for must not shift
// the next message's replies by one on a reused session: a refused
// recipient reported delivered and an accepted one bounced.
func TestUnsolicitedReplyDoesNotShiftResults(t *testing.T) {
	for _, chunking := range []bool{false, true} {
		name := map[bool]string{false: "data", true: "bdat"}[chunking]
		t.Run(name, func(t *testing.T) {
			s := newHarness(t)
			addHost(t, s, "mx.example.com", relaytest.HostConfig{
				NoChunking: !chunking,
				ExtraReply: "250 2.0.0 one more for luck\r\n",
				RcptReply: func(rcpt string) *relaytest.Reply {
					if rcpt == "gone@example.com" {
						return &relaytest.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
					}
					return nil
				},
			})
			s.AddDomain("example.com", "mx.example.com")
			c := s.Client()
			defer c.CloseIdleConnections()
			if _, err := c.Send(ctx(t), testMessage("first@example.com")); err != nil {
				t.Fatal(err)
			}
			for round := range 3 {
				res, _ := c.Send(ctx(t), testMessage("gone@example.com", "here@example.com"))
				for _, r := range res.Recipients {
					want := relay.Delivered
					if r.Recipient == "gone@example.com" {
						want = relay.Bounced
					}
					if r.Status != want {
						t.Errorf("round %d: %s is %v (%d %s), want %v", round, r.Recipient, r.Status, r.Code, r.Message, want)
					}
				}
			}
			for _, m := range s.Messages() {
				for _, to := range m.To {
					if to == "gone@example.com" {
						t.Errorf("message accepted for a refused recipient: %v", m.To)
					}
				}
			}
		})
	}
}
