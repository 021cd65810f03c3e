package queue_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

func TestEnqueueBadInput(t *testing.T) {
	msg := []byte("Subject: x\r\n\r\nx\r\n")
	tests := []struct {
		name string
		job  *queue.Job
		want error
	}{
		{"nil job", nil, queue.ErrNoMessage},
		{"empty message", queue.NewJob("a@b.example", []string{"c@d.example"}, nil), queue.ErrNoMessage},
		{"no recipients", queue.NewJob("a@b.example", nil, msg), queue.ErrNoRecipients},
		{"duplicate", queue.NewJob("", []string{"c@d.example", "x@d.example", "c@D.EXAMPLE"}, msg), queue.ErrDuplicateRecipient},
		{"empty recipient", queue.NewJob("", []string{""}, msg), queue.ErrInvalid},
		{"CRLF in recipient", queue.NewJob("", []string{"c@d.example\r\nRCPT TO:<x@y>"}, msg), queue.ErrInvalid},
		{"space in sender", queue.NewJob("a b@c.example", []string{"c@d.example"}, msg), queue.ErrInvalid},
	}
	q := &queue.Queue{Store: &queue.MemoryStore{}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := q.Enqueue(context.Background(), tt.job); !errors.Is(err, tt.want) {
				t.Fatalf("Enqueue: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEnqueueClosedStore(t *testing.T) {
	s := &queue.MemoryStore{}
	s.Close()
	q := &queue.Queue{Store: s}
	_, err := q.Enqueue(context.Background(), queue.NewJob("", []string{"a@b.example"}, []byte("x")))
	if !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Enqueue: %v, want ErrClosed", err)
	}
}

func TestEnqueueFillsJob(t *testing.T) {
	s := &queue.MemoryStore{}
	q := &queue.Queue{Store: s}
	in := queue.NewJob("a@b.example", []string{"x@Dest.Example", "y@dest.example"}, []byte("x"))
	in.Recipients[0].State = queue.Delivered // ignored
	in.Attempts = 1                          // kept: tried once elsewhere
	in.LastError = "451 try later"
	in.Metadata = map[string]string{"ref": "42"}
	id, err := q.Enqueue(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	j, err := q.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if j.RoutingKey != "dest.example" || j.Attempts != 1 || j.LastError != "451 try later" || j.Recipients[0].State != queue.Pending ||
		j.Created.IsZero() || j.NextAttempt.Before(j.Created) || j.Metadata["ref"] != "42" {
		t.Fatalf("stored job: %+v", j)
	}
	in.Attempts = -1
	if _, err := q.Enqueue(context.Background(), in); !errors.Is(err, queue.ErrInvalid) {
		t.Errorf("Enqueue with negative Attempts: %v", err)
	}
	if _, err := q.Get(context.Background(), "nope"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("Get of an unknown id: %v", err)
	}
}

func TestIDTime(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 123456789, time.UTC)
	got, ok := queue.IDTime(queue.NewID(at))
	if !ok || !got.Equal(at) {
		t.Errorf("IDTime(NewID(%v)) = %v, %v", at, got, ok)
	}
	for _, id := range []string{"", "job-1", strings.Repeat("g", 32), strings.Repeat("A", 32), queue.NewID(at) + "0", queue.NewID(at)[:31] + "-"} {
		if _, ok := queue.IDTime(id); ok {
			t.Errorf("IDTime(%q) reports a time", id)
		}
	}
}
