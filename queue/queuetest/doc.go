// Package queuetest is the conformance suite for queue.Store
// implementations: ours (queue.MemoryStore, queue/boltstore,
// queue/pgstore) and any a user writes.
//
// Call TestStore from a test with a function that returns a new, empty
// store:
//
//	func TestConformance(t *testing.T) {
//		queuetest.TestStore(t, func(t *testing.T) queue.Store {
//			s, err := mystore.Open(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite passes the time explicitly (ClaimRequest.Now), so it never
// sleeps. Stores must keep times to at least the microsecond.
package queuetest
