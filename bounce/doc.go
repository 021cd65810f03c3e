// Package bounce classifies delivery failures: what kind of failure it is,
// whether it is permanent, and whether the recipient's address should go on
// the suppression list.
//
// One function, [Classify], takes both kinds of failure:
//
//   - synchronous: the reply to an SMTP command, as its reply code,
//     RFC 3463 enhanced status code and text
//     (Classify(550, "5.1.1", "The email account that you tried to reach
//     does not exist.")), or the whole reply as text with the codes left
//     at zero and "" ("550 5.1.1 <a@b>: Recipient address rejected");
//   - asynchronous: a delivery status notification (RFC 3464), its Status
//     as the enhanced code and its Diagnostic-Code as the text
//     (Classify(0, "5.1.1", "smtp; 550-5.1.1 The email account ...")), or
//     the words of a bounce that has no DSN part (Exim's "Unknown user"
//     under Status 5.0.0, qmail's "Remote host said: 554 ...").
//
// A code missing from the arguments is read from the text, as Classify
// describes.
//
// # Categories
//
// Each [Category] tells the sender what to do:
//
//	category           meaning                                   sender's move
//	invalid-recipient  the mailbox does not exist, bad address   suppress (if permanent)
//	unknown-domain     no such domain, or it accepts no mail     suppress (if permanent)
//	mailbox-full       over quota                                retry; after weeks, treat as abandoned
//	mailbox-disabled   account disabled, inactive, suspended     stop for now; do not suppress
//	message-too-large  over a size limit                         send a smaller message
//	content-block      spam-like content, virus, bad URL,        change the message
//	                   malformed or non-RFC 5322 message
//	policy-block       IP or domain reputation, blocklist,       fix reputation, ask for delisting
//	                   the receiver's policy
//	rate-limited       too many messages, recipients or          slow down, retry later
//	                   connections
//	auth-failure       SPF, DKIM, DMARC, reverse DNS, sender     fix the sending setup
//	                   domain, SMTP AUTH
//	tls-required       TLS (or REQUIRETLS, MTA-STS, DANE) not    fix TLS, or the receiver's
//	                   satisfied
//	routing            no route, refused or timed-out            retry; check DNS and relaying
//	                   connection, DNS failure, relay denied,
//	                   mail loop, expired in the queue
//	other              nothing more specific                     retry if temporary, else read it
//
// Whether to retry at all follows [Class].Permanent, not the category: a
// 4xx rate limit is retried, a 5xx one is not.
//
// # Permanence, suppression and the default
//
// Permanent comes from the enhanced code's class when there is one (5.x.x
// permanent; 4.x.x and 2.x.x not), else from the reply code (5xx), else it
// is false: an unknown or zero code with no status is temporary, so that a
// failure nobody understood is retried, not given up. Category is [Other]
// when no rule matched. Suppress is true exactly when the failure is
// permanent and the category is [InvalidRecipient] or [UnknownDomain].
//
// These hold whatever the rules say, and the tests check them:
//
//   - 5.1.1, 5.1.3 and 5.1.6 are InvalidRecipient; 5.1.2 and 5.1.10 are
//     UnknownDomain (5.1.10 is RFC 7505's null MX; Exchange Online's
//     "RESOLVER.ADR.RecipientNotFound" under 5.1.10 is InvalidRecipient);
//   - a 550, 551 or 553 without an enhanced code, or with 5.0.0, whose text
//     says the user is unknown is InvalidRecipient;
//   - a 5.7.x code never suppresses, whatever its text ("550 5.7.1 No such
//     user!" is Other), nor does a Diagnostic-Code that starts with 5.7.x
//     under a DSN Status that says otherwise;
//   - a text about spam, blocks, blocklists, reputation, policy, rate
//     limits, SPF, DKIM or DMARC never suppresses, whatever its code
//     ("550 5.1.1 blocked for spam" is PolicyBlock);
//   - a temporary failure never suppresses.
//
// # Rules
//
// The rules are a table in rules.go, checked in order, first match wins:
// each names the enhanced codes, the reply codes and the phrases it needs.
// The order is the design, and rules.go explains it; in short, codes that
// decide alone come first, then every text about the sender and the
// transport, then the policy codes, then the address codes, then texts
// about the address, then the remaining codes. Phrases match whole words,
// case-insensitively for ASCII, across the line breaks and repeated codes
// of a multi-line reply; all of them are found in one pass over the text,
// which costs about a microsecond for a Gmail reply and allocates nothing.
// Only the first 8 KiB of a text are read.
//
// The fixtures in testdata/replies.tsv are real replies of Gmail,
// Microsoft 365 and Outlook.com, Yahoo, Apple iCloud, Comcast, AT&T,
// Orange, GMX and Web.de, Mimecast, Proofpoint, Barracuda, Symantec,
// Postfix and Exim, each with the class it must get and the public page
// it was taken from.
//
// # Sources
//
// RFC 3463 and the IANA "SMTP Enhanced Status Codes" registry (RFC 5248),
// with RFC 4954 and RFC 5248 for the AUTH codes, RFC 7293 (RRVS), RFC 7372
// (authentication codes X.7.20 to X.7.26), RFC 7505 (null MX, X.1.10 and
// X.7.27), RFC 8689 (REQUIRETLS, X.7.30); RFC 5321 §4.2 for reply codes and
// RFC 7504 for 521 and 556; RFC 3464 for DSNs. The categories follow the
// lines of KumoMTA's bounce classifier and Postmark's bounce types, merged
// to what a sender acts on; the rules and fixtures are this package's own.
// Providers do not keep to the registry (Gmail sends 4.7.29 for TLS and
// 4.7.30 for DKIM; Microsoft 5.1.10 for a missing recipient and 5.7.5xx
// for its own blocks), which is why texts are read at all.
package bounce
