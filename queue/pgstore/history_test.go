package pgstore_test

import (
	"testing"

	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/queue/pgstore"
	"github.com/mxrelay/mxrelay/queue/queuetest"
)

func TestHistory(t *testing.T) {
	dsn := testDSN(t)
	queuetest.TestHistory(t, func(t *testing.T) queue.HistoryStore {
		return openStore(t, dsn, newSchema(t, dsn))
	}, queuetest.HistoryOptions{
		// A new store on the same schema, as a restarted process opens it.
		Reopen: func(t *testing.T, old queue.HistoryStore) queue.HistoryStore {
			s := old.(*pgstore.Store)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openStore(t, dsn, s.Schema())
		},
	})
}
