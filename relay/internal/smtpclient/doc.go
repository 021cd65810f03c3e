// Package smtpclient is the SMTP client session under relay.Client: one
// connection to one host, the way http.Transport sits under http.Client.
//
// It is mechanism, not policy. It speaks the protocol and reports every reply;
// it never decides whether to retry, bounce or try another MX host. A reply is
// an answer ([Reply], [*Error]), not a transport fault.
//
// A session goes:
//
//  1. [Dial] (optionally from a given local address, with a connect
//     timeout) or [NewClient] on a connection of the caller's reads the greeting
//     (RFC 5321 §4.3.1); a 4xx or 5xx greeting is returned as an [*Error].
//     The caller checks the address it dials against its own policy.
//  2. [Client.Hello] sends EHLO, falling back to HELO (RFC 5321 §4.1.1.1), and
//     records the extensions.
//  3. [Client.StartTLS] upgrades the connection (RFC 3207). Bytes the server
//     sent after its 220 and before the handshake abort the session
//     ([ErrTLSInjection], CVE-2011-0411); afterwards every capability learnt in
//     plaintext is forgotten and EHLO is sent again.
//  4. [Client.Send] runs one transaction: MAIL, one RCPT per recipient, then
//     DATA or BDAT. With PIPELINING (RFC 2920) MAIL, every RCPT and DATA go
//     in one write; with CHUNKING (RFC 3030) the body goes as "BDAT n LAST".
//     BODY=8BITMIME (RFC 6152) is sent when the body has 8-bit bytes, and
//     such a body is refused locally (5.6.3, [ErrEightBitRequired]) by a
//     server that does not offer it; SMTPUTF8 (RFC 6531) only when an address needs it;
//     SIZE= (RFC 1870) always when offered, and a message over the server's
//     limit is refused before it is sent; LIMITS RCPTMAX (RFC 9422) is
//     honoured; DSN parameters (RFC 3461) and REQUIRETLS (RFC 8689) come
//     from the [Envelope]. Every recipient gets its own [RcptResult].
//  5. [Client.Reset] (RSET) and further transactions on the same session;
//     [Client.Quit] ends it.
//
// Message data is written so that every line ends in CRLF (a bare CR or LF
// becomes CRLF), lines starting with "." are dot-stuffed and the data ends in
// CRLF.CRLF (RFC 5321 §4.5.2): no premature end-of-data can reach the wire,
// whatever the body holds (SMTP smuggling, CVE-2023-51764). BDAT carries the
// same normalised bytes without dot-stuffing.
//
// Every step has a deadline: the earlier of the context's and the RFC 5321
// §4.5.3.2 timeout for that step ([Options]). Cancelling the context
// interrupts a blocked read or write. Reply lines are bounded in length and
// number, so a hostile server cannot exhaust memory; a malformed reply is
// [ErrProtocol]. After a transport or protocol failure the Client is closed
// and every later call returns the same error.
//
// A Client is not safe for concurrent use.
package smtpclient
