package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// Buckets.
var (
	bJobs      = []byte("jobs")    // id → record (JSON)
	bMsgs      = []byte("msgs")    // id → message bytes
	bDue       = []byte("due")     // key 0x00 due(8) id → nil: due jobs per key
	bHeads     = []byte("heads")   // due(8) key → nil: each key's earliest due
	bHeadOf    = []byte("headof")  // key → due(8)
	bLeased    = []byte("leased")  // key 0x00 id → until(8): unfinished claims
	bHeld      = []byte("held")    // id → nil
	bCorrupt   = []byte("corrupt") // id → decoding error
	bMeta      = []byte("meta")    // counters
	allBuckets = [][]byte{bJobs, bMsgs, bDue, bHeads, bHeadOf, bLeased, bHeld, bCorrupt, bMeta}

	kTotal = []byte("total") // jobs stored, corrupt ones included
	kHeld  = []byte("held")  // held jobs
)

// record is a job as stored, without its message. Times are Unix
// nanoseconds, 0 for the zero time.
type record struct {
	From       string            `json:"f"`
	Rcpts      []rcpt            `json:"r"`
	Created    int64             `json:"c"`
	Attempts   int               `json:"a,omitempty"`
	Next       int64             `json:"n"`
	LastError  string            `json:"e,omitempty"`
	Held       bool              `json:"h,omitempty"`
	Key        string            `json:"k"`
	Meta       map[string]string `json:"m,omitempty"`
	LeaseOwner string            `json:"lo,omitempty"`
	LeaseToken string            `json:"lt,omitempty"`
	LeaseUntil int64             `json:"lu,omitempty"`
	Due        int64             `json:"d"` // position in the due index while not held
}

type rcpt struct {
	Addr  string `json:"a"`
	State uint8  `json:"s,omitempty"`
	Reply string `json:"r,omitempty"`
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func toRecord(j *queue.Job) *record {
	r := &record{
		From: j.From, Created: nanos(j.Created), Attempts: j.Attempts,
		Next: nanos(j.NextAttempt), LastError: j.LastError, Held: j.Held,
		Key: j.RoutingKey, Meta: j.Metadata,
	}
	r.setRcpts(j.Recipients)
	return r
}

func (r *record) setRcpts(rs []queue.Recipient) {
	r.Rcpts = make([]rcpt, len(rs))
	for i, x := range rs {
		r.Rcpts[i] = rcpt{Addr: x.Addr, State: uint8(x.State), Reply: x.Reply}
	}
}

func (r *record) job(id string, msg []byte) *queue.Job {
	j := &queue.Job{
		ID: id, From: r.From, Created: fromNanos(r.Created), Attempts: r.Attempts,
		NextAttempt: fromNanos(r.Next), LastError: r.LastError, Held: r.Held,
		RoutingKey: r.Key, Metadata: r.Meta, Message: msg,
		Recipients: make([]queue.Recipient, len(r.Rcpts)),
	}
	for i, x := range r.Rcpts {
		j.Recipients[i] = queue.Recipient{Addr: x.Addr, State: queue.RecipientState(x.State), Reply: x.Reply}
	}
	if r.LeaseToken != "" {
		j.Lease = queue.Lease{Owner: r.LeaseOwner, Token: r.LeaseToken, Until: fromNanos(r.LeaseUntil)}
	}
	return j
}

func decode(id string, b []byte) (*record, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, &queue.CorruptError{ID: id, Err: err}
	}
	if len(r.Rcpts) == 0 {
		return nil, &queue.CorruptError{ID: id, Err: errors.New("no recipients")}
	}
	return &r, nil
}

func encode(r *record) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic("boltstore: encoding a record: " + err.Error()) // strings, ints and a string map: cannot fail
	}
	return b
}

// be64 encodes a Unix-nanosecond time so that byte order is time order.
func be64(n int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n)^(1<<63))
	return b[:]
}

func unbe64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// dueKey is key 0x00 due(8) id.
func dueKey(key string, due int64, id string) []byte {
	b := make([]byte, 0, len(key)+9+len(id))
	b = append(append(append(append(b, key...), 0), be64(due)...), id...)
	return b
}

func keyPrefix(key string) []byte { return append([]byte(key), 0) }

// splitDue returns the due time and id of a due-index key under prefix p.
func splitDue(p, k []byte) (int64, string) {
	return unbe64(k[len(p) : len(p)+8]), string(k[len(p)+8:])
}

func leasedKey(key, id string) []byte {
	return append(keyPrefix(key), id...)
}

func hasPrefix(k, p []byte) bool { return k != nil && bytes.HasPrefix(k, p) }
