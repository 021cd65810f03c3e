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
// Layout: the job record and its message are stored apart, so an attempt's
// outcome rewrites a few hundred bytes, not the message. Due jobs are found
// through an index ordered by routing key and due time, with a second index
// of each key's earliest due time, so Claim visits only due jobs and skips a
// key at its limit without scanning its backlog. Memory holds only what a
// call returns; the file is memory-mapped, and its pages, though counted in
// the process's RSS, are file-backed and reclaimable by the kernel.
//
// Crashes: the file is locked by the process that opened it. A second Open
// of the same file fails after Options.Timeout with ErrLocked instead of
// hanging. Since no other process can hold leases, Open returns every job
// leased by a previous (crashed) process to the queue at once: delivery is
// at least once. A record that cannot be decoded is reported with its job
// id as a *queue.CorruptError by Get, logged and set aside by Claim (and
// counted by Stats.Corrupt from then on), skipped by List, and removed by
// Cancel; the rest of the queue keeps working.
package boltstore
