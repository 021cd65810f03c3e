package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// The history's buckets, created by the first Keep, so that a file that
// never kept a record has none:
//
//   - bHistory: ID → record, as encodeRecord writes it;
//   - bHistRcpt: FoldAddr(addr) 0x00 ID → nothing, one key for each entry
//     of each record: an address holds no NUL byte (CheckRecord refuses
//     one), so the keys of one address sit together in ID order, and
//     Records of a recipient walks them backwards from its cursor;
//   - bHistUpdated: updated(12) ID → nothing, one key for each record,
//     where updated is the record's Updated as 8 bytes of Unix seconds
//     with the sign bit flipped and 4 bytes of nanoseconds, big-endian,
//     so that byte order is time order and Expire walks the oldest first.
var (
	bHistory     = []byte("history")
	bHistRcpt    = []byte("history-rcpt")
	bHistUpdated = []byte("history-updated")
)

// histTimeLen is the length of a time in an index key.
const histTimeLen = 12

// rcptKey returns the index key of the entry for the folded address a in
// record id.
func rcptKey(a, id string) []byte {
	b := make([]byte, 0, len(a)+1+len(id))
	return append(append(append(b, a...), 0), id...)
}

// updatedKey returns the index key of record id updated at t.
func updatedKey(t time.Time, id string) []byte {
	b := make([]byte, 0, histTimeLen+len(id))
	b = appendIndexTime(b, t)
	return append(b, id...)
}

// appendIndexTime appends t as the index keys hold it.
func appendIndexTime(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// A record's value, version 1. Integers are varints (encoding/binary),
// lengths and counts unsigned ones; a string is its length and its bytes;
// a time is 8 bytes of Unix seconds and 4 of nanoseconds, big-endian, as
// suppression entries keep them (the zero time read back as the zero
// time); a flag is one byte, 0 or 1.
//
//	version    1 byte, histVersion
//	MessageID, From, Subject, Campaign, List     strings
//	Metadata   a count, then key and value strings, keys in byte order
//	Created, Updated                             times
//	Recipients a count, then for each entry
//	    Addr, Status                             strings
//	    Code                                     integer
//	    Enhanced, Category, Reply, MX, Source, TLSVersion   strings
//	    TLSVerified                              flag
//	    TLSPolicy                                string
//	    Time                                     time
//	    Attempts                                 integer
//	    Notes      a count, then for each note
//	        Type                                 string
//	        Time                                 time
//	        Detail                               string
//	        Machine                              flag
//	        UserAgent, Client                    strings
//	checksum   4 bytes: CRC-32C of the ID and of the bytes before it
//
// The checksum covers the ID, the key, so a record moved under another ID
// is caught as well as a damaged value. Times keep their nanoseconds.
const histVersion = 1

// encodeRecord returns the value stored under r.ID for r.
func encodeRecord(r *queue.Record) []byte {
	n := 64 + len(r.MessageID) + len(r.From) + len(r.Subject) + len(r.Campaign) + len(r.List)
	for k, v := range r.Metadata {
		n += 4 + len(k) + len(v)
	}
	for i := range r.Recipients {
		o := &r.Recipients[i]
		n += 64 + len(o.Addr) + len(o.Status) + len(o.Enhanced) + len(o.Category) + len(o.Reply) + len(o.MX) +
			len(o.Source) + len(o.TLSVersion) + len(o.TLSPolicy)
		for j := range o.Notes {
			nt := &o.Notes[j]
			n += 32 + len(nt.Type) + len(nt.Detail) + len(nt.UserAgent) + len(nt.Client)
		}
	}
	b := make([]byte, 0, n)
	b = append(b, histVersion)
	b = appendStrings(b, r.MessageID, r.From, r.Subject, r.Campaign, r.List)
	b = binary.AppendUvarint(b, uint64(len(r.Metadata)))
	for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
		b = appendStrings(b, k, r.Metadata[k])
	}
	b = appendTime(appendTime(b, r.Created), r.Updated)
	b = binary.AppendUvarint(b, uint64(len(r.Recipients)))
	for i := range r.Recipients {
		o := &r.Recipients[i]
		b = appendStrings(b, o.Addr, o.Status)
		b = binary.AppendVarint(b, int64(o.Code))
		b = appendStrings(b, o.Enhanced, o.Category, o.Reply, o.MX, o.Source, o.TLSVersion)
		b = appendFlag(b, o.TLSVerified)
		b = appendStrings(b, o.TLSPolicy)
		b = appendTime(b, o.Time)
		b = binary.AppendVarint(b, int64(o.Attempts))
		b = binary.AppendUvarint(b, uint64(len(o.Notes)))
		for j := range o.Notes {
			nt := &o.Notes[j]
			b = appendStrings(b, nt.Type)
			b = appendTime(b, nt.Time)
			b = appendStrings(b, nt.Detail)
			b = appendFlag(b, nt.Machine)
			b = appendStrings(b, nt.UserAgent, nt.Client)
		}
	}
	return appendSum([]byte(r.ID), b)
}

// crc32Sum is the checksum of key and body, as appendSum appends it.
func crc32Sum(key, body []byte) uint32 {
	return crc32.Update(crc32.Checksum(key, crc32c), crc32c, body)
}

func appendStrings(b []byte, ss ...string) []byte {
	for _, s := range ss {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func appendFlag(b []byte, f bool) []byte {
	if f {
		return append(b, 1)
	}
	return append(b, 0)
}

// decodeRecord decodes the record stored as id → v. What cannot be
// decoded gives a *queue.CorruptError naming the record.
func decodeRecord(id string, v []byte) (queue.Record, error) {
	bad := func(err error) (queue.Record, error) {
		return queue.Record{}, &queue.CorruptError{ID: id, Err: fmt.Errorf("history record: %w", err)}
	}
	if len(v) < 1+4 {
		return bad(fmt.Errorf("%d bytes, at least 5 expected", len(v)))
	}
	body := v[:len(v)-4]
	if got, want := binary.BigEndian.Uint32(v[len(v)-4:]), crc32Sum([]byte(id), body); got != want {
		return bad(fmt.Errorf("checksum %08x, want %08x", got, want))
	}
	if body[0] != histVersion {
		return bad(fmt.Errorf("record version %d, this release reads %d", body[0], histVersion))
	}
	d := histDecoder{b: body[1:]}
	r := queue.Record{ID: id}
	d.strings(&r.MessageID, &r.From, &r.Subject, &r.Campaign, &r.List)
	if n := d.count(2); n > 0 {
		r.Metadata = make(map[string]string, n)
		prev := ""
		for i := range n {
			var k, v string
			d.strings(&k, &v)
			if i > 0 && k <= prev {
				d.fail(errors.New("metadata keys out of order"))
			}
			r.Metadata[k], prev = v, k
		}
	}
	r.Created, r.Updated = d.time(), d.time()
	if n := d.count(1 + 1 + 1 + 6 + 1 + 1 + 12 + 1 + 1); n > 0 {
		r.Recipients = make([]queue.RecipientRecord, n)
		for i := range r.Recipients {
			o := &r.Recipients[i]
			d.strings(&o.Addr, &o.Status)
			o.Code = d.int()
			d.strings(&o.Enhanced, &o.Category, &o.Reply, &o.MX, &o.Source, &o.TLSVersion)
			o.TLSVerified = d.flag()
			d.strings(&o.TLSPolicy)
			o.Time = d.time()
			o.Attempts = d.int()
			if n := d.count(1 + 12 + 1 + 1 + 2); n > 0 {
				o.Notes = make([]queue.Note, n)
				for j := range o.Notes {
					nt := &o.Notes[j]
					d.strings(&nt.Type)
					nt.Time = d.time()
					d.strings(&nt.Detail)
					nt.Machine = d.flag()
					d.strings(&nt.UserAgent, &nt.Client)
				}
			}
		}
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail(fmt.Errorf("%d bytes after the last field", len(d.b)))
	}
	if d.err != nil {
		return bad(d.err)
	}
	return r, nil
}

// histDecoder reads the fields of a record; after its first error it
// reads zero values.
type histDecoder struct {
	b   []byte
	err error
}

func (d *histDecoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *histDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errors.New("a number cut short or too large"))
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *histDecoder) int() int {
	if d.err != nil {
		return 0
	}
	x, n := binary.Varint(d.b)
	if n <= 0 || int64(int(x)) != x {
		d.fail(errors.New("a number cut short or too large"))
		return 0
	}
	d.b = d.b[n:]
	return int(x)
}

// count reads a count of items of at least min bytes each.
func (d *histDecoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail(fmt.Errorf("a count of %d in %d bytes", n, len(d.b)))
		return 0
	}
	return int(n)
}

func (d *histDecoder) strings(ss ...*string) {
	for _, s := range ss {
		n := d.uvarint()
		if n > uint64(len(d.b)) {
			d.fail(fmt.Errorf("a string of %d bytes in %d", n, len(d.b)))
		}
		if d.err != nil {
			return
		}
		*s = string(d.b[:n])
		d.b = d.b[n:]
	}
}

func (d *histDecoder) time() time.Time {
	if d.err == nil && len(d.b) < 12 {
		d.fail(errors.New("a time cut short"))
	}
	if d.err != nil {
		return time.Time{}
	}
	t, err := readTime(d.b[:12])
	if err != nil {
		d.fail(err)
		return time.Time{}
	}
	d.b = d.b[12:]
	return t
}

func (d *histDecoder) flag() bool {
	if d.err == nil && len(d.b) < 1 {
		d.fail(errors.New("a flag cut short"))
	}
	if d.err != nil {
		return false
	}
	f := d.b[0]
	if f > 1 {
		d.fail(fmt.Errorf("a flag of %d", f))
		return false
	}
	d.b = d.b[1:]
	return f == 1
}
