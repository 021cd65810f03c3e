package queuetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// testOutboxRoundTrip: items come back with their times (as instants, to
// the microsecond, in any zone, before 1970 and far ahead) and their data
// (binary, empty, at the size limit), for an endpoint name of the greatest
// length too.
func testOutboxRoundTrip(t testing.TB, s queue.OutboxStore) {
	ep := "https://hooks.x.example/in?k=v&ü=ß #1"
	long := strings.Repeat("e", queue.MaxEndpointLen)
	zone := time.FixedZone("UTC+05:30", 5*3600+1800)
	big := bytes.Repeat([]byte{0, 1, 0xff, 'x'}, queue.MaxOutboxItemSize/4)
	entries := []queue.OutboxEntry{
		{Endpoint: ep, Time: oT0, Data: []byte(`{"event":"delivered","id":"m1"}`)},
		{Endpoint: ep, Time: oAt(time.Microsecond).In(zone), Data: []byte("\x00binary\xff\r\n")},
		{Endpoint: ep, Time: time.Date(1969, 12, 31, 23, 59, 59, 999_999_000, time.UTC), Data: nil},
		{Endpoint: ep, Time: time.Date(2200, 1, 1, 0, 0, 0, 1000, time.UTC), Data: []byte{}},
		{Endpoint: ep, Time: oAt(-time.Hour), Data: big},
		{Endpoint: long, Time: oAt(time.Second).In(zone), Data: []byte("a long name")},
	}
	oAppend(t, s, entries...)
	b := oClaimSome(t, s, oReq(ep, 100, oT0))
	oCheckItems(t, "ClaimOutbox", b.Items, entries[:5])
	if b.Attempts != 0 {
		t.Fatalf("ClaimOutbox: Attempts %d of a batch never tried, want 0", b.Attempts)
	}
	oCheckState(t, "Outboxes while leased", oState(t, s, ep),
		queue.OutboxState{Endpoint: ep, Pending: 5, Oldest: oT0, Owner: "sender"})
	lb := oClaimSome(t, s, oReq(long, 100, oT0))
	oCheckItems(t, "ClaimOutbox of the longest name", lb.Items, entries[5:])
	oAck(t, s, b)
	oAck(t, s, lb)
	oClaimNone(t, s, oReq(ep, 100, oAt(time.Hour)), "after AckOutbox of every item")
	oClaimNone(t, s, oReq(long, 100, oAt(time.Hour)), "after AckOutbox of every item")
	oCheckStates(t, "Outboxes after AckOutbox of every item", s)
}

// testOutboxOrder: an endpoint's items are claimed in the order they
// were appended, over many calls that each append to several endpoints,
// in batches of any size, with Seq increasing throughout.
func testOutboxOrder(t testing.TB, s queue.OutboxStore) {
	eps := []string{"a", "b", "c"}
	want := map[string][]queue.OutboxEntry{}
	n := map[string]int{}
	for c := range 40 {
		var call []queue.OutboxEntry
		for k := range c%6 + 1 {
			ep := eps[(c+k)%2] // a and b alternate within a call
			if c%7 == 3 {
				ep = "c" // and some calls are c's alone
			}
			e := oEntry(ep, n[ep])
			n[ep]++
			call = append(call, e)
			want[ep] = append(want[ep], e)
		}
		oAppend(t, s, call...)
	}
	for i, ep := range eps {
		got := oDrain(t, s, ep, []int{7, 1, 3}[i], oT0)
		for j := 1; j < len(got); j++ {
			if got[j].Seq <= got[j-1].Seq {
				t.Fatalf("endpoint %q: Seq %d claimed after %d: not increasing", ep, got[j].Seq, got[j-1].Seq)
			}
		}
		oCheckItems(t, fmt.Sprintf("the items of %q in the order claimed", ep), got, want[ep])
	}
}

// testOutboxEndpoints: endpoints are independent, whatever their names
// share: one's lease, retry or ack does not touch another's items or
// schedule.
func testOutboxEndpoints(t testing.TB, s queue.OutboxStore) {
	eps := []string{"a", "a/b", "ab", "a\u00e9", "A"}
	for round := range 2 {
		var call []queue.OutboxEntry
		for _, ep := range eps {
			call = append(call, oEntry(ep, round*2), oEntry(ep, round*2+1))
		}
		oAppend(t, s, call...)
	}
	ba := oClaimSome(t, s, oReq("a", 2, oT0))
	oCheckItems(t, `ClaimOutbox("a")`, ba.Items, oEntries("a", 0, 2))
	bab := oClaimSome(t, s, oReq("a/b", 1, oT0))
	oCheckItems(t, `ClaimOutbox("a/b") while "a" is leased`, bab.Items, oEntries("a/b", 0, 1))
	oRetry(t, s, bab, oAt(time.Hour), "down")
	bx := oClaimSome(t, s, oReq("ab", 10, oT0))
	oCheckItems(t, `ClaimOutbox("ab") while "a" is leased and "a/b" waits`, bx.Items, oEntries("ab", 0, 4))
	oAck(t, s, bx)
	oClaimNone(t, s, oReq("a/b", 10, oT0), "before its NextAttempt")
	oClaimNone(t, s, oReq("a", 10, oT0), "while leased")
	oClaimNone(t, s, oReq("a/", 10, oT0), "of an endpoint never appended to")
	oAck(t, s, ba)
	oCheckStates(t, "Outboxes", s,
		queue.OutboxState{Endpoint: "A", Pending: 4, Oldest: oT0},
		queue.OutboxState{Endpoint: "a", Pending: 2, Oldest: oEntry("a", 2).Time},
		queue.OutboxState{Endpoint: "a/b", Pending: 4, Oldest: oT0, Attempts: 1, NextAttempt: oAt(time.Hour), LastError: "down"},
		queue.OutboxState{Endpoint: "a\u00e9", Pending: 4, Oldest: oT0})
	for ep, want := range map[string][]queue.OutboxEntry{
		"a": oEntries("a", 2, 4), "a/b": oEntries("a/b", 0, 4), "ab": nil, "a\u00e9": oEntries("a\u00e9", 0, 4), "A": oEntries("A", 0, 4),
	} {
		oCheckItems(t, fmt.Sprintf("the items left of %q", ep), oDrain(t, s, ep, 10, oAt(time.Hour)), want)
	}
}

// testOutboxAppendAllOrNone: an AppendOutbox with one invalid entry, in
// any place, gives ErrInvalid and stores none of its entries; one of no
// entries stores nothing.
func testOutboxAppendAllOrNone(t testing.TB, s queue.OutboxStore) {
	ctx := context.Background()
	oAppend(t, s, oEntry("good", 0))
	oAppend(t, s)
	bad := []queue.OutboxEntry{
		{Endpoint: "", Time: oT0, Data: []byte("x")},
		{Endpoint: strings.Repeat("e", queue.MaxEndpointLen+1), Time: oT0, Data: []byte("x")},
		{Endpoint: "a\nb", Time: oT0},
		{Endpoint: "a\rb", Time: oT0},
		{Endpoint: "a\x00b", Time: oT0},
		{Endpoint: "a\tb", Time: oT0},
		{Endpoint: "a\x7fb", Time: oT0},
		{Endpoint: "good", Data: []byte("no time")},
		{Endpoint: "good", Time: oT0, Data: make([]byte, queue.MaxOutboxItemSize+1)},
	}
	for i, e := range bad {
		for pos := range 3 {
			call := []queue.OutboxEntry{oEntry("good", 1), oEntry("other", 0)}
			call = append(call[:pos], append([]queue.OutboxEntry{e}, call[pos:]...)...)
			if err := s.AppendOutbox(ctx, call...); !errors.Is(err, queue.ErrInvalid) {
				t.Fatalf("AppendOutbox with invalid entry %d (endpoint %.20q, %d bytes of data, time %s) at %d: %v, want ErrInvalid",
					i, e.Endpoint, len(e.Data), oWhen(e.Time), pos, err)
			}
		}
	}
	oCheckStates(t, "Outboxes after the refused calls", s, queue.OutboxState{Endpoint: "good", Pending: 1, Oldest: oT0})
	oCheckItems(t, `the items of "good"`, oDrain(t, s, "good", 10, oT0), oEntries("good", 0, 1))
	oClaimNone(t, s, oReq("other", 10, oT0), "after AppendOutbox refused every call that named it")
}

// testOutboxClaimLimits: a claim takes up to Max items and, with
// MaxBytes, no more than MaxBytes octets of Data, except that the first
// item is always taken; the next claim goes on after the batch.
func testOutboxClaimLimits(t testing.TB, s queue.OutboxStore) {
	ten := []int{100, 100, 100, 100, 100, 100, 100, 100, 100, 100}
	for i, c := range []struct {
		what          string
		sizes         []int
		max, maxBytes int
		want          int
	}{
		{"Max 3", ten, 3, 0, 3},
		{"Max over the items", ten, 100, 0, 10},
		{"Max 1 with a large MaxBytes", ten, 1, 1 << 20, 1},
		{"MaxBytes between two items' ends", ten, 100, 250, 2},
		{"MaxBytes at an item's end", ten, 100, 300, 3},
		{"MaxBytes under the first item", ten, 100, 50, 1},
		{"MaxBytes and a smaller Max", ten, 2, 1000, 2},
		{"negative MaxBytes (no limit)", ten, 100, -1, 10},
		{"a first item over MaxBytes, then empty ones", []int{500, 0, 0}, 10, 100, 1},
		{"empty items under MaxBytes", []int{0, 0, 100, 0, 50}, 10, 100, 4},
	} {
		ep := fmt.Sprintf("limits-%d", i)
		var entries []queue.OutboxEntry
		for j, n := range c.sizes {
			entries = append(entries, queue.OutboxEntry{Endpoint: ep, Time: oAt(time.Duration(j) * time.Second),
				Data: bytes.Repeat([]byte{byte('a' + j)}, n)})
		}
		oAppend(t, s, entries...)
		r := oReq(ep, c.max, oT0)
		r.MaxBytes = c.maxBytes
		b := oClaimSome(t, s, r)
		oCheckItems(t, fmt.Sprintf("ClaimOutbox with %s (Max %d, MaxBytes %d)", c.what, c.max, c.maxBytes), b.Items, entries[:c.want])
		oAck(t, s, b)
		oCheckItems(t, fmt.Sprintf("the items left after %s", c.what), oDrain(t, s, ep, 100, oT0), entries[c.want:])
	}
}

// testOutboxClaimInvalid: a claim of Max < 1 or Lease <= 0 gives
// ErrInvalid and takes no lease.
func testOutboxClaimInvalid(t testing.TB, s queue.OutboxStore) {
	oAppend(t, s, oEntry("ep", 0))
	for _, ep := range []string{"ep", "unknown"} {
		for _, r := range []queue.OutboxClaim{
			{Endpoint: ep, Owner: "x", Max: 0, Now: oT0, Lease: time.Minute},
			{Endpoint: ep, Owner: "x", Max: -1, Now: oT0, Lease: time.Minute},
			{Endpoint: ep, Owner: "x", Max: 5, Now: oT0, Lease: 0},
			{Endpoint: ep, Owner: "x", Max: 5, Now: oT0, Lease: -time.Second},
		} {
			b, err := s.ClaimOutbox(context.Background(), r)
			if !errors.Is(err, queue.ErrInvalid) || b != nil {
				t.Fatalf("ClaimOutbox(%q) with Max %d and Lease %v: %v and a batch %v, want ErrInvalid and none",
					ep, r.Max, r.Lease, err, b != nil)
			}
		}
	}
	oCheckStates(t, "Outboxes after the refused claims", s, queue.OutboxState{Endpoint: "ep", Pending: 1, Oldest: oT0})
	oCheckItems(t, "a claim after the refused ones", oClaimSome(t, s, oReq("ep", 1, oT0)).Items, oEntries("ep", 0, 1))
}
