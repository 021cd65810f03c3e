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
// A durable store also gives StoreOptions.Reopen, which closes a store
// and opens its storage again, so that the suite can check that jobs,
// their data, attempts, holds and leases survive a restart:
//
//	queuetest.TestStore(t, newStore, queuetest.StoreOptions{
//		Reopen: func(t *testing.T, old queue.Store) queue.Store {
//			s := old.(*mystore.Store)
//			s.Close()
//			return open(t, s.Dir()) // the same storage as before
//		},
//	})
//
// Without Reopen, that check is skipped and says so.
//
// A store that implements the optional queue.PutLeaser or
// queue.FinishClaimer is checked for them too (a job leased at Put is
// leased as Claim would lease it, never when held or scheduled later, and
// counts against the per-key limit; its lease ends and survives reopening
// as Claim's do; FinishClaim finishes and claims as one change); for a
// store without them those checks are skipped.
//
// The suite passes the time explicitly (ClaimRequest.Now), so it never
// sleeps. Stores must keep times to at least the microsecond.
package queuetest
