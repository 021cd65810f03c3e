package queue_test

import (
	"testing"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/queuetest"
)

func TestMemoryHistory(t *testing.T) {
	queuetest.TestHistory(t, func(t *testing.T) queue.HistoryStore { return &queue.MemoryStore{} })
}

func TestFoldAddr(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"ann@x.example", "ann@x.example"},
		{"Ann@X.Example", "ann@x.example"},
		{"ÄB@x.example", "Äb@x.example"}, // ASCII letters only
		{"Äb@x.example", "Äb@x.example"},
		{"JÖRG@X", "jÖrg@x"},
	} {
		if got := queue.FoldAddr(c.in); got != c.want {
			t.Errorf("FoldAddr(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
