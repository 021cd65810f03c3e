// Package boltstore is the embedded durable queue.Store of mxrelay: one
// file, written with go.etcd.io/bbolt.
//
// Durability: Put, Claim, Finish and Set return once their change is
// committed and the file synced (fdatasync), unless Options.NoSync is set.
// Writes from concurrent callers share one commit (group commit): a single
// goroutine drains every waiting write into the next transaction, so
// throughput scales with the number of producers instead of collapsing to
// one fsync per message. (bbolt's own DB.Batch waits up to MaxBatchDelay
// for a batch to fill, which caps a lone producer at about 100 commits a
// second; see the package benchmarks.)
//
// The Store is a queue.PutLeaser and a queue.FinishClaimer: a job enqueued
// while a worker of the queue is idle is leased in the write that stores
// it, and a worker records its attempt and leases its next job in one
// write, so a running queue spends no commit on Claim (BenchmarkDurableRun
// prints the commits per message). A Claim that finds nothing due is a
// read, with no commit.
//
// Layout: the job record and its message are stored apart, so an attempt's
// outcome rewrites a few hundred bytes, not the message. Due jobs are found
// through an index ordered by routing key and due time, with a second index
// of each key's earliest due time, so Claim visits only due jobs and skips a
// key at its limit without scanning its backlog. Memory holds only what a
// call returns; the file is memory-mapped, and its pages, though counted in
// the process's RSS, are file-backed and reclaimable by the kernel.
//
// Outboxes: Store implements queue.OutboxStore, so webhook deliveries wait
// in the queue's file. The bucket "outbox", created by the first
// AppendOutbox, holds a bucket for each endpoint: its items under their
// Seq, oldest first, and a head record with the Seq counter, the item
// count, the failed attempts and the lease, so that a claim reads the
// head and the items it takes, and an ack deletes those. AppendOutbox,
// ClaimOutbox, AckOutbox and RetryOutbox share commits with the other
// writes and are durable on return, as Put is; a claim that gets nothing
// (an empty, retried or leased outbox) is a read, with no commit. Times
// are kept to the microsecond.
//
// Crashes: the file is locked by the process that opened it. A second Open
// of the same file fails after Options.Timeout with ErrLocked instead of
// hanging. Since no other process can hold leases, Open returns every job
// leased by a previous (crashed) process to the queue at once: delivery is
// at least once. It ends the previous process's outbox leases likewise:
// their endpoints are due at once, their attempts kept, and the old tokens
// give queue.ErrLeaseLost. A record that cannot be decoded is reported with
// its job id as a *queue.CorruptError by Get, logged and set aside by Claim
// (and counted by Stats.Corrupt from then on), skipped by List, and removed
// by Cancel; the rest of the queue keeps working. A damaged outbox record
// gives an error that matches queue.ErrCorrupt from the calls that read it
// (ClaimOutbox of its endpoint, Outboxes); the other endpoints keep
// working.
//
// Damaged files: bbolt keeps no checksum of its data pages and trusts the
// file it maps, so a file damaged outside the library (a disk or file
// system fault, a bad copy, a truncation, a file emptied by a restore)
// would make it panic or fault and bring the process down, and an empty
// file would be opened as a new, empty queue. Open therefore creates a new
// file only where none exists, and checks an existing one before bbolt
// opens it for writing: its size, its two meta pages (one may be damaged:
// bbolt then falls back on the other, losing at most the last commit),
// every page reachable from the root, and the shape of the index keys.
// This reads every page but not the messages; for a million jobs it about
// doubles the time Open takes, to a second, with the file in the page
// cache (with a cold cache it is faster than bbolt alone was). What
// fails gives an error that matches ErrCorrupt, and the file is left as it
// was: nothing is written, repaired or deleted by the library. Damage
// inside a job's record or message is not looked for; it is reported per
// job, as a *queue.CorruptError from Get and a record that Claim sets
// aside.
//
// On ErrCorrupt, do as Postfix does with a damaged queue file, which it
// moves to its corrupt/ directory:
//
//  1. stop: do not retry Open on the same file, and do not delete it;
//  2. move the file aside (for example to queue.db.corrupt-<date>) and
//     start with a fresh file at the old path, so that new mail is queued
//     while the old file is looked at;
//  3. salvage the old file's jobs, working on a copy. The error names the
//     damaged page and the branch element that refers to it; bbolt's tool
//     (go.etcd.io/bbolt/cmd/bbolt) cuts it out with "bbolt surgery
//     clear-page-elements <copy> --pageId <branch> --from-index <element>
//     --to-index <element+1> --output <repaired>", rewrites a damaged meta
//     page with "bbolt surgery meta update", and checks the result with
//     "bbolt check" (which, like the rest of bbolt, trusts the file and may
//     crash on one that boltstore refuses: run it on repaired copies). Once
//     the repaired copy opens, List its jobs, Get each (List leaves out
//     the message) and Put it into the new store; do not run the repaired
//     copy itself as the queue, since its counters and indexes no longer
//     match what was cut out.
//
// A truncated file loses whatever was stored past the cut; a page damaged
// in place loses the jobs on that page. The library never deletes, moves
// or repairs a file.
package boltstore
