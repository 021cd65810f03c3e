package relay

import (
	"cmp"
	"slices"
)

// bounded returns the entry of key in m, created on first use. When m is
// full (s.maxKeys, StatsOther included) the less busy half of its keys are
// folded into StatsOther first, so that the bound costs one sort per
// maxKeys/2 new keys rather than a scan per key; s.mu is held.
func (s *statsRecorder) bounded(m map[string]*Counts, key string) *Counts {
	if c := m[key]; c != nil {
		return c
	}
	limit := s.maxKeys
	if limit <= 0 {
		limit = StatsKeys
	}
	if len(m) >= limit {
		fold(m, limit/2)
		if len(m) >= limit { // a bound too small to fold anything away
			return counts(m, StatsOther)
		}
	}
	return counts(m, key)
}

// fold merges all but the keep busiest entries of m (StatsOther aside)
// into StatsOther.
func fold(m map[string]*Counts, keep int) {
	type row struct {
		key  string
		busy int64
	}
	rows := make([]row, 0, len(m))
	for k, c := range m {
		if k != StatsOther {
			rows = append(rows, row{k, c.busy()})
		}
	}
	// Busiest first; equal ones by key, so that the fold is reproducible.
	slices.SortFunc(rows, func(a, b row) int { return cmp.Or(cmp.Compare(b.busy, a.busy), cmp.Compare(a.key, b.key)) })
	keep = max(0, keep-1) // StatsOther takes a slot
	if keep >= len(rows) {
		return
	}
	other := counts(m, StatsOther)
	for _, r := range rows[keep:] {
		other.merge(m[r.key])
		delete(m, r.key)
	}
}

// busy is how much happened to a key: what fold ranks keys by.
func (c *Counts) busy() int64 {
	return c.Sent + c.Queued + c.Attempts + c.Delivered + c.Deferred + c.Bounced + c.Expired + c.Suppressed +
		c.Unsubscribed + c.Complained + c.Delayed + c.AutoReplied + c.Unmatched + c.Opened + c.OpenedMachine +
		c.Clicked + c.ClickedMachine
}

// merge adds o's counts to c.
func (c *Counts) merge(o *Counts) {
	c.Queued += o.Queued
	c.Attempts += o.Attempts
	c.Delivered += o.Delivered
	c.Deferred += o.Deferred
	c.Bounced += o.Bounced
	c.Expired += o.Expired
	c.Suppressed += o.Suppressed
	c.Unsubscribed += o.Unsubscribed
	c.Complained += o.Complained
	c.Delayed += o.Delayed
	c.AutoReplied += o.AutoReplied
	c.Unmatched += o.Unmatched
	c.Sent += o.Sent
	c.Opened += o.Opened
	c.OpenedUnique += o.OpenedUnique
	c.OpenedMachine += o.OpenedMachine
	c.Clicked += o.Clicked
	c.ClickedUnique += o.ClickedUnique
	c.ClickedMachine += o.ClickedMachine
}
