package relay_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
)

// recorder is a Transport that delivers everything and remembers the
// envelopes it was given.
type recorder struct {
	mu   sync.Mutex
	envs []relay.Envelope
	// short makes Deliver return one result too few.
	short bool
}

func (r *recorder) Deliver(ctx context.Context, env *relay.Envelope) []relay.RecipientResult {
	r.mu.Lock()
	r.envs = append(r.envs, *env)
	r.mu.Unlock()
	out := make([]relay.RecipientResult, len(env.To))
	for i, to := range env.To {
		out[i] = relay.RecipientResult{Recipient: to, Status: relay.Delivered, Code: 250}
	}
	if r.short {
		out = out[1:]
	}
	return out
}

// The Client hands each domain's envelope to its Transport, signed data
// and all, and keeps the results in the order of the message.
func TestTransportGetsOneEnvelopePerDomain(t *testing.T) {
	tr := &recorder{}
	c := &relay.Client{Transport: tr}
	res, err := c.Send(ctx(t), testMessage("a@example.com", "b@example.net", "c@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{res.Recipients[0].Recipient, res.Recipients[1].Recipient, res.Recipients[2].Recipient}; !slices.Equal(got, []string{"a@example.com", "b@example.net", "c@example.com"}) {
		t.Errorf("order %v", got)
	}
	if len(tr.envs) != 2 {
		t.Fatalf("%d envelopes", len(tr.envs))
	}
	for _, e := range tr.envs {
		if e.From != "sender@example.org" || len(e.Data) == 0 || e.Attempts != 0 {
			t.Errorf("envelope %+v", e)
		}
		if e.Domain == "example.com" && !slices.Equal(e.To, []string{"a@example.com", "c@example.com"}) {
			t.Errorf("example.com recipients %v", e.To)
		}
	}
}

// A transport that loses a result gets every recipient of the envelope
// deferred, not dropped.
func TestTransportShortResultsDeferred(t *testing.T) {
	c := &relay.Client{Transport: &recorder{short: true}}
	res, err := c.Send(ctx(t), testMessage("a@example.com", "b@example.com"))
	if err == nil || res.Count(relay.Deferred) != 2 {
		t.Fatalf("%v, %+v", err, res)
	}
}

// The Client's shortcuts for the default transport beside a Transport of
// the caller's would be ignored: that is a configuration error.
func TestTransportWithShortcutsRefused(t *testing.T) {
	c := &relay.Client{Transport: &recorder{}, Hostname: "mail.example.org"}
	if res, err := c.Send(ctx(t), testMessage("a@example.com")); !errors.Is(err, relay.ErrInvalidConfig) || res != nil {
		t.Fatalf("%v, %+v", err, res)
	}
}

// Fallback sends a message's first attempts with Primary and the later
// ones with Secondary.
func TestFallbackAfterAttempts(t *testing.T) {
	primary, secondary := &recorder{}, &recorder{}
	c := &relay.Client{Transport: &relay.Fallback{Primary: primary, Secondary: secondary, After: 2}}
	if _, err := c.Send(ctx(t), testMessage("a@example.com")); err != nil {
		t.Fatal(err)
	}
	data := []byte("From: sender@example.org\r\n\r\nhi\r\n")
	for attempts, want := range map[int]*recorder{1: primary, 2: secondary, 5: secondary} {
		job := queue.NewJob("sender@example.org", []string{"a@example.com"}, data)
		job.Attempts = attempts
		out := c.Deliver(ctx(t), job)
		if out[0].Status != queue.Delivered {
			t.Errorf("attempt %d: %+v", attempts, out)
		}
		want.mu.Lock()
		got := want.envs[len(want.envs)-1].Attempts
		want.mu.Unlock()
		if got != attempts {
			t.Errorf("attempt %d went to the other transport", attempts)
		}
	}
	if len(primary.envs) != 2 || len(secondary.envs) != 2 {
		t.Errorf("primary %d, secondary %d envelopes; want 2 and 2", len(primary.envs), len(secondary.envs))
	}
	if err := (&relay.Client{Transport: &relay.Fallback{Primary: primary}}).Run(ctx(t)); err == nil {
		t.Error("Run without a Store or Secondary succeeded")
	}
	if _, err := (&relay.Client{Transport: &relay.Fallback{Primary: primary}}).Send(ctx(t), testMessage("a@example.com")); !errors.Is(err, relay.ErrInvalidConfig) {
		t.Errorf("Fallback without Secondary: %v", err)
	}
}
