// Package pgstore is a queue.Store in PostgreSQL, for applications that run
// on several machines and share one queue. It is built on
// github.com/jackc/pgx/v5. It implements no RFC itself: the retry rules
// (RFC 5321 §4.5.4.1) belong to package queue.
//
// # Tables
//
// Open (or New, on an existing *pgxpool.Pool) creates the schema it is
// given (Options.Schema, "mxrelay" by default; a plain lower-case name,
// anything else is refused with ErrInvalidSchema) with a jobs table, the
// tables of the add-on interfaces (suppressions; history and
// history_rcpt; outbox_heads and outbox_items), a meta table that
// records the schema version, the routing_keys table with the triggers on
// jobs that keep it (schema version 5), the limits the instances share
// (dest_slots and dest_state, schema version 6), and the claim_keyed function
// (Claim under a per-key cap, run in the server). Creation and upgrades
// run in one transaction under an advisory lock, so processes that start
// together migrate once; a schema written by a newer release is refused with a
// *SchemaVersionError (ErrSchemaTooNew). Each job is one row; its message
// is stored once, as bytea, whatever the number of recipients.
//
// # Semantics
//
//   - Put is durable on return: its INSERT has committed. Puts that arrive
//     together share one multi-row INSERT (group commit), so many producers
//     cost few commits.
//   - Claim leases rows: UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP
//     LOCKED) sets the lease owner, a random token and its end, in one
//     round trip. No transaction is held while a job is delivered. A
//     process that dies leaves its leases to expire; any process then
//     claims the jobs again. Claims commit with synchronous_commit off: a
//     lease lost in a database crash only makes its job due again early,
//     which at-least-once delivery allows.
//   - Finish is fenced: it changes the row only if the lease token still
//     matches (queue.ErrLeaseLost otherwise).
//   - The per-routing-key cap (ClaimRequest.PerKey) is counted in the
//     database, from the unexpired leases of every process, under the
//     lock of the key's routing_keys row, held for the microseconds of the
//     claim: ten processes together never exceed it. Concurrent claimers
//     skip a key another one is serving (SKIP LOCKED) and come back to it
//     only if nothing else was free, so they spread over the keys.
//   - Wake-ups: Put, Release and Retry (Set with queue.ActionRetry) send
//     NOTIFY in their transaction; Wake (queue.Waker) LISTENs on a
//     dedicated connection and re-LISTENs after a reconnect. Notifications are lost while disconnected, so the queue
//     keeps polling as the fallback. A slot freed under the per-key cap by
//     another process is found by that polling.
//   - Times are stored as timestamptz, to the microsecond; the zero
//     time.Time (a retried job's NextAttempt) as the first instant of
//     year 1, which reads back as the zero time. Due times and
//     lease ends are compared with the caller's clock (ClaimRequest.Now),
//     not the server's: keep the clocks of the processes that share a
//     queue synchronised (NTP), as lease expiry depends on them.
//
// # How a claim under a per-key cap picks keys
//
// routing_keys holds a row per routing key with unheld jobs, and in it a
// due time at or before the key's earliest due job (NextAttempt, or the
// lease end of a leased job), indexed on due. Triggers on jobs lower it in
// the transaction that makes a job due earlier (Put, Finish with an
// earlier NextAttempt, Release, Retry); what makes jobs due later (a
// claim, Finish, Hold, Cancel) leaves it early, and the next claim that
// visits the key corrects it, or deletes the row of a key with no unheld
// job. A claim reads the rows with due <= ClaimRequest.Now, earliest
// first, a batch of as many as it still wants at a time, locked FOR UPDATE
// SKIP LOCKED; per key it counts the unexpired leases (at most PerKey
// index entries), leases up to the key's budget, and corrects the row.
// It stops once it has Max jobs.
//
// So a claim costs the keys it visits, not the keys there are: the keys
// it leases from, the due keys at their cap (at most the unexpired leases
// divided by PerKey, so bounded by the workers), and rows left early since
// (each corrected once). A key whose jobs are all in flight waits at its
// earliest lease end and is not read; nor are keys with only future or
// held jobs. With 1,000,000 queued jobs a claim of one job costs about the
// same over 100,000 keys as over 10 (bench/pgstore, BenchmarkScale); in
// schema version 4 it walked every key. The price is on the writers: a Put
// batch takes its keys' advisory locks shared (not blocking other Puts)
// and waits for a claim correcting one of them; a claim skips a key whose
// Put is committing and waits for it (at most lock_timeout, 100 ms) only
// if no other key was free.
//
// # Faults
//
// Every error from the database is returned wrapped, with the operation
// named ("pgstore: claim: database: …"); the pool reconnects by itself, so
// operations succeed again once the server is back. A connection lost
// during a commit leaves its outcome unknown, as with any remote database:
// the queue is at least once, and a Put whose error came from a lost
// connection may have stored its job.
//
// The table's constraints (recipient arrays of one length, known states, a
// JSON object for metadata) keep every row decodable, so Stats.Corrupt is
// always 0.
//
// # History
//
// Store is also a queue.HistoryStore (schema version 3). A record is a row
// of the history table; each recipient entry, with its notes, a row of
// history_rcpt holding the queue.RecipientRecord as jsonb, keyed by the
// record's ID and the address folded by queue.FoldAddr, and indexed by
// (address, ID) so that Records with a Recipient reads one page of one
// address in about Limit index probes, however large the history (about
// half a millisecond for 50 records among a million). Keep is one round
// trip and one transaction that locks the records it merges, so Keeps of
// one record from several processes follow each other; Note is one
// UPDATE that appends to the notes in the row, so notes from several
// processes at once are all kept; Expire deletes the oldest rows, passing
// over those a Keep holds; Forget locks the records it changes. Times are
// kept to the microsecond, PostgreSQL's precision.
//
// # Outboxes
//
// Store is also a queue.OutboxStore (schema version 4), so that webhook
// deliveries live in the queue's database and the processes that share
// it share the outboxes. outbox_items holds each item (endpoint, Seq,
// Time, Data as bytea); outbox_heads one row per endpoint ever appended
// to, with the next Seq, the failed attempts, next attempt and last
// error, and the lease (owner, a random token, its end). A head row is
// kept when its outbox empties, so that a Seq is never given twice.
// Every change to an endpoint takes its head row's lock: AppendOutbox is
// one statement that reserves the Seqs in the head rows (in endpoint
// order, so that appends to the same endpoints never deadlock) and
// inserts the items, durable on return; ClaimOutbox is one round trip and
// one transaction that locks the head row and only then reads the head of
// the outbox, so no two claims in any processes take one lease and none
// sees items an AckOutbox has removed; AckOutbox and RetryOutbox are one
// statement each, fenced by the token (queue.ErrLeaseLost). As with jobs,
// due times and lease ends are compared with the caller's clock
// (OutboxClaim.Now), leases survive a restart, and claims commit with
// synchronous_commit off. Endpoint names are text in byte order
// (collation "C"); one that is not UTF-8 is refused with queue.ErrInvalid.
//
// # Limits shared by instances
//
// Store is also a queue.LimitStore (schema version 6): relay.Direct's
// SharedLimits, so that the instances sharing a schema hold one
// connection cap, one message rate and one back-off per MX host. A
// connection slot is a row of dest_slots: AcquireSlot is one statement
// that, under the host's dest_state row lock, deletes the host's expired
// slots, counts the rest (every process's) and inserts one if under the
// cap and the back-off allows; ReleaseSlot deletes it and NOTIFYs a
// channel of its own, which the wake-up listener also LISTENs on
// (SlotReleased), so a waiter elsewhere tries at once instead of at its
// next poll. Each store renews the slots it holds every SlotTTL/3 in one
// statement; the slots of a process that died end after SlotTTL
// (DefaultSlotTTL, 30 s), and Close deletes the store's slots. A rate is
// GCRA state (the theoretical arrival time of the next turn) in the same
// row, taken several turns at a time (TakeTurns). NoteBackoff only makes
// the row stricter: a later pause, fewer connections allowed (recovering
// by itself at queue.AllowedRecovery), the rule whose end is later.
// Times here are the server's clock (clock_timestamp), so that instances
// whose clocks differ agree on when a slot ends or a turn comes.
//
// # Tests
//
// The tests need a PostgreSQL server: set MXRELAY_TEST_POSTGRES to a DSN
// (each test works in its own schema and drops it). Without it they skip.
package pgstore
