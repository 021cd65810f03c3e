// Package mx finds where mail for a domain goes: its mail exchangers, their
// addresses, their DANE TLSA records and the domain's MTA-STS policy. It
// also looks up TXT records (LookupTXT), for SPF, DMARC and DKIM keys.
//
// A zero Resolver asks the nameservers of /etc/resolv.conf; set Servers to
// use others. Answers are cached for their TTL (negative answers for the
// SOA's negative TTL), concurrent identical lookups collapse into one query,
// and a cache hit does not allocate. Results are shared with the cache:
// never modify a returned slice or policy.
//
//	mxs, err := resolver.LookupMX(ctx, "example.com")
//	switch {
//	case mx.IsPermanent(err): // bounce: ErrNullMX, ErrNoDomain, ErrNoRecords, ErrInvalidName
//	case err != nil:          // defer and retry later
//	}
//
// What it implements:
//   - RFC 5321 §5.1: MX by preference, random among equal preferences,
//     implicit MX (the domain's own addresses) only when there is no MX
//     record, never after a DNS failure.
//   - RFC 7505: null MX ("MX 0 .") is a permanent failure, ErrNullMX.
//   - RFC 1035, RFC 6891 (EDNS0), RFC 7766 (TCP after a truncated UDP
//     answer), RFC 2308 (negative caching).
//   - RFC 5890/5891 and UTS #46: domains are converted to A-labels with the
//     IDNA Lookup profile before any query.
//   - RFC 6698 and RFC 7672: TLSA lookups with the AD bit reported. The AD
//     bit is only as good as the path to a validating resolver: trust it
//     only from a resolver on the local host or a trusted network.
//   - RFC 7208 §3.3, RFC 6376 §3.6.2.2: TXT records with their
//     character-strings joined, at names with underscore labels
//     (RFC 8552) such as "_dmarc.example.com".
//   - RFC 8461: MTA-STS record lookup, policy fetch over HTTPS, strict
//     parsing, caching for max_age, refetch when the record id changes, and
//     Policy.Match for MX host names.
//
// The DNS wire format and transport come from github.com/miekg/dns, kept in
// an internal package behind a one-method interface. Package mx/mxtest
// serves zones from Go values on loopback for tests.
package mx
