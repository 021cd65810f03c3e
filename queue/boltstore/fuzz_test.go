package boltstore

import (
	"errors"
	"testing"

	"github.com/mxrelay/mxrelay/queue"
)

// FuzzDecode feeds arbitrary bytes to the record decoder, as a damaged
// file would: it must report a CorruptError naming the job (a damaged
// record, not a damaged file: it does not match ErrCorrupt), never panic,
// and a record it accepts must encode and decode to the same job. The seeds
// run with go test; go test -fuzz FuzzDecode searches further.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"f":"a@example.org","r":[{"a":"b@example.com"}],"c":1,"n":2,"k":"example.com","d":2}`))
	f.Add([]byte(`{"r":[{"a":"x","s":3,"r":"550 no"}],"m":{"k":"v"},"lt":"t","lu":5}`))
	f.Add([]byte(`{not json`))
	f.Add([]byte(`{"r":[]}`))
	f.Add([]byte{})
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"r":null}`))
	f.Add([]byte(`{"f":"a@example.org","r":[{"a":"b@exa`)) // cut short
	f.Add([]byte("{\"r\":[{\"a\":\"\xff\xfe\"}]}"))        // not UTF-8
	f.Add([]byte(`{"r":[{"a":"x","s":300}]}`))             // state overflows uint8
	f.Add([]byte(`{"r":[{"a":"x"}],"c":1e99,"a":-1}`))
	f.Add([]byte(`{"r":[{"a":"x"}],"m":{"k":1}}`))
	f.Add(make([]byte, 64)) // a zeroed page
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decode("id1", b)
		if err != nil {
			var ce *queue.CorruptError
			if !errors.As(err, &ce) || ce.ID != "id1" || !errors.Is(err, queue.ErrCorrupt) {
				t.Fatalf("decode error %v is not a CorruptError for id1", err)
			}
			if errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error %v matches ErrCorrupt, which is for the file", err)
			}
			return
		}
		j := r.job("id1", nil)
		r2, err := decode("id1", encode(toRecord(j)))
		if err != nil {
			t.Fatalf("re-decoding an accepted record: %v", err)
		}
		if j2 := r2.job("id1", nil); len(j2.Recipients) != len(j.Recipients) || j2.From != j.From {
			t.Fatalf("round trip changed the job: %+v → %+v", j, j2)
		}
	})
}
