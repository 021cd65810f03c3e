package mx

import "time"

// SetNow replaces the clock of r; call it before the first lookup.
func SetNow(r *Resolver, now func() time.Time) { r.now = now }

// CacheLen returns the number of cached lookups.
func CacheLen(r *Resolver) int { return r.cache.len() }

// ToASCII exposes toASCII to tests.
var ToASCII = toASCII

// Orderings exposes orderings to tests.
var Orderings = orderings

// ParseSTSRecord exposes parseSTSRecord to tests.
var ParseSTSRecord = parseSTSRecord

// IsPublic exposes isPublic to tests.
var IsPublic = isPublic

// Waiting returns how many callers wait for lookups in flight.
func Waiting(r *Resolver) int { return r.flight.waiting() }
