package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/mxrelay/mxrelay/queue"
)

// Payload is the JSON body of a delivery:
//
//	{"endpoint":"orders","first":17,"last":19,"seqs":[17,19],"events":[{...},{...}]}
//
// Events are the outbox items' Data, inserted as they were appended, in
// outbox order; Seqs[i] is the outbox position of Events[i]. Positions
// increase within an endpoint but need not be consecutive, and an item
// that was not valid JSON is left out, so len(Events) may be less than
// Last-First+1.
type Payload struct {
	// Endpoint is the name of the outbox (Endpoint.Name).
	Endpoint string `json:"endpoint"`
	// First and Last are the positions of the batch's first and last
	// items, left-out ones included.
	First int64 `json:"first"`
	Last  int64 `json:"last"`
	// Seqs holds the position of each event, increasing.
	Seqs []int64 `json:"seqs"`
	// Events are the items, each one JSON value.
	Events []json.RawMessage `json:"events"`
}

// DeliveryID returns the value of the Mxrelay-Delivery header of the
// batch: the first 16 hexadecimal digits of SHA-256 of the endpoint name,
// a hyphen, First, a hyphen, Last. An attempt that repeats a batch whose
// answer was lost has the same ID, but a later attempt may hold more
// items (the same First, a larger Last); deduplicate by Seqs.
func (p *Payload) DeliveryID() string {
	return deliveryID(p.Endpoint, p.First, p.Last)
}

func deliveryID(endpoint string, first, last int64) string {
	sum := sha256.Sum256([]byte(endpoint))
	return hex.EncodeToString(sum[:8]) + "-" + strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10)
}

// validItem reports whether data can go into a payload as it is: one JSON
// value in UTF-8 (RFC 8259 §8.1).
func validItem(data []byte) bool {
	return utf8.Valid(data) && json.Valid(data)
}

// encodePayload writes the body for the items of b, leaving out those
// that are not valid items. It returns the body (nil when no item is
// valid) and the items left out.
func encodePayload(b *queue.OutboxBatch) (body []byte, invalid []queue.OutboxItem) {
	size := 64 + len(b.Endpoint)
	valid := 0
	for _, it := range b.Items {
		if validItem(it.Data) {
			size += len(it.Data) + 22
			valid++
		} else {
			invalid = append(invalid, it)
		}
	}
	if valid == 0 {
		return nil, invalid
	}
	name, _ := json.Marshal(b.Endpoint) // a string always marshals
	body = make([]byte, 0, size)
	body = append(body, `{"endpoint":`...)
	body = append(body, name...)
	body = append(body, `,"first":`...)
	body = strconv.AppendInt(body, b.Items[0].Seq, 10)
	body = append(body, `,"last":`...)
	body = strconv.AppendInt(body, b.Items[len(b.Items)-1].Seq, 10)
	body = append(body, `,"seqs":[`...)
	n := 0
	for _, it := range b.Items {
		if validItem(it.Data) {
			if n > 0 {
				body = append(body, ',')
			}
			body = strconv.AppendInt(body, it.Seq, 10)
			n++
		}
	}
	body = append(body, `],"events":[`...)
	n = 0
	for _, it := range b.Items {
		if validItem(it.Data) {
			if n > 0 {
				body = append(body, ',')
			}
			body = append(body, it.Data...)
			n++
		}
	}
	body = append(body, "]}"...)
	return body, invalid
}

// decodePayload parses a verified body and checks that it is consistent.
func decodePayload(body []byte) (*Payload, error) {
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPayload, err)
	}
	switch {
	case p.Endpoint == "":
		return nil, fmt.Errorf("%w: no endpoint", ErrInvalidPayload)
	case p.First > p.Last:
		return nil, fmt.Errorf("%w: first %d after last %d", ErrInvalidPayload, p.First, p.Last)
	case len(p.Seqs) != len(p.Events):
		return nil, fmt.Errorf("%w: %d seqs for %d events", ErrInvalidPayload, len(p.Seqs), len(p.Events))
	}
	for i, s := range p.Seqs {
		if s < p.First || s > p.Last || i > 0 && s <= p.Seqs[i-1] {
			return nil, fmt.Errorf("%w: seq %d out of order or outside %d-%d", ErrInvalidPayload, s, p.First, p.Last)
		}
	}
	return &p, nil
}
