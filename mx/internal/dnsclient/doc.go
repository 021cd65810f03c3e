// Package dnsclient is the one place where package mx touches
// github.com/miekg/dns (v1, frozen upstream). It sends a single question to
// a list of recursive servers and returns the answer in its own small types,
// so that the rest of mx never sees a dns.Msg and the wire library can be
// replaced behind it.
//
// Transport rules (RFC 1035 §4.2, RFC 6891, RFC 7766):
//   - queries go over UDP with an EDNS0 OPT record advertising 1232 octets;
//   - a truncated UDP answer (TC bit) is asked again over TCP, because
//     miekg/dns never does that on its own;
//   - every server is tried in turn, for a bounded number of rounds, each try
//     with its own timeout and all of them within the caller's context;
//   - an answer whose ID, opcode or question does not match ours is
//     discarded (UDP) or is an error (TCP);
//   - SERVFAIL, REFUSED, NOTIMP and FORMERR move on to the next server.
package dnsclient
