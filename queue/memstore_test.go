package queue_test

import (
	"testing"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/queuetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	queuetest.TestStore(t, func(t *testing.T) queue.Store { return &queue.MemoryStore{} })
}
