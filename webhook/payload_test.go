package webhook

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/queue"
)

func TestEncodePayload(t *testing.T) {
	b := &queue.OutboxBatch{Endpoint: "orders", Items: []queue.OutboxItem{
		{Seq: 1, Data: []byte(`{"id":"a"}`)},
		{Seq: 2, Data: []byte(`{"id":"b"}`)},
	}}
	body, invalid := encodePayload(b)
	if string(body) != vecBody || len(invalid) != 0 {
		t.Errorf("encodePayload = %s, %v\nwant %s", body, invalid, vecBody)
	}

	b = &queue.OutboxBatch{Endpoint: "a \"quoted\" <name>\u2028", Items: []queue.OutboxItem{
		{Seq: 4, Data: []byte(` [1, 2] `)},
		{Seq: 5, Data: []byte(`{bad`)},
		{Seq: 7, Data: []byte(`"\xff"`)}, // not UTF-8
		{Seq: 9, Data: []byte(`null`)},
		{Seq: 10, Data: nil},
	}}
	body, invalid = encodePayload(b)
	want := `{"endpoint":"a \"quoted\" \u003cname\u003e\u2028","first":4,"last":10,"seqs":[4,9],"events":[ [1, 2] ,null]}`
	if string(body) != want {
		t.Errorf("encodePayload = %s\nwant %s", body, want)
	}
	if len(invalid) != 3 || invalid[0].Seq != 5 || invalid[1].Seq != 7 || invalid[2].Seq != 10 {
		t.Errorf("invalid = %v", invalid)
	}
	if !json.Valid(body) {
		t.Error("the body is not JSON")
	}
	p, err := decodePayload(body)
	if err != nil {
		t.Fatal(err)
	}
	if p.Endpoint != b.Endpoint || p.First != 4 || p.Last != 10 || len(p.Events) != 2 || string(p.Events[0]) != `[1, 2]` {
		t.Errorf("decoded %+v", p)
	}

	body, invalid = encodePayload(&queue.OutboxBatch{Endpoint: "e", Items: []queue.OutboxItem{{Seq: 1, Time: time.Now(), Data: []byte("x")}}})
	if body != nil || len(invalid) != 1 {
		t.Errorf("all invalid: %s, %v", body, invalid)
	}
}

func TestDeliveryID(t *testing.T) {
	if id := deliveryID("orders", 1, 2); id != vecDelivr {
		t.Errorf("deliveryID = %s, want %s", id, vecDelivr)
	}
	if deliveryID("orders", 1, 2) == deliveryID("orders2", 1, 2) {
		t.Error("two endpoints share an ID")
	}
}
