package relay_test

import (
	"bytes"
	"sync"
)

// lockedTranscript is a DebugWriter for tests: the pool may still write to it
// (the QUIT of an idle session it closes) while the test reads it.
type lockedTranscript struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *lockedTranscript) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.Write(p)
}

func (t *lockedTranscript) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
