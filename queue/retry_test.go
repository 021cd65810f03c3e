package queue_test

import (
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

func TestDefaultRetryPolicy(t *testing.T) {
	created := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		attempts int
		age      time.Duration
		rand     float64
		want     time.Duration // wait from now; <0: expired
	}{
		{"first", 1, 0, 0.5, 5 * time.Minute},
		{"second", 2, time.Hour, 0.5, 10 * time.Minute},
		{"fifth", 5, time.Hour, 0.5, 80 * time.Minute},
		{"sixth", 6, time.Hour, 0.5, 2 * time.Hour},
		{"fortieth", 40, time.Hour, 0.5, 2 * time.Hour},
		{"jitter low", 1, 0, 0, 270 * time.Second},
		{"jitter high", 1, 0, 1, 330 * time.Second},
		{"zero attempts", 0, 0, 0.5, 5 * time.Minute},
		{"clamped to lifetime", 30, 5*24*time.Hour - time.Minute, 0.5, time.Minute},
		{"expired", 30, 5 * 24 * time.Hour, 0.5, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := queue.DefaultRetryPolicy()
			p.Rand = func() float64 { return tt.rand }
			now := created.Add(tt.age)
			at, ok := p.Retry(&queue.Job{Created: created, Attempts: tt.attempts}, now)
			if tt.want < 0 {
				if ok {
					t.Fatalf("Retry = %v, want expired", at)
				}
				return
			}
			if !ok || at.Sub(now) != tt.want {
				t.Fatalf("Retry = %v after %v (ok %v), want %v", at.Sub(now), tt.age, ok, tt.want)
			}
		})
	}
}

func TestBackoffPolicyJitterBounds(t *testing.T) {
	p := queue.DefaultRetryPolicy()
	now := time.Now()
	for i := range 200 {
		at, ok := p.Retry(&queue.Job{Created: now, Attempts: 1 + i%8}, now)
		if !ok {
			t.Fatal("expired")
		}
		base := []time.Duration{5, 10, 20, 40, 80, 120, 120, 120}[i%8] * time.Minute
		if d := at.Sub(now); d < base*9/10 || d > base*11/10 {
			t.Fatalf("attempt %d: wait %v outside %v ±10%%", 1+i%8, d, base)
		}
	}
}
