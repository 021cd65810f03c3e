package relay_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// historyHarness is a host that refuses nobody@ (5.1.1) and defers later@
// once, and a Client with a memory store as queue, suppression list and
// history.
func historyHarness(t *testing.T) (*relaytest.Server, *relay.Client, *queue.MemoryStore) {
	t.Helper()
	s := newHarness(t)
	tried := map[string]int{}
	addHost(t, s, "mx.example.com", relaytest.HostConfig{DSN: true, RcptReply: func(rcpt string) *relaytest.Reply {
		switch {
		case strings.HasPrefix(rcpt, "nobody@"):
			return &relaytest.Reply{Code: 550, Enhanced: "5.1.1", Text: "no such user"}
		case strings.HasPrefix(rcpt, "later@"):
			tried[rcpt]++
			if tried[rcpt] == 1 {
				return &relaytest.Reply{Code: 451, Enhanced: "4.3.0", Text: "try again"}
			}
		}
		return nil
	}})
	s.AddDomain("example.com", "mx.example.com")
	store := &queue.MemoryStore{}
	c := s.Client()
	c.Store, c.Suppressions, c.History = store, store, store
	c.Retry = &queue.BackoffPolicy{Intervals: []time.Duration{20 * time.Millisecond}, Lifetime: time.Hour}
	return s, c, store
}

func TestHistoryKeepsOutcomes(t *testing.T) {
	_, c, store := historyHarness(t)
	events := newEventLog()
	c.Events = events.hook
	res, _ := c.SendWith(ctx(t), testMessage("ann@example.com", "nobody@example.com", "later@example.com"),
		&relay.SendOptions{Campaign: "welcome", Metadata: map[string]string{"customer": "42"}})
	if res == nil || res.QueueID == "" {
		t.Fatalf("result %+v", res)
	}
	id := res.QueueID
	runClient(t, c)
	events.waitFor(t, relay.EventDelivered, "later@example.com")

	rec, err := store.Record(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Campaign != "welcome" || rec.Metadata["customer"] != "42" || rec.Subject != "Grüße aus Köln" || rec.MessageID == "" || len(rec.Metadata) != 1 {
		t.Errorf("record %+v", rec)
	}
	by := map[string]queue.RecipientRecord{}
	for _, r := range rec.Recipients {
		by[r.Addr] = r
	}
	if r := by["ann@example.com"]; r.Status != "delivered" || r.Code != 250 || r.MX != "mx.example.com" || r.TLSVersion == "" || r.Attempts != 1 {
		t.Errorf("ann: %+v", r)
	}
	if r := by["nobody@example.com"]; r.Status != "bounced" || r.Enhanced != "5.1.1" || r.Category != "invalid-recipient" {
		t.Errorf("nobody: %+v", r)
	}
	if r := by["later@example.com"]; r.Status != "delivered" || r.Attempts != 2 {
		t.Errorf("later: %+v", r)
	}

	// A recipient's history is one call.
	recs, _, err := store.Records(ctx(t), queue.RecordFilter{Recipient: "ANN@example.com"})
	if err != nil || len(recs) != 1 || recs[0].ID != id || len(recs[0].Recipients) != 1 {
		t.Errorf("ann's history: %v %+v", err, recs)
	}
	// Every event of the Send names the record.
	for _, e := range events.all() {
		if e.MessageID != id {
			t.Errorf("%v event for %s names %q, want %q", e.Type, e.Recipient, e.MessageID, id)
		}
	}
	st := c.Stats()
	if st.Total.Sent != 3 || st.ByCampaign["welcome"].Delivered != 2 || st.ByCampaign["welcome"].Bounced != 1 {
		t.Errorf("stats: sent %d, campaign %+v", st.Total.Sent, st.ByCampaign["welcome"])
	}
	if len(st.Minutes) != relay.SeriesMinutes || len(st.Hours) != relay.SeriesHours {
		t.Fatalf("series of %d minutes, %d hours", len(st.Minutes), len(st.Hours))
	}
	if last := st.Minutes[len(st.Minutes)-1]; last.Counts.Delivered+st.Minutes[len(st.Minutes)-2].Counts.Delivered != 2 {
		t.Errorf("the last minutes count %+v", last)
	}
}

func TestHistoryNotesLateBounce(t *testing.T) {
	s, c, events, store, addr := bounceHarness(t, func(c *relay.Client) { c.History = c.Suppressions.(*queue.MemoryStore) })
	res, err := c.Send(ctx(t), testMessage("gone@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	m := sentTo(t, s, "gone@example.com")
	if code, msg := deliverInbound(t, addr, "", m.returnPath, postfixDSN(m, "failed", "5.1.1", "550 5.1.1 user unknown")); code != 250 {
		t.Fatalf("DSN refused: %d %s", code, msg)
	}
	e := events.waitFor(t, relay.EventBounced, "gone@example.com")
	recs, _, err := store.Records(ctx(t), queue.RecordFilter{Recipient: "gone@example.com"})
	if err != nil || len(recs) != 1 {
		t.Fatalf("history: %v %+v", err, recs)
	}
	r := recs[0].Recipients[0]
	if r.Status != "delivered" || len(r.Notes) != 1 || r.Notes[0].Type != "bounced" || !strings.Contains(r.Notes[0].Detail, "5.1.1") {
		t.Errorf("entry %+v", r)
	}
	if e.MessageID != recs[0].ID || res.Recipients[0].Status != relay.Delivered {
		t.Errorf("event names %q, record is %q", e.MessageID, recs[0].ID)
	}
}

func TestHistoryRetention(t *testing.T) {
	_, c, store := historyHarness(t)
	now := time.Now()
	relay.SetClock(c, func() time.Time { return now })
	c.Retention = 48 * time.Hour
	c.Send(ctx(t), testMessage("ann@example.com"))
	now = now.Add(36 * time.Hour)
	recent, _ := c.Send(ctx(t), testMessage("ann@example.com"))
	now = now.Add(24 * time.Hour)
	n, err := c.ExpireHistory(ctx(t))
	if err != nil || n != 1 {
		t.Fatalf("ExpireHistory = %d, %v", n, err)
	}
	recs, _, _ := store.Records(ctx(t), queue.RecordFilter{Recipient: "ann@example.com"})
	if len(recs) != 1 {
		t.Fatalf("%d records left", len(recs))
	}
	if recent == nil || len(recent.Recipients) != 1 {
		t.Fatalf("second send: %+v", recent)
	}
	// The recent one stays: its events name it.
	if _, err := store.Record(ctx(t), recs[0].ID); err != nil {
		t.Error(err)
	}
}

func TestForgetAndExport(t *testing.T) {
	_, c, store := historyHarness(t)
	if _, err := c.Send(ctx(t), testMessage("ann@example.com", "bob@example.com")); err != nil {
		t.Fatal(err)
	}
	if err := c.Suppress(ctx(t), "ann@example.com", "news", queue.Unsubscribed, ""); err != nil {
		t.Fatal(err)
	}
	held, err := c.EnqueueWith(ctx(t), testMessage("ann@example.com", "bob@example.com"), &relay.EnqueueOptions{Hold: true})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Export(ctx(t), "Ann@Example.com")
	if err != nil {
		t.Fatal(err)
	}
	var d relay.AddressData
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(d.Records) != 1 || len(d.Suppressions) != 1 || len(d.Jobs) != 1 || d.Jobs[0].ID != held || d.Jobs[0].State != "held" {
		t.Errorf("export:\n%s", out)
	}

	gone, err := c.Forget(ctx(t), "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(gone.Records) != 1 || len(gone.Suppressions) != 1 {
		t.Errorf("forgot %+v", gone)
	}
	if recs, _, _ := store.Records(ctx(t), queue.RecordFilter{Recipient: "ann@example.com"}); len(recs) != 0 {
		t.Errorf("history still has ann: %+v", recs)
	}
	if recs, _, _ := store.Records(ctx(t), queue.RecordFilter{Recipient: "bob@example.com"}); len(recs) != 1 {
		t.Errorf("bob's history: %+v", recs)
	}
	// The held message is held again without ann.
	jobs, _, _ := c.Queue().List(ctx(t), queue.ListRequest{State: queue.StateHeld})
	if len(jobs) != 1 || jobs[0].ID == held || len(jobs[0].Recipients) != 1 || jobs[0].Recipients[0].Addr != "bob@example.com" {
		t.Errorf("held jobs after Forget: %+v", jobs)
	}
	// The opt-out stays.
	if hits, _ := store.Suppressed(ctx(t), "news", []string{"ann@example.com"}, time.Now()); len(hits) != 1 {
		t.Errorf("Forget dropped the opt-out")
	}
	after, _ := c.Export(ctx(t), "ann@example.com")
	if !bytes.Contains(after, []byte(`"records": []`)) || !bytes.Contains(after, []byte(`"jobs": []`)) {
		t.Errorf("export after Forget:\n%s", after)
	}
}
