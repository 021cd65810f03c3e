package queuetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

func testHoldRelease(t *testing.T, s queue.Store) {
	held := job(1, "example.com")
	held.Held = true
	other := job(2, "example.com")
	put(t, s, held, other)
	got := claim(t, s, queue.ClaimRequest{Max: 5, Now: t0.Add(time.Hour)})
	if !slices.Equal(ids(got), []string{other.ID}) {
		t.Fatalf("Claim: %v, want only the job not held", ids(got))
	}
	set(t, s, held.ID, queue.ActionHold) // holding twice is fine
	set(t, s, held.ID, queue.ActionRelease)
	if get(t, s, held.ID).Held {
		t.Fatal("still held after Release")
	}
	got = append(got, claim(t, s, queue.ClaimRequest{Max: 5, Now: t0.Add(time.Hour)})...)
	if !slices.Equal(ids(got), []string{other.ID, held.ID}) {
		t.Fatalf("Claim after Release: %v, want %s", ids(got), held.ID)
	}
	for _, j := range got {
		j.Recipients[0].State, j.Recipients[1].State = queue.Delivered, queue.Delivered
		finish(t, s, j)
	}
	// Hold a queued job: gone from Claim until released.
	third := job(3, "example.com")
	put(t, s, third)
	set(t, s, third.ID, queue.ActionHold)
	set(t, s, third.ID, queue.ActionHold)
	if got := claim(t, s, queue.ClaimRequest{Max: 5, Now: t0.Add(2 * time.Hour)}); len(got) != 0 {
		t.Fatalf("claimed a held job: %v", ids(got))
	}
	set(t, s, third.ID, queue.ActionRelease)
	set(t, s, third.ID, queue.ActionRelease)
	if got := claim(t, s, queue.ClaimRequest{Max: 5, Now: t0.Add(2 * time.Hour)}); !slices.Equal(ids(got), []string{third.ID}) {
		t.Fatalf("Claim after Release: %v", ids(got))
	}
}

func testHoldActive(t *testing.T, s queue.Store) {
	put(t, s, job(1, "example.com"))
	j := claim(t, s, queue.ClaimRequest{Max: 1, Now: t0})[0]
	set(t, s, j.ID, queue.ActionHold)
	if st := stats(t, s); st.Held != 1 || st.Active != 0 {
		t.Errorf("Stats: %+v, want 1 held", st)
	}
	j.Attempts = 1
	j.Recipients[0].State = queue.Deferred
	finish(t, s, j) // the attempt in flight still records its outcome
	got := get(t, s, j.ID)
	if !got.Held || got.Attempts != 1 {
		t.Fatalf("after Finish: held %v attempts %d, want held with 1 attempt", got.Held, got.Attempts)
	}
	if got := claim(t, s, queue.ClaimRequest{Max: 1, Now: t0.Add(time.Hour)}); len(got) != 0 {
		t.Fatal("claimed a held job")
	}
	set(t, s, j.ID, queue.ActionRelease)
	if got := claim(t, s, queue.ClaimRequest{Max: 1, Now: t0.Add(time.Hour)}); len(got) != 1 {
		t.Fatal("released job not claimed")
	}
}

func testCancel(t *testing.T, s queue.Store) {
	a, b := job(1, "example.com"), job(2, "example.com")
	put(t, s, a, b)
	set(t, s, a.ID, queue.ActionCancel)
	if _, err := s.Get(context.Background(), a.ID); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Get after Cancel: %v, want ErrNotFound", err)
	}
	got := claim(t, s, queue.ClaimRequest{Max: 5, Now: t0})
	if !slices.Equal(ids(got), []string{b.ID}) {
		t.Fatalf("Claim: %v, want %s", ids(got), b.ID)
	}
	set(t, s, b.ID, queue.ActionCancel) // cancel an active job
	got[0].Recipients[0].State = queue.Delivered
	if err := s.Finish(context.Background(), got[0]); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Finish of a cancelled job: %v, want ErrNotFound", err)
	}
	if st := stats(t, s); st != (queue.Stats{}) {
		t.Fatalf("Stats: %+v, want zero", st)
	}
	if got := claim(t, s, queue.ClaimRequest{Max: 5, Now: t0.Add(time.Hour)}); len(got) != 0 {
		t.Fatalf("claimed a cancelled job")
	}
}

func testListPaging(t *testing.T, s queue.Store) {
	var all, held, queued []string
	for i := range 25 {
		j := job(i, "example.com")
		j.Held = i%3 == 0
		put(t, s, j)
		all = append(all, j.ID)
		if j.Held {
			held = append(held, j.ID)
		} else {
			queued = append(queued, j.ID)
		}
	}
	active := ids(claim(t, s, queue.ClaimRequest{Max: 4, Now: t0}))
	queued = slices.DeleteFunc(queued, func(id string) bool { return slices.Contains(active, id) })
	slices.Sort(active)
	for _, tc := range []struct {
		state queue.State
		want  []string
	}{
		{queue.StateAny, all}, {queue.StateHeld, held}, {queue.StateQueued, queued}, {queue.StateActive, active},
	} {
		var got []string
		after := ""
		for page := 0; ; page++ {
			if page > 30 {
				t.Fatalf("List(%v): no end after 30 pages", tc.state)
			}
			jobs, next, err := s.List(context.Background(), queue.ListRequest{State: tc.state, After: after, Limit: 4})
			if err != nil {
				t.Fatalf("List(%v): %v", tc.state, err)
			}
			if len(jobs) > 4 {
				t.Fatalf("List(%v): %d jobs in a page of 4", tc.state, len(jobs))
			}
			for _, j := range jobs {
				if j.Message != nil {
					t.Fatalf("List(%v): job %s has its message", tc.state, j.ID)
				}
				if queue.StateOf(j) != tc.state && tc.state != queue.StateAny {
					t.Fatalf("List(%v): job %s is %v", tc.state, j.ID, queue.StateOf(j))
				}
			}
			got = append(got, ids(jobs)...)
			if next == "" {
				break
			}
			after = next
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("List(%v) pages: %v\nwant %v", tc.state, got, tc.want)
		}
	}
}

func testStats(t *testing.T, s queue.Store) {
	for i := range 10 {
		j := job(i, "example.com")
		j.Held = i < 3
		put(t, s, j)
	}
	claim(t, s, queue.ClaimRequest{Max: 2, Now: t0})
	if st := stats(t, s); st != (queue.Stats{Queued: 5, Active: 2, Held: 3}) {
		t.Fatalf("Stats: %+v, want 5 queued, 2 active, 3 held", st)
	}
}
