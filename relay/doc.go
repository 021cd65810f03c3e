// Package relay sends email straight to the recipients' mail servers.
//
// A [Client] ties the other packages of mxrelay into one sender: it builds
// the message with [github.com/mxrelay/mxrelay/mime], signs it with
// [github.com/mxrelay/mxrelay/dkim], finds the receiving servers with
// [github.com/mxrelay/mxrelay/mx] and speaks SMTP to them itself. The zero
// Client works; the package-level [Send] uses [DefaultClient].
//
// # The path of a message
//
//  1. The message is validated and written once: CRLF lines of at most 998
//     octets, the transfer encoding chosen per part (RFC 5322, RFC 2045).
//  2. With a Signer, DKIM signatures are prepended (RFC 6376, RFC 8463).
//  3. Recipients are grouped by domain (IDN domains as A-labels); domains are
//     delivered in parallel, bounded by MaxParallelDomains.
//  4. For each domain, MX hosts are looked up and tried in preference order,
//     random among equals (RFC 5321 §5.1); no MX means the domain's own
//     addresses (implicit MX); a null MX (RFC 7505) or a domain that does
//     not exist bounces at once; a DNS failure defers.
//  5. For each host, its addresses are tried in turn within one dial budget.
//     The address actually dialled is checked against the destination
//     policy first (AllowPrivateAddrs), so DNS rebinding cannot reach
//     loopback, private or metadata addresses.
//  6. TLS: STARTTLS whenever offered (opportunistic; a failed handshake is
//     retried in plaintext, as Postfix does), unless a policy demands a
//     verified session: MTA-STS in enforce mode (RFC 8461), DANE when the
//     MX records, the host's addresses and its TLSA records are all
//     DNSSEC-authenticated (RFC 7672 §2.2; TLSA is not looked up down an
//     unsigned chain), or RequireTLS. A
//     demanded session that cannot be had moves on to the next host and
//     finally defers; nothing is then sent in plaintext.
//  7. MAIL, every RCPT and DATA go in one write when the server offers
//     PIPELINING (RFC 2920); the message goes with BDAT when it offers
//     CHUNKING (RFC 3030). The data is written so that no bare CR or LF and
//     no premature end of data reaches the wire (SMTP smuggling).
//  8. Each recipient gets its own result: 2xx → Delivered; 5xx → Bounced;
//     4xx, timeouts and connection faults → Deferred. A connection failure,
//     a 4xx greeting or a refused TLS session moves on to the next address
//     or host; a reply to RCPT does not.
//
// Results and errors: Send and SendRaw return a [Result] with an entry per
// recipient whenever there are recipients, even with an error (a done
// context defers them all); the Result is nil only when the message or the
// Client's configuration is invalid, and the error says which
// ([ErrInvalidMessage], [ErrInvalidEnvelope], [ErrMessageTooLarge], ...).
// [Result.Err] joins an [*Error] per recipient that was not delivered, each
// wrapping the original cause, so that sentinels such as
// [ErrForbiddenAddress], [ErrTLSRequired] and context.Canceled work with
// errors.Is on it, on [RecipientResult.Err] and on [Event.Err];
// [IsPermanent] tells a bounce from a deferral. Every failure carries a
// category from [github.com/mxrelay/mxrelay/bounce] (invalid recipient,
// mailbox full, policy block, ...): [RecipientResult.Category],
// [Event.Category].
//
// # Mail that comes back
//
// Many receivers accept a message and bounce it later, by mail; mailbox
// providers send complaints as ARF reports; vacation responders reply to
// the return path. With [Client.BounceDomain] set, every copy goes out
// from a return path of its own in that domain (VERP), whose token names
// the message and the recipient and is signed with LinkKeys; where the
// server offers DSN, ENVID and ORCPT (RFC 3461) ask that a bounce name
// them too. [Client.ServeInbound] is the SMTP server for that domain (its
// MX points at the application), and [Client.ProcessInbound] does the same
// work for one message received another way. What comes back is read by
// [github.com/mxrelay/mxrelay/report] and turned into events:
//
//   - a DSN or a text bounce: an [EventBounced] with Async set and the DSN's
//     fields, or [EventDelayed] for a delay notice; an address that does
//     not exist is suppressed for all mail, a mailbox full for
//     SuppressionOptions.MailboxFullDays too, a policy block never;
//   - an ARF complaint: [EventComplained], and the address suppressed;
//   - an auto-reply: [EventAutoReplied], never a bounce;
//   - mail to a list message's mailto: unsubscribe address:
//     [EventUnsubscribed] with How "mail";
//   - anything else: [EventUnmatched], the message kept for
//     [Client.Unmatched].
//
// Only an address verified against the token, or by the sealed link of a
// returned List-Unsubscribe, is suppressed: a report cannot suppress an
// address it merely names.
//
// # History, tracking and statistics
//
// With [Client.History], every message's record is kept for
// [Client.Retention]: each recipient's final outcome, and what was heard
// later (bounces that came back, complaints, unsubscribes, opens, clicks)
// as notes. [Client.Forget] and [Client.Export] erase and return what is
// kept about an address. [SendOptions.Track] turns on open and click
// tracking for a message (see [TrackingOptions]); [Client.Handler] serves
// its endpoints. [Client.Stats] counts every event per domain, MX host and
// campaign, with a time series by the minute and by the hour; those are
// the counts of one process, while the history, in a shared store, holds
// every instance's records.
//
// # Review before sending
//
// A message enqueued with [EnqueueOptions.Hold], or with a Campaign when
// [Client.Review] says so, waits in the queue until an operator decides:
// [Client.Approve] releases it, [Client.Reject] removes it, and the
// history records who decided and when ([EventApproved],
// [EventRejected]). [Client.PlanJob] shows the route its next attempt
// would take; [Client.RecentEvents] the latest events. Package
// [github.com/mxrelay/mxrelay/relay/console] puts all of it, with the
// queue, the statistics and the suppression list, in a web console the
// application mounts.
//
// # Several instances
//
// Instances of an application that share a pgstore schema as their
// Client.Store share its queue, suppressions, history and webhook outbox;
// with [Direct.SharedLimits] set to the same store (a Client without a
// Transport does it by itself) they also share each MX host's connection
// cap, message rate and back-off, so that N instances open no more
// connections to a receiver than one would.
package relay
