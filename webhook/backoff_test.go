package webhook

import (
	"net/http"
	"testing"
	"time"
)

func TestDefaultBackoff(t *testing.T) {
	want := []time.Duration{5 * time.Second, 5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second,
		80 * time.Second, 160 * time.Second, 320 * time.Second, 10 * time.Minute, 10 * time.Minute}
	for attempt := 0; attempt < 100; attempt++ {
		base := MaxBackoff
		if attempt < len(want) {
			base = want[attempt]
		}
		for range 20 {
			d := DefaultBackoff(attempt)
			if d > base || d < base*8/10 {
				t.Fatalf("DefaultBackoff(%d) = %v, want within [%v, %v]", attempt, d, base*8/10, base)
			}
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		code   int
		header string
		want   time.Duration
	}{
		{503, "120", 2 * time.Minute},
		{429, "7", 7 * time.Second},
		{429, " 7 ", 7 * time.Second},
		{503, "0", 0},
		{503, "3600", time.Hour},
		{503, "3601", time.Hour},
		{503, "99999999999999999999999", time.Hour},
		{503, now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{503, now.Add(48 * time.Hour).Format(http.TimeFormat), time.Hour},
		{503, now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{503, "-5", 0},
		{503, "soon", 0},
		{503, "1.5", 0},
		{503, "", 0},
		{500, "5", 0},
		{502, "5", 0},
		{301, "5", 0},
	}
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.code, Header: http.Header{}}
		if tt.header != "" {
			resp.Header.Set("Retry-After", tt.header)
		}
		if got := retryAfter(resp, now); got != tt.want {
			t.Errorf("retryAfter(%d, %q) = %v, want %v", tt.code, tt.header, got, tt.want)
		}
	}
}
