package pgstore_test

import (
	"testing"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/queuetest"
)

// TestLimits runs the LimitStore suite on two stores with pools of their
// own sharing one schema, as two instances of an application do.
func TestLimits(t *testing.T) {
	dsn := testDSN(t)
	queuetest.TestLimits(t, func(t *testing.T) (queue.LimitStore, queue.LimitStore) {
		schema := newSchema(t, dsn)
		return openStore(t, dsn, schema), openStore(t, dsn, schema)
	})
}
