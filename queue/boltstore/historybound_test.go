package boltstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/boltstore"
)

// Records with Since and Until stop their walk at ids NewID made outside
// the range (give or take an hour): what is in the range is still found,
// at its edges too, and nothing outside it.
func TestRecordsBoundedByIDTime(t *testing.T) {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	var recs []queue.Record
	for _, ago := range []time.Duration{72 * time.Hour, 49 * time.Hour, 47 * time.Hour, 30 * time.Minute, 0} {
		at := now.Add(-ago)
		recs = append(recs, queue.Record{ID: queue.NewID(at), Created: at, Updated: at,
			Recipients: []queue.RecipientRecord{{Addr: "ann@example.com", Status: "delivered", Time: at}}})
	}
	// A Send's record: its id made a moment after the send started.
	start := now.Add(-48*time.Hour + time.Second)
	recs = append(recs, queue.Record{ID: queue.NewID(start.Add(2 * time.Second)), Created: start, Updated: start,
		Recipients: []queue.RecipientRecord{{Addr: "bob@example.com", Status: "delivered", Time: start}}})
	if err := s.Keep(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		since, until time.Duration // before now; 0 → unset
		want         int
	}{
		{since: 48 * time.Hour, want: 4},
		{since: 48 * time.Hour, until: 1 * time.Hour, want: 2},
		{since: 100 * time.Hour, want: 6},
		{until: 48 * time.Hour, want: 2},
	} {
		f := queue.RecordFilter{Limit: 2}
		if tc.since > 0 {
			f.Since = now.Add(-tc.since)
		}
		if tc.until > 0 {
			f.Until = now.Add(-tc.until)
		}
		n := 0
		for range 10 {
			got, next, err := s.Records(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range got {
				if !f.Match(&r) {
					t.Errorf("%+v: record created %v listed", tc, r.Created)
				}
			}
			n += len(got)
			if next == "" {
				break
			}
			f.Before = next
		}
		if n != tc.want {
			t.Errorf("since %v until %v: %d records, want %d", tc.since, tc.until, n, tc.want)
		}
	}
}
