package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

// bSuppress holds the suppression list: address 0x00 scope → entry. An
// address holds no NUL byte (Suppress refuses one), so the first NUL of a
// key ends the address, and byte order of the keys is the order of
// (Address, Scope). The bucket is created by the first Suppress, so a file
// that never had a suppression has none.
var bSuppress = []byte("suppress")

// suppressKey returns key appended to b.
func suppressKey(b []byte, address, scope string) []byte {
	b = append(b, address...)
	b = append(b, 0)
	return append(b, scope...)
}

// splitSuppressKey returns the address and scope of key k.
func splitSuppressKey(k []byte) (address, scope string, err error) {
	i := bytes.IndexByte(k, 0)
	if i <= 0 {
		return string(k), "", errors.New("key is not address 0x00 scope")
	}
	return string(k[:i]), string(k[i+1:]), nil
}

// A suppression entry's value, version 1 (all integers big-endian):
//
//	version   1 byte, suppressVersion
//	reason    1 byte, a valid queue.SuppressReason
//	created   8 bytes of Unix seconds, 4 bytes of nanoseconds
//	expires   8 bytes of Unix seconds, 4 bytes of nanoseconds
//	source    the remaining bytes but 4
//	checksum  4 bytes: CRC-32C of the key and of the bytes before it
//
// Times keep their nanoseconds, and any year, since seconds and
// nanoseconds are stored apart; the zero time is stored as the Unix time of
// year 1 and read back as the zero time. Times are read back in the local
// time zone, as job times are. The checksum covers the key, so a damaged
// address or scope is caught as well as a damaged value.
const (
	suppressVersion = 1
	suppressFixed   = 1 + 1 + 12 + 12 // the bytes before the source
	suppressMin     = suppressFixed + 4
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// encodeSuppression returns the value stored under key for e.
func encodeSuppression(key []byte, e *queue.Suppression) []byte {
	b := make([]byte, 0, suppressMin+len(e.Source))
	b = append(b, suppressVersion, byte(e.Reason))
	b = appendTime(b, e.Created)
	b = appendTime(b, e.Expires)
	b = append(b, e.Source...)
	return appendSum(key, b)
}

// appendSum appends the checksum of key and body to body.
func appendSum(key, body []byte) []byte {
	return binary.BigEndian.AppendUint32(body, crc32.Update(crc32.Checksum(key, crc32c), crc32c, body))
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix()))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

// decodeSuppression decodes the entry stored as k → v. What cannot be
// decoded gives a *queue.CorruptSuppressionError.
func decodeSuppression(k, v []byte) (queue.Suppression, error) {
	address, scope, err := splitSuppressKey(k)
	bad := func(err error) (queue.Suppression, error) {
		return queue.Suppression{}, &queue.CorruptSuppressionError{Address: address, Scope: scope, Err: err}
	}
	if err != nil {
		return bad(err)
	}
	if len(v) < suppressMin {
		return bad(fmt.Errorf("a record of %d bytes, at least %d expected", len(v), suppressMin))
	}
	body := v[:len(v)-4]
	if got, want := binary.BigEndian.Uint32(v[len(v)-4:]), crc32.Update(crc32.Checksum(k, crc32c), crc32c, body); got != want {
		return bad(fmt.Errorf("checksum %08x, want %08x", got, want))
	}
	if body[0] != suppressVersion {
		return bad(fmt.Errorf("record version %d, this release reads %d", body[0], suppressVersion))
	}
	e := queue.Suppression{Address: address, Scope: scope, Reason: queue.SuppressReason(body[1])}
	if !e.Reason.Valid() {
		return bad(fmt.Errorf("reason %d", body[1]))
	}
	if e.Created, err = readTime(body[2:14]); err != nil {
		return bad(fmt.Errorf("created: %w", err))
	}
	if e.Expires, err = readTime(body[14:26]); err != nil {
		return bad(fmt.Errorf("expires: %w", err))
	}
	e.Source = string(body[suppressFixed:])
	return e, nil
}

func readTime(b []byte) (time.Time, error) {
	sec, ns := int64(binary.BigEndian.Uint64(b)), binary.BigEndian.Uint32(b[8:])
	if ns >= 1e9 {
		return time.Time{}, fmt.Errorf("%d nanoseconds", ns)
	}
	t := time.Unix(sec, int64(ns))
	if t.IsZero() {
		return time.Time{}, nil
	}
	return t, nil
}
