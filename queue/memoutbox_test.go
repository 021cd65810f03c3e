package queue_test

import (
	"testing"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/queuetest"
)

func TestMemoryOutbox(t *testing.T) {
	queuetest.TestOutbox(t, func(t *testing.T) queue.OutboxStore { return &queue.MemoryStore{} })
}
