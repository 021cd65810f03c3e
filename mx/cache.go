package mx

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"
)

// kind says which lookup a cache entry holds.
type kind uint8

const (
	kindMX kind = iota + 1
	kindIP
	kindTLSA
	kindSTSTXT    // the TXT records of _mta-sts.<name>, for LookupSTS
	kindSTSPolicy // only for collapsing concurrent fetches; policies live in stsCache
	kindTXT       // the TXT records of name, for LookupTXT
	kindPTR       // the PTR names of the reverse name, for LookupPTR
)

// cacheKey identifies a lookup. name is the A-label domain without trailing
// dot (for kindTXT the owner name, which may begin with underscore labels);
// arg is the port for TLSA and the IPPreference for addresses. Being a
// comparable struct of a string and small integers, looking it up in a map
// does not allocate.
type cacheKey struct {
	name string
	kind kind
	arg  uint16
}

// entry is the result of one lookup, positive or negative. Entries are
// immutable once stored: slices in them are handed to callers as they are.
type entry struct {
	expires time.Time
	ttl     time.Duration // how long to keep it; 0 → not cached
	err     error         // permanent (cached negative) or temporary (not cached)

	mx   [][]MX // every stored order of the MX hosts (see orderings)
	ips  []netip.Addr
	tlsa []TLSA
	ad   bool
	txt  []string // TXT strings; PTR names

	policy *Policy
}

// cache is a bounded map of entries with expiry times. A hit takes a read
// lock and does not allocate.
type cache struct {
	mu  sync.RWMutex
	m   map[cacheKey]*entry
	max int
}

func (c *cache) get(k cacheKey, now time.Time) *entry {
	c.mu.RLock()
	e := c.m[k]
	c.mu.RUnlock()
	if e == nil || !now.Before(e.expires) {
		return nil
	}
	return e
}

func (c *cache) put(k cacheKey, e *entry, now time.Time) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[cacheKey]*entry)
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		c.evict(now)
	}
	c.m[k] = e
}

// evict drops expired entries and then, if the cache is still over 90%
// full, arbitrary ones.
func (c *cache) evict(now time.Time) {
	trim(c.m, c.max, func(e *entry) bool { return !now.Before(e.expires) })
}

// trim drops the entries of m that expired and then, if m is still over 90%
// of max, arbitrary ones (map order is unspecified) until it is not.
// Dropping a tenth at once keeps the cost of a full sweep off most inserts.
func trim[K comparable, V any](m map[K]V, max int, expired func(V) bool) {
	for k, v := range m {
		if expired(v) {
			delete(m, k)
		}
	}
	target := max - max/10 - 1
	for k := range m {
		if len(m) <= target {
			break
		}
		delete(m, k)
	}
}

func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// flight collapses concurrent lookups of the same key into one: the first
// caller (the leader) does the lookup in its own goroutine, with its own
// context; the others wait for it or for their own context. If the leader's
// context ends first, the waiters whose contexts are still live try again
// themselves rather than inherit an error that is not theirs. The leader
// stores its result in the cache before the key is released.
type flight struct {
	mu sync.Mutex
	m  map[cacheKey]*call
}

type call struct {
	done    chan struct{}
	e       *entry
	waiters int // callers waiting, the leader included; guarded by flight.mu
}

// maxFlightRetries bounds how often a waiter takes over after leaders whose
// contexts ended.
const maxFlightRetries = 3

func (f *flight) do(ctx context.Context, k cacheKey, fn func(context.Context) *entry) (*entry, error) {
	for try := 0; ; try++ {
		f.mu.Lock()
		if f.m == nil {
			f.m = make(map[cacheKey]*call)
		}
		c, ok := f.m[k]
		if !ok {
			c = &call{done: make(chan struct{}), waiters: 1}
			f.m[k] = c
			f.mu.Unlock()
			c.e = fn(ctx)
			f.mu.Lock()
			c.waiters--
			delete(f.m, k)
			f.mu.Unlock()
			close(c.done)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return c.e, nil
		}
		c.waiters++
		f.mu.Unlock()
		var e *entry
		select {
		case <-c.done:
			e = c.e
		case <-ctx.Done():
		}
		f.mu.Lock()
		c.waiters--
		f.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if try < maxFlightRetries && e.err != nil &&
			(errors.Is(e.err, context.Canceled) || errors.Is(e.err, context.DeadlineExceeded)) {
			continue // the leader gave up; our context is still live
		}
		return e, nil
	}
}

// waiting returns how many callers wait for lookups in flight.
func (f *flight) waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.m {
		n += c.waiters
	}
	return n
}

// lookup returns the entry for k from the cache, or fetches it. The hit path
// is kept free of closures so that it does not allocate.
func (r *Resolver) lookup(ctx context.Context, k cacheKey) (*entry, error) {
	if e := r.cache.get(k, r.clock()); e != nil {
		return e, nil
	}
	return r.miss(ctx, k)
}

func (r *Resolver) miss(ctx context.Context, k cacheKey) (*entry, error) {
	return r.flight.do(ctx, k, func(ctx context.Context) *entry {
		e := r.fetch(ctx, k)
		if e.ttl > 0 {
			now := r.clock()
			e.expires = now.Add(e.ttl)
			r.cache.put(k, e, now)
		}
		return e
	})
}

// fetch does the lookup k stands for, without the cache.
func (r *Resolver) fetch(ctx context.Context, k cacheKey) *entry {
	switch k.kind {
	case kindMX:
		return r.fetchMX(ctx, k.name)
	case kindIP:
		return r.fetchIP(ctx, k.name, IPPreference(k.arg))
	case kindTLSA:
		return r.fetchTLSA(ctx, k.name, k.arg)
	case kindSTSTXT:
		return r.fetchTXT(ctx, "_mta-sts."+k.name+".")
	case kindTXT:
		return r.fetchTXT(ctx, k.name+".")
	case kindPTR:
		return r.fetchPTR(ctx, k.name+".")
	}
	panic("mx: unknown lookup kind")
}

// ttlOf turns a TTL in seconds into a cache lifetime, capped by limit.
func ttlOf(sec uint32, limit time.Duration) time.Duration {
	d := time.Duration(sec) * time.Second
	return min(d, limit)
}

// CachedLookups returns how many DNS lookups r's cache holds now, expired
// ones not yet dropped included: at most CacheSize (DefaultCacheSize when
// zero). MTA-STS policies are kept apart, in their own memory budget.
func (r *Resolver) CachedLookups() int { return r.cache.len() }
