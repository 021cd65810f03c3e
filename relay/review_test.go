package relay_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// reviewHarness is a host that takes everything and a Client that holds
// campaigns for review, with a memory store as queue and history, one
// queue worker (so that due jobs go out in the order they are due) and
// an event log.
func reviewHarness(t *testing.T) (*relaytest.Server, *relay.Client, *queue.MemoryStore, *eventLog) {
	t.Helper()
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	store := &queue.MemoryStore{}
	c := s.Client()
	c.Store, c.History = store, store
	c.Review.Campaigns = true
	c.QueueWorkers = 1
	events := newEventLog()
	c.Events = events.hook
	return s, c, store, events
}

// receivedFor is the messages the relaytest hosts took for rcpt.
func receivedFor(s *relaytest.Server, rcpt string) []*relaytest.Message {
	var out []*relaytest.Message
	for _, m := range s.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, rcpt) {
				out = append(out, m)
			}
		}
	}
	return out
}

// entryFor is the entry for addr in the history record id.
func entryFor(t *testing.T, store *queue.MemoryStore, id, addr string) queue.RecipientRecord {
	t.Helper()
	rec, err := store.Record(ctx(t), id)
	if err != nil {
		t.Fatalf("history record %s: %v", id, err)
	}
	for _, r := range rec.Recipients {
		if r.Addr == addr {
			return r
		}
	}
	t.Fatalf("record %s has no entry for %s: %+v", id, addr, rec.Recipients)
	return queue.RecipientRecord{}
}

// hasNote reports whether r has a note of type typ with detail.
func hasNote(r queue.RecipientRecord, typ, detail string) bool {
	for _, n := range r.Notes {
		if n.Type == typ && n.Detail == detail && !n.Time.IsZero() {
			return true
		}
	}
	return false
}

func mustHeld(t *testing.T, c *relay.Client, id string, want bool) *queue.Job {
	t.Helper()
	job, err := c.Queue().Get(ctx(t), id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	if job.Held != want {
		t.Fatalf("job %s: Held = %v, want %v", id, job.Held, want)
	}
	return job
}

// With Review.Campaigns, a campaign's message waits for Approve; other
// messages go out; the approval is in the history and an event.
func TestReviewHoldsCampaignsUntilApproved(t *testing.T) {
	s, c, store, events := reviewHarness(t)
	held, err := c.EnqueueWith(ctx(t), testMessage("held@example.com"), &relay.EnqueueOptions{Campaign: "spring"})
	if err != nil {
		t.Fatal(err)
	}
	// Due after the held one: were it not held, the one worker would
	// take it first.
	plain, err := c.EnqueueWith(ctx(t), testMessage("plain@example.com"),
		&relay.EnqueueOptions{Metadata: map[string]string{"customer": "42"}, NotBefore: time.Now().Add(20 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	nilOpts, err := c.Enqueue(ctx(t), testMessage("nil@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	mustHeld(t, c, held, true)
	mustHeld(t, c, plain, false)
	mustHeld(t, c, nilOpts, false)

	// Without Review.Campaigns, a campaign is not held.
	other := s.Client()
	other.Store = &queue.MemoryStore{}
	if id, err := other.EnqueueWith(ctx(t), testMessage("x@example.com"), &relay.EnqueueOptions{Campaign: "spring"}); err != nil {
		t.Fatal(err)
	} else {
		mustHeld(t, other, id, false)
	}

	runClient(t, c)
	events.waitFor(t, relay.EventDelivered, "plain@example.com")
	events.waitFor(t, relay.EventDelivered, "nil@example.com")
	if got := receivedFor(s, "held@example.com"); len(got) != 0 {
		t.Fatalf("the held message was delivered before approval: %v", got)
	}
	if job := mustHeld(t, c, held, true); job.Attempts != 0 {
		t.Fatalf("the held job had %d attempts", job.Attempts)
	}
	if _, err := store.Record(ctx(t), held); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("history record of the held message before review: %v", err)
	}

	if err := c.Approve(ctx(t), held, "alice@ops"); err != nil {
		t.Fatal(err)
	}
	d := events.waitFor(t, relay.EventDelivered, "held@example.com")
	if d.MessageID != held || d.Campaign != "spring" {
		t.Errorf("delivered event %+v", d)
	}
	got := receivedFor(s, "held@example.com")
	if len(got) != 1 || got[0].Host != "mx.example.com" {
		t.Fatalf("after approval, received %v", got)
	}
	r := entryFor(t, store, held, "held@example.com")
	if r.Status != "delivered" || r.MX != "mx.example.com" || !hasNote(r, "approved", "alice@ops") || len(r.Notes) != 1 {
		t.Errorf("history entry after approval: %+v", r)
	}
	if rec, _ := store.Record(ctx(t), held); rec.Campaign != "spring" || rec.From != "sender@example.org" {
		t.Errorf("record %+v", rec)
	}
	a := events.waitFor(t, relay.EventApproved, "held@example.com")
	if a.Operator != "alice@ops" || a.MessageID != held || a.Campaign != "spring" || a.Domain != "example.com" ||
		!strings.Contains(a.Message, "alice@ops") || a.Type.String() != "approved" {
		t.Errorf("approved event %+v", a)
	}
	// The approval came before the delivery.
	order := events.types()
	ia, id := -1, -1
	for i, s := range order {
		switch s {
		case "approved:held@example.com":
			ia = i
		case "delivered:held@example.com":
			id = i
		}
	}
	if ia < 0 || id < ia {
		t.Errorf("events in order %v", order)
	}
}

// Approve without a running queue: the record says "queued", approved
// by whom, before anything is sent, and the job is no longer held.
func TestApproveRecordsBeforeRelease(t *testing.T) {
	_, c, store, _ := reviewHarness(t)
	id, err := c.EnqueueWith(ctx(t), testMessage("ann@example.com", "bob@example.com"), &relay.EnqueueOptions{Campaign: "spring"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Approve(ctx(t), id, "Zoë Operator"); err != nil {
		t.Fatal(err)
	}
	job := mustHeld(t, c, id, false)
	if len(job.Remaining()) != 2 {
		t.Errorf("job after approval %+v", job)
	}
	for _, addr := range []string{"ann@example.com", "bob@example.com"} {
		r := entryFor(t, store, id, addr)
		if r.Status != "queued" || !hasNote(r, "approved", "Zoë Operator") {
			t.Errorf("%s: %+v", addr, r)
		}
	}
	// Approved is not yet sent.
	hs, err := c.HistoryStats(ctx(t), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if hs.Records != 1 || hs.Total.Sent != 0 || hs.ByCampaign["spring"].Sent != 0 {
		t.Errorf("history stats of an approved, unsent message: %d records, total %+v, campaign %+v", hs.Records, hs.Total, hs.ByCampaign["spring"])
	}
	// A second approval finds nothing held.
	if err := c.Approve(ctx(t), id, "Zoë Operator"); !errors.Is(err, relay.ErrNotHeld) {
		t.Errorf("second Approve: %v", err)
	}
}

// Reject removes the message unsent and records why and by whom.
func TestRejectRemovesHeldMessage(t *testing.T) {
	s, c, store, events := reviewHarness(t)
	rejected, err := c.EnqueueWith(ctx(t), testMessage("no@example.com"), &relay.EnqueueOptions{Campaign: "spring"})
	if err != nil {
		t.Fatal(err)
	}
	runClient(t, c)
	const reason = "wrong audience\tsee ticket 7"
	if err := c.Reject(ctx(t), rejected, "bob", reason); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Queue().Get(ctx(t), rejected); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Get after Reject: %v", err)
	}
	e := events.waitFor(t, relay.EventRejected, "no@example.com")
	if e.Operator != "bob" || e.MessageID != rejected || e.Campaign != "spring" || !strings.Contains(e.Message, reason) || e.Type.String() != "rejected" {
		t.Errorf("rejected event %+v", e)
	}

	// A message enqueued after it goes out; the rejected one never does.
	plain, err := c.Enqueue(ctx(t), testMessage("yes@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	events.waitFor(t, relay.EventDelivered, "yes@example.com")
	if got := receivedFor(s, "no@example.com"); len(got) != 0 {
		t.Fatalf("the rejected message was delivered: %v", got)
	}
	for _, ev := range events.all() {
		if ev.MessageID == rejected && ev.Type != relay.EventQueued && ev.Type != relay.EventRejected {
			t.Errorf("%v event for the rejected message", ev.Type)
		}
	}

	r := entryFor(t, store, rejected, "no@example.com")
	if r.Status != "rejected" || r.Reply != reason || !hasNote(r, "rejected", "bob") || len(r.Notes) != 1 {
		t.Errorf("history entry %+v", r)
	}
	hs, err := c.HistoryStats(ctx(t), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if hs.Records != 2 || hs.Total.Sent != 1 || hs.Total.Delivered != 1 || hs.ByCampaign["spring"].Sent != 0 {
		t.Errorf("history stats: %d records, total %+v, spring %+v", hs.Records, hs.Total, hs.ByCampaign["spring"])
	}
	var hourSent int64
	for _, p := range hs.Hours {
		hourSent += p.Counts.Sent
	}
	if hourSent != 1 {
		t.Errorf("the hours count %d sent, want 1", hourSent)
	}
	if _, err := store.Record(ctx(t), plain); err != nil {
		t.Errorf("record of the delivered message: %v", err)
	}
}

// Reject with no reason, and of a message held by EnqueueOptions.Hold.
func TestRejectWithoutReason(t *testing.T) {
	_, c, store, events := reviewHarness(t)
	id, err := c.EnqueueWith(ctx(t), testMessage("ann@example.com"), &relay.EnqueueOptions{Hold: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Reject(ctx(t), id, "bob", ""); err != nil {
		t.Fatal(err)
	}
	if r := entryFor(t, store, id, "ann@example.com"); r.Status != "rejected" || r.Reply != "" || !hasNote(r, "rejected", "bob") {
		t.Errorf("history entry %+v", r)
	}
	if e := events.waitFor(t, relay.EventRejected, "ann@example.com"); e.Operator != "bob" {
		t.Errorf("event %+v", e)
	}
}

func TestReviewErrors(t *testing.T) {
	_, c, store, events := reviewHarness(t)
	// No Run: the jobs stay where they are.
	queued, err := c.Enqueue(ctx(t), testMessage("ann@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Approve(ctx(t), queued, "alice"); !errors.Is(err, relay.ErrNotHeld) {
		t.Errorf("Approve of a job not held: %v", err)
	}
	if err := c.Reject(ctx(t), queued, "alice", "no"); !errors.Is(err, relay.ErrNotHeld) {
		t.Errorf("Reject of a job not held: %v", err)
	}
	mustHeld(t, c, queued, false)

	unknown := queue.NewID(time.Now())
	if err := c.Approve(ctx(t), unknown, "alice"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Approve of an unknown id: %v", err)
	}
	if err := c.Reject(ctx(t), unknown, "alice", ""); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Reject of an unknown id: %v", err)
	}

	bare := &relay.Client{}
	if err := bare.Approve(ctx(t), queued, "alice"); !errors.Is(err, relay.ErrNoStore) {
		t.Errorf("Approve without a Store: %v", err)
	}
	if err := bare.Reject(ctx(t), queued, "alice", ""); !errors.Is(err, relay.ErrNoStore) {
		t.Errorf("Reject without a Store: %v", err)
	}

	held, err := c.EnqueueWith(ctx(t), testMessage("bob@example.com"), &relay.EnqueueOptions{Campaign: "spring"})
	if err != nil {
		t.Fatal(err)
	}
	for _, by := range []string{"", "a\nb", "a\rb", "nul\x00", "del\x7f", "\xff\xfe", "ok\xc3", "\u0085next", strings.Repeat("a", 201)} {
		if err := c.Approve(ctx(t), held, by); !errors.Is(err, relay.ErrInvalidOperator) {
			t.Errorf("Approve by %q: %v", by, err)
		}
		if err := c.Reject(ctx(t), held, by, "reason"); !errors.Is(err, relay.ErrInvalidOperator) {
			t.Errorf("Reject by %q: %v", by, err)
		}
	}
	for _, reason := range []string{"bad\x01reason", "two\nlines", "\x1b[31mred", "\xff", strings.Repeat("r", 1001)} {
		if err := c.Reject(ctx(t), held, "alice", reason); !errors.Is(err, relay.ErrInvalidOperator) {
			t.Errorf("Reject for %q: %v", reason, err)
		}
	}
	// Nothing happened to the held job: still held, no record, no event.
	mustHeld(t, c, held, true)
	if _, err := store.Record(ctx(t), held); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("a failed review left a record: %v", err)
	}
	for _, e := range events.all() {
		if e.Type == relay.EventApproved || e.Type == relay.EventRejected {
			t.Errorf("a failed review emitted %+v", e)
		}
	}

	// The limits are inclusive: 200 bytes of name, 1,000 of reason.
	long, err := c.EnqueueWith(ctx(t), testMessage("cy@example.com"), &relay.EnqueueOptions{Campaign: "spring"})
	if err != nil {
		t.Fatal(err)
	}
	name := strings.Repeat("ä", 100) // 200 bytes
	if err := c.Reject(ctx(t), long, name, strings.Repeat("r", 1000)); err != nil {
		t.Errorf("Reject by a 200-byte name for a 1,000-byte reason: %v", err)
	}
	if err := c.Approve(ctx(t), held, strings.Repeat("b", 200)); err != nil {
		t.Errorf("Approve by a 200-byte name: %v", err)
	}
	mustHeld(t, c, held, false)
}
