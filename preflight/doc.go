// Package preflight checks a sending domain's DNS setup before the first
// message goes out: what receivers will look up about the mail, looked up
// the same way, through the resolver the caller gives.
//
//	rep, err := preflight.Check(ctx, &preflight.Config{
//		Domain:   "example.com",
//		Resolver: resolver,
//		Sources:  []preflight.Source{{Addr: netip.MustParseAddr("192.0.2.1"), Hostname: "mail.example.com"}},
//		Keys:     signer.Keys(),
//		ListMail: true, ListUnsubscribe: true,
//	})
//	if err != nil { ... } // a bad Config; DNS failures are findings
//	if !rep.OK() { rep.WriteText(os.Stderr) }
//
// Every check reports a Finding with a stable dotted name (Finding.Check),
// a Severity, the DNS name or address it is about (Subject), what was
// found, the fix and, where publishing a record fixes it, the exact
// Record. A check that passes reports a ".ok" finding of Severity OK. A
// lookup that fails (SERVFAIL, timeout) gives a Warning ".unchecked"
// finding: it could not be checked. Compare two reports to alert on what
// got worse.
//
// # Checks
//
//	check                   severity          what                                                       source
//	----------------------  ----------------  ---------------------------------------------------------  -------------------------------------------
//	config.no-sources       info              no Sources: SPF authorisation and reverse DNS unchecked     preflight
//	spf.ok                  ok                one valid record; every source passes                       RFC 7208
//	spf.missing             error (1)         no v=spf1 TXT record                                        RFC 7208 §2.6.1, §4.5
//	spf.multiple            error (2)         more than one v=spf1 record: permerror                      RFC 7208 §3.2, §4.5
//	spf.syntax              error (2)         a record the evaluation reaches does not parse: permerror   RFC 7208 §4.6, §12
//	spf.include-missing     error (2)         include: or redirect= of a domain without SPF: permerror    RFC 7208 §5.2, §6.1
//	spf.lookup-limit        error (2)         over 10 DNS-querying terms, or an mx over 10 MX: permerror  RFC 7208 §4.6.4
//	spf.void-limit          error (2)         over 2 lookups finding no name or no records: permerror     RFC 7208 §4.6.4
//	spf.not-authorized      error (1)         a source gets fail, softfail or neutral                     RFC 7208 §2.6, §5.6
//	spf.all-pass            error             any address passes (+all, or an include that ends in it)    RFC 7208 §5.1
//	spf.all-neutral         warning           addresses not listed get neutral (?all)                     RFC 7208 §2.6.2, §5.1
//	spf.all-missing         info              no all mechanism and no redirect: default neutral           RFC 7208 §4.7
//	spf.ptr                 warning           the ptr mechanism or %{p} macro is used                     RFC 7208 §5.5
//	spf.macro-local-part    info              %{l} or %{s} used: checked with postmaster@domain only      RFC 7208 §7.2
//	spf.unchecked           warning           a lookup failed, or needs an address record at a name       RFC 7208 §2.6.6
//	                                          with an underscore, which mx.Resolver cannot look up
//	dkim.ok                 ok                the key's record is published, valid, and matches           RFC 6376
//	dkim.unsigned           error             no Keys: mail is unsigned                                   RFC 6376; Google 2024; Yahoo
//	dkim.missing            error             no TXT record at selector._domainkey.domain                 RFC 6376 §3.6.2, §6.1.2
//	dkim.multiple           error             more than one TXT record there                              RFC 6376 §3.6.2.2
//	dkim.syntax             error             the record does not parse (v=DKIM1, k=rsa|ed25519, p=)      RFC 6376 §3.6.1
//	dkim.revoked            error             p= is empty                                                 RFC 6376 §3.6.1
//	dkim.mismatch           error             p= is not the signing key's public half                     RFC 6376 §3.6.1, §6.1.2
//	dkim.restricted         error             h= leaves out sha256, or s= leaves out email                RFC 6376 §3.6.1; RFC 8301 §3.1
//	dkim.testing            warning           t=y: receivers may treat the mail as unsigned               RFC 6376 §3.6.1
//	dkim.weak-key           warning / error   RSA key under 2048 bits / under 1024 bits                   RFC 8301 §3.2
//	dkim.unchecked          warning           the lookup failed                                           RFC 6376 §6.1.2
//	dmarc.ok                ok                a valid record, and an identifier that passes is aligned    RFC 7489
//	dmarc.missing           error / warning   no record at _dmarc.domain nor at the organizational        RFC 7489 §6.6.3; Google 2024
//	                                          domain: error with ListMail, warning otherwise
//	dmarc.multiple          error             more than one v=DMARC1 record: none applies                 RFC 7489 §6.6.3
//	dmarc.syntax            error             the record does not parse (v first, p, sp, adkim, aspf,     RFC 7489 §6.3, §6.6.3
//	                                          pct, rua)
//	dmarc.org-fallback      info              the organizational domain's record applies                  RFC 7489 §6.6.3
//	dmarc.policy-none       info              p=none (sp=none): the minimum the bulk rules accept         RFC 7489 §6.3; Google 2024
//	dmarc.pct               info              pct under 100                                               RFC 7489 §6.3
//	dmarc.no-rua            info              no aggregate report address                                 RFC 7489 §7.2
//	dmarc.rua-unauthorized  warning           rua in another organization that has not authorised it      RFC 7489 §7.1
//	dmarc.unaligned         error             neither DKIM d= nor the envelope domain is aligned (and     RFC 7489 §3.1, §4.2
//	                                          passing) under adkim/aspf: DMARC fails
//	dmarc.dkim-unaligned    warning           only SPF aligns: forwarded mail fails DMARC                 RFC 7489 §3.1, §4.2; Google 2024
//	dmarc.spf-unaligned     info              only DKIM aligns                                            RFC 7489 §3.1, §4.2
//	dmarc.unchecked         warning           the lookup failed                                           RFC 7489 §6.6.3
//	rdns.ok                 ok                forward-confirmed reverse DNS; EHLO is the PTR name         RFC 1912 §2.1; Google 2024; Yahoo
//	rdns.missing            error             the source has no PTR record                                RFC 1912 §2.1; Google 2024; Yahoo
//	rdns.unconfirmed        error             no PTR name resolves back to the source                     RFC 1912 §2.1; Google 2024; Yahoo
//	rdns.ehlo-mismatch      warning           the EHLO name is not a PTR name of the source               RFC 5321 §2.3.5, §4.1.1.1, §4.1.4
//	rdns.ehlo-ip            error             the EHLO name is a bare IP address                          RFC 5321 §2.3.5, §4.1.1.1, §4.1.4
//	rdns.ehlo-literal       warning           the EHLO name is an address literal, "[192.0.2.1]"          RFC 5321 §2.3.5, §4.1.1.1, §4.1.4
//	rdns.ehlo-fqdn          error             the EHLO name is not a fully qualified domain name          RFC 5321 §2.3.5, §4.1.1.1, §4.1.4
//	rdns.ehlo-missing       info              no EHLO name given: not checked                             RFC 5321 §2.3.5, §4.1.1.1, §4.1.4
//	rdns.unchecked          warning           a lookup failed                                             RFC 1912 §2.1; Google 2024; Yahoo
//	mx.ok                   ok                MX records, or an address (implicit MX)                     RFC 5321 §5.1
//	mx.missing              error             neither MX nor A/AAAA: replies or bounces undeliverable     RFC 5321 §5.1, §6.1
//	mx.null                 warning / error   null MX, "MX 0 .": warning for the From domain (replies     RFC 7505 §3, §4.2
//	                                          bounce), error for the envelope domain
//	mx.unusable             error             the MX records name no usable host                          RFC 5321 §5.1; RFC 7505 §3
//	mx.unchecked            warning           the lookup failed                                           RFC 5321 §5.1
//	bulk.ok                 ok                every bulk-sender rule below holds                          Google 2024; Yahoo
//	bulk.tls                error             TLS policy none                                             Google 2024
//	bulk.unsubscribe        error             no one-click unsubscribe                                    RFC 8058; Google 2024; Yahoo
//	bulk.dmarc              error             no usable DMARC record                                      Google 2024; Yahoo
//	bulk.authentication     error             SPF (envelope domain) and DKIM do not both pass             Google 2024; Yahoo
//	bulk.alignment          error             neither SPF nor DKIM is aligned with the From domain        Google 2024; Yahoo
//
// "Google 2024" is the Google Email sender guidelines, 2024 (the Gmail
// bulk-sender requirements of February 2024), "Yahoo" the Yahoo Sender
// Best Practices; Finding.Source spells them out. The bulk checks run only
// with Config.ListMail.
//
// (1) A warning for the From domain when BounceDomain is another domain:
// receivers check SPF on the envelope domain (RFC 7208 §2.4).
// (2) A warning when only addresses the record does not list reach the
// fault: the sources pass, everyone else gets permerror.
//
// # SPF
//
// SPF is evaluated as check_host() does it (RFC 7208 §4), for every source
// address and once more for an address the record does not list (which
// finds permissive records, and counts the lookups every term takes):
// ip4, ip6, a, mx, ptr, include, exists and all with their qualifiers,
// redirect= (ignored beside all), dual CIDR lengths, the macros %{s l o d
// i p v h} with digits, reversal and delimiters, upper-case URL escaping,
// the limit of 10 DNS-querying terms and of 2 void lookups (§4.6.4), at
// most 10 MX records per mx and 10 PTR names per ptr. The sender is
// postmaster@<domain> (§4.3) and the HELO name the source's EHLO name.
// Two limits of the checker: mx.Resolver applies the implicit MX, which SPF
// must not (§5.4), so a single MX 0 naming the domain itself counts as no
// MX; and it looks up addresses of host names only, so an a or exists term
// naming an underscore label gives spf.unchecked.
//
// # DKIM
//
// For every key, the TXT record at selector._domainkey.domain (the key's
// Domain, or Config.Domain) must be one record that parses and publishes
// the key: for RSA the DER SubjectPublicKeyInfo (a bare PKCS #1
// RSAPublicKey is accepted too), for Ed25519 the raw 32 bytes (RFC 8463).
// The fix gives the record dkim.TXTRecord makes from the public key.
//
// # DMARC
//
// The record at _dmarc.<domain>, or else at _dmarc.<organizational
// domain> (the public suffix plus one label, from
// golang.org/x/net/publicsuffix). Alignment (RFC 7489 §3.1): relaxed is the
// same organizational domain, strict the same name. An identifier counts
// only if it also passes: a DKIM key whose record verifies, an envelope
// domain whose SPF record passes every source.
package preflight
