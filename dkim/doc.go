// Package dkim signs outgoing messages with DKIM, so that receivers can
// check that a message really comes from the domain it claims and was not
// changed on the way: safe defaults, multi-signing, key handling and the
// DNS record a domain publishes. Signing is our own code (canonicalization
// at memchr speed, the body hashed once for every signature that shares a
// canonicalization); verification uses github.com/emersion/go-msgauth/dkim.
//
// A Signer made by NewSigner adds one DKIM-Signature header field per
// Config: rsa-sha256 (RFC 6376, RSA keys of at least 1024 bits per
// RFC 8301) and ed25519-sha256 (RFC 8463). Defaults: relaxed/relaxed
// canonicalization, the header fields of DefaultHeaders signed, those of
// DefaultOversign oversigned, no l= body length tag ever, no x= expiry
// unless asked. Signer.Sign reads the message whole, then signs it as
// Signer.SignBytes does an in-memory message, returning the signature
// fields alone.
//
// ParsePrivateKey reads PEM keys, GenerateKey makes new ones,
// MarshalPrivateKey saves them; TXTRecord, SplitTXT, RecordName and
// ZoneRecord give what to publish in the DNS. Verify checks signatures
// with an injectable key lookup, for self-checks before and after a key is
// published.
//
// RFCs: 6376 (DKIM), 8301 (algorithm and key size update), 8463
// (Ed25519), 5322 (message format), 1035 (TXT character-strings).
//
// # FAQ
//
// How do I publish my key? Generate one (GenerateKey, or
// "openssl genpkey -algorithm ed25519"), keep the private key secret, and
// add a TXT record at RecordName(domain, selector), that is
// "selector._domainkey.example.com", whose value is TXTRecord(key.Public()).
// An RSA-2048 value is longer than the 255 octets one DNS character-string
// holds: most DNS providers' web forms split it themselves; in a zone file
// give it as several quoted strings (SplitTXT, or ZoneRecord for the whole
// line). Then check it: Verify a signed message with a LookupTXT that
// serves the record, and after publication with the default lookup.
//
// What is a selector? A name you choose for one key ("2026a", "mail"), so
// that a domain can have several keys at once: publish the new one under a
// new selector, switch the Config, and remove the old record a few days
// later, when mail signed with it has been delivered.
//
// Why dual-sign? Ed25519 keys and signatures are small and fast, but not
// every receiver verifies them yet (RFC 8463 came in 2018); RSA is
// verified everywhere. With both signatures a receiver uses the one it
// understands and ignores the other (RFC 6376 §4.2): give NewSigner one
// Config per key, each with its own selector.
//
// What does oversigning protect? DKIM signs the header fields named in the
// h= tag; a receiver ignores fields that are not named, and when a field
// occurs twice it checks the bottom one. Without oversigning, someone who
// got hold of a signed message could add a second From or Subject at the
// top, which many mail programs display, and the signature would still
// verify. Naming a field once more than it occurs makes any added
// instance break the signature (RFC 6376 §5.4.2, §8.15). Oversign only
// fields that nobody on the way legitimately adds: a mailing list that
// adds List-Unsubscribe will break a signature that oversigns it, which
// for mail you send yourself is what you want.
//
// Why relaxed canonicalization? "simple" breaks on whitespace changes and
// header refolding that relays make; "relaxed" tolerates them and signs
// the same content (RFC 6376 §3.4).
//
// Why no l= tag? A body length lets anyone append content below the signed
// part and keep the signature valid (RFC 6376 §8.2).
//
// Must lines end in CRLF? They should, as on the wire. A bare LF is hashed
// as CRLF, which is what an SMTP client that normalizes line endings
// sends, so the signature stays valid in transit.
package dkim
