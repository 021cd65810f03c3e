package main

import (
	"fmt"
	"slices"
	"testing"

	"github.com/mxrelay/mxrelay/relay"
)

// outcomes turns "d.b.x" into events for domain: d delivered, b bounced,
// x expired, q queued, a attempt, f deferred (the last three never count).
func outcomes(domain, s string) []relay.Event {
	types := map[rune]relay.EventType{
		'd': relay.EventDelivered, 'b': relay.EventBounced, 'x': relay.EventExpired,
		'q': relay.EventQueued, 'a': relay.EventAttempt, 'f': relay.EventDeferred,
	}
	var out []relay.Event
	for _, c := range s {
		out = append(out, relay.Event{Type: types[c], Domain: domain, Code: 550})
	}
	return out
}

func TestBounceMonitor(t *testing.T) {
	tests := []struct {
		name   string
		window int
		events []relay.Event
		want   []string // "domain alert|resolved n/m" per notification
	}{
		{"exactly the threshold does not alert", 0, outcomes("a", "ddddbddddb"), nil},
		{"above the threshold alerts once", 0, outcomes("a", "dddbdddbdbbbbb"),
			[]string{"a alert 3/10"}},
		{"too few messages never alert", 0, outcomes("a", "bbbbbbbbb"), nil},
		{"the tenth message alerts", 0, outcomes("a", "bbbbbbbbbb"), []string{"a alert 10/10"}},
		{"expired counts as bounced", 0, outcomes("a", "xxxddddddd"), []string{"a alert 3/10"}},
		{"queued, attempts and deferrals do not count", 0, outcomes("a", "qafqafbbbbbbbbb"), nil},
		{"domains are apart", 0, append(outcomes("a", "bbbbbbbbb"), outcomes("b", "bddddddddd")...), nil},
		{"recovers when bounces leave the window", 10,
			outcomes("a", "bbbbbbbbbb"+"dddddddd"+"bbb"),
			[]string{"a alert 10/10", "a resolved 2/10", "a alert 3/10"}},
		{"a window smaller than the minimum is widened", 5,
			outcomes("a", "ddddddbbb"+"b"), []string{"a alert 4/10"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			m := &BounceMonitor{Threshold: 0.2, MinMessages: 10, Window: tt.window, Notify: func(a Alert) {
				kind := "alert"
				if a.Resolved {
					kind = "resolved"
				}
				got = append(got, fmt.Sprintf("%s %s %d/%d", a.Domain, kind, a.Bounced, a.Outcomes))
			}}
			for _, e := range tt.events {
				m.Observe(e)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("notifications %q, want %q", got, tt.want)
			}
		})
	}
}
