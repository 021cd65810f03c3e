package mx

import (
	"net"
	"time"
)

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

// Waiting returns how many callers wait for lookups in flight.
func Waiting(r *Resolver) int { return r.flight.waiting() }

// SetPolicyHostResolver makes the default MTA-STS dialer of r resolve policy
// hosts with nr; call it before the first lookup.
func SetPolicyHostResolver(r *Resolver, nr *net.Resolver) { r.sts.netResolver = nr }

// SetPolicyMemory sets the memory budget of r's cached MTA-STS policies;
// call it before the first lookup.
func SetPolicyMemory(r *Resolver, bytes int) { r.sts.maxBytes = bytes }

// PolicyCost exposes policyCost to tests.
var PolicyCost = policyCost

// ToASCIIOwner exposes toASCIIOwner to tests.
var ToASCIIOwner = toASCIIOwner
