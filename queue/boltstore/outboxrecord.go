package boltstore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// bOutbox holds the webhook outboxes: one bucket for each endpoint, under
// its name, holding
//
//   - the endpoint's items, each under its Seq as 8 bytes big-endian, so
//     that byte order is Seq order and a cursor meets the oldest first;
//   - its head record under outboxHeadKey, which sorts after every item
//     key (one would need a Seq of 0x68<<56): the Seq of the next item, the
//     number of items, the failed attempts, next attempt and last error,
//     and the lease.
//
// The bucket is created by the first AppendOutbox, so a file that never
// had an outbox has none. An endpoint's bucket and head stay when its last
// item is acked, so that no Seq is given twice.
var (
	bOutbox       = []byte("outbox")
	outboxHeadKey = []byte("head")
)

// outboxSeqLen is the length of an item's key.
const outboxSeqLen = 8

// outboxKey returns the key of the item of Seq seq.
func outboxKey(seq int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, outboxSeqLen), uint64(seq))
}

// outboxHead is an endpoint's head record.
type outboxHead struct {
	next      int64     // Seq of the next item appended
	pending   int       // items stored
	attempts  int       // failed attempts since the last AckOutbox
	due       time.Time // NextAttempt; zero: due
	lastError string
	owner     string    // the lease's holder
	token     string    // the lease's token; "": no lease
	until     time.Time // the lease's end
}

// ready reports whether a claim at now gets the head of the outbox: it
// has items, is due, and has no unexpired lease.
func (h *outboxHead) ready(now time.Time) bool {
	return h.pending > 0 && !h.due.After(now) && (h.token == "" || !h.until.After(now))
}

// endLease ends h's lease.
func (h *outboxHead) endLease() { h.owner, h.token, h.until = "", "", time.Time{} }

// The values, version 1, with the history's encodings (integers are
// unsigned varints; a string is its length and its bytes; a time is 8
// bytes of Unix seconds and 4 of nanoseconds, big-endian, the zero time
// read back as the zero time). Times are whole microseconds, as every
// OutboxStore keeps them.
//
// A head record:
//
//	version             1 byte, outboxVersion
//	next, pending, attempts               integers
//	due, until                            times
//	lastError, owner, token               strings
//	checksum            4 bytes: CRC-32C of the endpoint and of the bytes before it
//
// An item:
//
//	version             1 byte, outboxVersion
//	time                a time
//	data                the remaining bytes but 4
//	checksum            4 bytes: CRC-32C of the endpoint, the key and the bytes before it
//
// The checksums cover the endpoint (and an item's Seq), so that a record
// moved under another is caught as well as a damaged value.
const (
	outboxVersion  = 1
	outboxItemMin  = 1 + 12 + 4         // version, time, checksum
	outboxHeadMin  = 1 + 3 + 24 + 3 + 4 // version, integers, times, strings, checksum
	outboxTimeUnit = time.Microsecond   // what times are truncated to
)

// outboxSum is the checksum of endpoint ep, key and body.
func outboxSum(ep string, key, body []byte) uint32 {
	sum := crc32.Checksum([]byte(ep), crc32c)
	return crc32.Update(crc32.Update(sum, crc32c, key), crc32c, body)
}

// encodeOutboxHead returns the value of ep's head record h.
func encodeOutboxHead(ep string, h *outboxHead) []byte {
	b := make([]byte, 0, outboxHeadMin+3*8+len(h.lastError)+len(h.owner)+len(h.token))
	b = append(b, outboxVersion)
	b = binary.AppendUvarint(b, uint64(h.next))
	b = binary.AppendUvarint(b, uint64(h.pending))
	b = binary.AppendUvarint(b, uint64(h.attempts))
	b = appendTime(appendTime(b, h.due), h.until)
	b = appendStrings(b, h.lastError, h.owner, h.token)
	return binary.BigEndian.AppendUint32(b, outboxSum(ep, nil, b))
}

// decodeOutboxHead decodes the head record v of endpoint ep. What cannot
// be decoded gives an error that matches queue.ErrCorrupt.
func decodeOutboxHead(ep string, v []byte) (outboxHead, error) {
	body, err := outboxBody(ep, nil, v, outboxHeadMin)
	if err != nil {
		return outboxHead{}, outboxCorrupt(ep, "head record", err)
	}
	d := histDecoder{b: body}
	next, pending, attempts := d.uvarint(), d.uvarint(), d.uvarint()
	h := outboxHead{due: d.time(), until: d.time()}
	d.strings(&h.lastError, &h.owner, &h.token)
	switch {
	case d.err != nil:
	case len(d.b) > 0:
		d.fail(fmt.Errorf("%d bytes after the last field", len(d.b)))
	case next < 1 || next > 1<<63-1 || pending >= next || attempts > 1<<31-1:
		d.fail(fmt.Errorf("next Seq %d, %d items, %d attempts", next, pending, attempts))
	}
	if d.err != nil {
		return outboxHead{}, outboxCorrupt(ep, "head record", d.err)
	}
	h.next, h.pending, h.attempts = int64(next), int(pending), int(attempts)
	return h, nil
}

// encodeOutboxItem returns the value of item seq of endpoint ep.
func encodeOutboxItem(ep string, seq int64, at time.Time, data []byte) []byte {
	b := make([]byte, 0, outboxItemMin+len(data))
	b = append(b, outboxVersion)
	b = appendTime(b, at)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, outboxSum(ep, outboxKey(seq), b))
}

// decodeOutboxItem decodes the item stored as k → v in ep's bucket, with
// a copy of its data. What cannot be decoded gives an error that matches
// queue.ErrCorrupt.
func decodeOutboxItem(ep string, k, v []byte) (queue.OutboxItem, error) {
	seq := int64(binary.BigEndian.Uint64(k))
	body, err := outboxBody(ep, k, v, outboxItemMin)
	if err == nil && seq < 1 {
		err = fmt.Errorf("a key of Seq %d", seq)
	}
	var at time.Time
	if err == nil {
		at, err = readTime(body[:12])
	}
	if err != nil {
		return queue.OutboxItem{}, outboxCorrupt(ep, fmt.Sprintf("item %d", seq), err)
	}
	return queue.OutboxItem{Seq: seq, Time: at, Data: append([]byte{}, body[12:]...)}, nil
}

// outboxBody checks the length, checksum and version of the value v
// stored under key in ep's bucket, and returns the bytes between the
// version and the checksum.
func outboxBody(ep string, key, v []byte, min int) ([]byte, error) {
	if len(v) < min {
		return nil, fmt.Errorf("%d bytes, at least %d expected", len(v), min)
	}
	body := v[:len(v)-4]
	if got, want := binary.BigEndian.Uint32(v[len(v)-4:]), outboxSum(ep, key, body); got != want {
		return nil, fmt.Errorf("checksum %08x, want %08x", got, want)
	}
	if body[0] != outboxVersion {
		return nil, fmt.Errorf("record version %d, this release reads %d", body[0], outboxVersion)
	}
	return body[1:], nil
}

// outboxCorrupt returns the error of a damaged record of ep's outbox: it
// matches queue.ErrCorrupt (a damaged record), not ErrCorrupt (a damaged
// file).
func outboxCorrupt(ep, what string, err error) error {
	return fmt.Errorf("boltstore: outbox %q, %s: %w: %w", ep, what, queue.ErrCorrupt, err)
}
