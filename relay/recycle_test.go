package relay_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// TestSendRecyclesBuffers sends different messages from many goroutines
// at once through one Client, which reuses the buffers it writes messages
// into: every message must arrive as it was sent, none with another's
// bytes (a buffer reused while a delivery still read it would show).
func TestSendRecyclesBuffers(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{TLS: relaytest.TLSNone})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	const senders, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m := testMessage(fmt.Sprintf("r%d-%d@example.com", g, i))
				// Sizes differ, so that a buffer grows and is reused.
				m.Text = strings.Repeat(fmt.Sprintf("message %d-%d\r\n", g, i), 1+(g*each+i)%97*40)
				m.HTML = ""
				res, err := c.Send(ctx(t), m)
				if err != nil || res.Count(relay.Delivered) != 1 {
					errs <- fmt.Errorf("message %d-%d: %v %+v", g, i, err, res)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	msgs := s.Messages()
	if len(msgs) != senders*each {
		t.Fatalf("received %d messages, want %d", len(msgs), senders*each)
	}
	for _, m := range msgs {
		var g, i int
		if _, err := fmt.Sscanf(m.To[0], "r%d-%d@example.com", &g, &i); err != nil {
			t.Fatalf("recipient %q", m.To[0])
		}
		line := fmt.Sprintf("message %d-%d\r\n", g, i)
		_, body, _ := strings.Cut(string(m.Data), "\r\n\r\n")
		if want := strings.Repeat(line, 1+(g*each+i)%97*40); body != want {
			t.Fatalf("%s received a body of %d octets that is not its own (%.60q…)", m.To[0], len(body), body)
		}
	}
}
