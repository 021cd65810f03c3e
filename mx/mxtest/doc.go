// Package mxtest runs an in-process DNS server for tests, the way
// net/http/httptest runs an HTTP server: zones are plain Go values, the
// server listens on 127.0.0.1 (UDP and TCP on one port), and faults can be
// switched on per name or for every query: SERVFAIL, REFUSED, no answer
// (timeouts), truncation (to make clients retry over TCP), mismatched or
// garbage answers, and the AD bit of a validating resolver.
//
//	srv := mxtest.NewServer(mxtest.Zone{
//		"example.com":      {TTL: 300, MX: []mx.MX{{Host: "mx.example.com", Pref: 10}}},
//		"mx.example.com":   {TTL: 300, A: []string{"127.0.0.1"}},
//	})
//	defer srv.Close()
//	r := srv.Resolver()
//
// Records can be added, changed and removed while the server runs (Set,
// Update, Delete); SetFallback answers names absent from the zone from a
// function, for tests with more names than a zone should hold. It counts
// the queries it receives (Queries, Count, TCPQueries), so tests can check
// caching. Faults.Hold holds answers until a
// channel is closed, to line up concurrent lookups without sleeping; close
// it before Close, which waits (up to 5 s) for the answers in progress.
// Faults.Types limits faults to some query types, e.g. a failing AAAA
// lookup beside a working A lookup.
//
// Package relay/relaytest builds on it.
package mxtest
