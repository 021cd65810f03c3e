package boltstore

import (
	"container/heap"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// tx wraps a write transaction with the index operations.
type tx struct{ *bolt.Tx }

func (t tx) b(name []byte) *bolt.Bucket { return t.Bucket(name) }

func (t tx) add(name []byte, d int64) error {
	m := t.b(bMeta)
	var n int64
	if v := m.Get(name); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n+d))
	return m.Put(name, b[:])
}

func readCounter(b *bolt.Bucket, name []byte) int {
	if v := b.Get(name); len(v) == 8 {
		return int(int64(binary.BigEndian.Uint64(v)))
	}
	return 0
}

// schedule puts id into key's due index at due and keeps key's head.
func (t tx) schedule(key, id string, due int64) error {
	if err := t.b(bDue).Put(dueKey(key, due, id), nil); err != nil {
		return err
	}
	hv := t.b(bHeadOf).Get([]byte(key))
	if hv != nil && unbe64(hv) <= due {
		return nil
	}
	return t.setHead(key, hv, due, true)
}

// unschedule removes id from key's due index and keeps key's head.
func (t tx) unschedule(key, id string, due int64) error {
	if err := t.b(bDue).Delete(dueKey(key, due, id)); err != nil {
		return err
	}
	hv := t.b(bHeadOf).Get([]byte(key))
	if hv == nil || unbe64(hv) != due {
		return nil // not the head: the head stays
	}
	p := keyPrefix(key)
	k, _ := t.b(bDue).Cursor().Seek(p)
	if !hasPrefix(k, p) {
		return t.setHead(key, hv, 0, false)
	}
	next, _ := splitDue(p, k)
	return t.setHead(key, hv, next, true)
}

// setHead replaces key's head entry (old, nil if none) with due, or
// removes it when !ok.
func (t tx) setHead(key string, old []byte, due int64, ok bool) error {
	heads := t.b(bHeads)
	if old != nil {
		if err := heads.Delete(append(append([]byte(nil), old...), key...)); err != nil {
			return err
		}
	}
	if !ok {
		return t.b(bHeadOf).Delete([]byte(key))
	}
	d := be64(due)
	if err := heads.Put(append(append([]byte(nil), d...), key...), nil); err != nil {
		return err
	}
	return t.b(bHeadOf).Put([]byte(key), d)
}

// activeLeases counts key's leases that end after now.
func (t tx) activeLeases(key string, now int64) int {
	p := keyPrefix(key)
	n := 0
	c := t.b(bLeased).Cursor()
	for k, v := c.Seek(p); hasPrefix(k, p); k, v = c.Next() {
		if len(v) == 8 && unbe64(v) > now {
			n++
		}
	}
	return n
}

// pick is a due job chosen by Claim.
type pick struct {
	key, id string
	due     int64
}

// keyCursor walks one key's due jobs.
type keyCursor struct {
	key    string
	prefix []byte
	c      *bolt.Cursor
	due    int64
	id     string
	budget int
}

type cursorHeap []*keyCursor

func (h cursorHeap) Len() int { return len(h) }
func (h cursorHeap) Less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].id < h[j].id
}
func (h cursorHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)   { *h = append(*h, x.(*keyCursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// due chooses up to max due jobs at now, in due order across keys (a merge
// of the keys' due indexes, opened lazily in order of their heads), leaving
// each key at most perKey unexpired leases. It only reads.
func (t tx) due(max, perKey int, now int64) []pick {
	var out []pick
	var h cursorHeap
	hc := t.b(bHeads).Cursor()
	hk, _ := hc.First()
	// open adds the next key from the heads index, if it is due.
	open := func() bool {
		for ; hk != nil && unbe64(hk[:8]) <= now; hk, _ = hc.Next() {
			key := string(hk[8:])
			budget := max
			if perKey > 0 {
				budget = min(budget, perKey-t.activeLeases(key, now))
			}
			if budget <= 0 {
				continue // at its limit: skipped, not waited for
			}
			kc := &keyCursor{key: key, prefix: keyPrefix(key), c: t.b(bDue).Cursor(), budget: budget}
			k, _ := kc.c.Seek(kc.prefix)
			if !hasPrefix(k, kc.prefix) {
				continue
			}
			kc.due, kc.id = splitDue(kc.prefix, k)
			if kc.due > now {
				continue
			}
			heap.Push(&h, kc)
			hk, _ = hc.Next()
			return true
		}
		return false
	}
	for len(out) < max {
		// Open every key whose head comes before the current best.
		for hk != nil && (len(h) == 0 || unbe64(hk[:8]) <= h[0].due) {
			if !open() {
				break
			}
		}
		if len(h) == 0 {
			break
		}
		kc := h[0]
		out = append(out, pick{kc.key, kc.id, kc.due})
		kc.budget--
		k, _ := kc.c.Next()
		if kc.budget == 0 || !hasPrefix(k, kc.prefix) {
			heap.Pop(&h)
			continue
		}
		if kc.due, kc.id = splitDue(kc.prefix, k); kc.due > now {
			heap.Pop(&h)
			continue
		}
		heap.Fix(&h, 0)
	}
	return out
}
