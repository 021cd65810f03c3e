// Package webhook delivers events to HTTP endpoints, durably, signed and
// in batches, and gives receivers the helpers to check what they get.
//
// The sending side: the application appends each event, as one JSON
// value, to an endpoint's outbox in a [github.com/mxrelay/mxrelay/queue.OutboxStore] (the database
// of its queue), and a [Dispatcher] running beside it POSTs the outboxes
// to their endpoints. The receiving side: [VerifyRequest], or [Verify] for
// a receiver written with something other than net/http; receivers in
// other languages implement the scheme described here.
//
// # Delivery
//
//  1. One sender per endpoint claims the head of its outbox under a lease
//     (at most BatchSize items and MaxBatchBytes octets), so that one
//     batch of an endpoint is in flight at a time, across processes too.
//  2. Items whose Data is not valid JSON in UTF-8 are left out of the
//     payload, and removed with the batch; items at the head older than
//     MaxAge are removed unsent. Both are reported to OnDrop and logged
//     at error level.
//  3. The batch is POSTed as one payload, signed with every secret of the
//     endpoint.
//  4. Any 2xx removes the batch; the next one is claimed at once. Anything
//     else — no connection, a timeout, a 3xx (redirects are not
//     followed), a 4xx or a 5xx — keeps it at the head, due again after
//     the Backoff, or after the Retry-After of a 429 or 503 (at most an
//     hour). Nothing behind it goes first: an endpoint's events arrive in
//     the order they were appended.
//
// Delivery is at least once. A batch that reached the receiver but whose
// answer was lost (a timeout, a connection cut, a Dispatcher stopped
// mid-POST, a crash before the removal) is delivered again. Nothing
// accepted by AppendOutbox is lost short of MaxAge.
//
// The default client refuses to connect to addresses that are not
// globally reachable (loopback, private networks, link-local and cloud
// metadata addresses, ...), checked for every address dialled after name
// resolution, so that an endpoint URL chosen by a user cannot reach
// inside the network (server-side request forgery); such an attempt fails
// with an error wrapping [ErrForbiddenAddress].
// [Dispatcher.AllowPrivateAddrs] lifts the check.
//
// # The request
//
//	POST <Endpoint.URL>
//	Content-Type: application/json
//	User-Agent: mxrelay-webhook
//	Mxrelay-Signature: t=1700000000,v1=b82649e924cd35659162bbdcd48f4587ef43e72d545093792266222d77b3cafb
//	Mxrelay-Delivery: 1c168adb00d208e4-1-2
//
//	{"endpoint":"orders","first":1,"last":2,"seqs":[1,2],"events":[{"id":"a"},{"id":"b"}]}
//
// The body is one JSON object with its members in this order and no
// space between them: "endpoint", the outbox's name (Endpoint.Name);
// "first" and "last", the outbox positions of the batch's first and last
// items; "seqs", the position of each event; "events", the items' Data,
// each inserted byte for byte as appended. Positions increase within an
// endpoint but may have gaps, and items that were not valid JSON are left
// out, so "events" may hold fewer than last-first+1 values. Receivers
// should ignore members they do not know.
//
// Mxrelay-Delivery names the batch: the first 16 hexadecimal digits of
// SHA-256 of the endpoint's name, "-", first, "-", last. It is not signed;
// it is derived from the body, which is.
//
// # The signature
//
// Mxrelay-Signature is a list of elements separated by commas, each
// key=value:
//
//   - t: when the request was signed, in decimal Unix seconds. Exactly
//     one. A retry is signed anew.
//   - v1: the lower-case hexadecimal HMAC-SHA256 of the signed content
//     under one secret. One per secret of the endpoint, the newest first.
//
// The signed content is the value of t exactly as it appears, a full stop
// (0x2E), and the body exactly as received, before any parsing or
// re-encoding. A receiver:
//
//  1. reads the body, bounded (VerifyRequest stops at [MaxBodySize]);
//  2. splits the header at commas, trims spaces and tabs, splits each
//     element at its first "=", takes the one t and every v1, and ignores
//     other keys (later schemes add them);
//  3. for each secret it accepts, computes HMAC-SHA256(secret, t + "." +
//     body) and compares it, in constant time, with each v1 decoded from
//     hexadecimal; one match is enough;
//  4. refuses the request when t is more than a tolerance away from its
//     own clock, in either direction ([DefaultTolerance], five minutes):
//     a captured request cannot be replayed later;
//  5. answers 2xx only once the events are stored or handled.
//
// With the secret "whsec_0123456789abcdef" the request shown is signed;
// from a shell:
//
//	printf '%s' '1700000000.{"endpoint":"orders","first":1,"last":2,"seqs":[1,2],"events":[{"id":"a"},{"id":"b"}]}' |
//		openssl dgst -sha256 -hmac whsec_0123456789abcdef
//
// # Rotating a secret
//
// A request carries a v1 for each of Endpoint.Secrets, and a receiver
// accepts any secret it lists, so neither side has to change at the same
// moment as the other. To replace a secret: set Secrets to the new one
// and the old one; move the receiver to the new one; drop the old one
// from Secrets. (Or the other way round: the receiver first accepts both,
// then the sender switches, then the receiver drops the old one.)
//
// # Duplicates
//
// Because delivery is at least once, a receiver that must act once per
// event keeps, per endpoint, the highest position it has handled, stored
// with the effects of handling it, and skips events whose position in
// "seqs" is not above it. This is sound because an endpoint's batches go
// strictly in order: a batch is sent only once every earlier item has
// been acknowledged or dropped, so an event at or below the highest
// position seen is a repeat, and one above it is new.
package webhook
