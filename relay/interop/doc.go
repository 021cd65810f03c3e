// Package interop holds no code, only tests: it sends one matrix of messages
// through relay.Client to real receiving mail servers on 127.0.0.1 and checks
// both the per-recipient results and what each server stored.
//
// The peers are Postfix (the Debian package, as the system has it), Exim
// 4.96, OpenSMTPD 6.8 and mox v0.0.15. Postfix runs from its installed
// binaries with a private configuration. Exim and OpenSMTPD are Debian
// packages unpacked with dpkg -x, never installed, so that they do not
// replace Postfix as the system's mail server; mox is built from its Go
// module. The script .ci/peers fetches all three into the directory named by
// MXRELAY_PEERS (by default mxrelay-peers in the user's cache directory); a
// test whose peer is missing is skipped and says to run that script.
//
// Exim, OpenSMTPD and mox each run in their own mount and PID namespaces
// (util-linux unshare): the namespace gives them the users and paths their
// builds expect (Exim's compiled-in user, OpenSMTPD's spool, helpers and
// chroot directories) and a resolv.conf that points at 127.0.0.1, so that no
// peer sends a DNS query off the machine, and killing the namespace ends
// every process the peer started. All of this needs root.
//
// The matrix (matrix_test.go), sent to every peer:
//
//  1. a plain text message;
//  2. HTML with an inline image, a text alternative and an attachment;
//  3. an 8-bit UTF-8 body (sent with BODY=8BITMIME);
//  4. UTF-8 local parts (SMTPUTF8): delivered where the peer offers
//     SMTPUTF8, bounced with 5.6.7 by mxrelay where it does not;
//  5. 120 recipients in one message, more than the peer takes in one
//     transaction where the limit can be set;
//  6. a message of more than 15 MiB;
//  7. a raw RFC 5322 message through SendRaw.
//
// The bounce tests (bounce_test.go) send from return paths in a bounce
// domain (Client.BounceDomain) to Postfix and Exim configured to accept
// an unknown address at RCPT and fail it at delivery, or to defer it:
// the peers' own delivery status notifications come back to a
// ServeInbound on 127.0.0.1 and must turn into asynchronous events and
// suppressions.
package interop
