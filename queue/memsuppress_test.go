package queue_test

import (
	"testing"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/queuetest"
)

func TestMemorySuppressions(t *testing.T) {
	queuetest.TestSuppressions(t, func(t *testing.T) queue.SuppressionStore { return &queue.MemoryStore{} })
}
