package queue_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/queue"
)

// FuzzValidate feeds user-supplied envelopes to Validate: it must never
// panic, and an accepted job must have no line breaks in any address and no
// recipient twice.
func FuzzValidate(f *testing.F) {
	f.Add("a@example.org", "b@example.com\nc@example.com", []byte("x"))
	f.Add("", "b@EXAMPLE.com\nb@example.COM", []byte("x"))
	f.Add("a b", "x\r\ny", []byte{})
	f.Fuzz(func(t *testing.T, from, to string, msg []byte) {
		j := queue.NewJob(from, strings.Split(to, "\n"), msg)
		err := j.Validate()
		if err != nil {
			for _, want := range []error{queue.ErrNoMessage, queue.ErrNoRecipients, queue.ErrDuplicateRecipient, queue.ErrInvalid} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("Validate: untyped error %v", err)
		}
		seen := map[string]bool{}
		for _, r := range j.Recipients {
			if strings.ContainsAny(r.Addr, "\r\n\x00") {
				t.Fatalf("accepted recipient %q", r.Addr)
			}
			k := r.Addr
			if i := strings.LastIndexByte(r.Addr, '@'); i >= 0 {
				k = r.Addr[:i] + strings.ToLower(r.Addr[i:])
			}
			if seen[k] {
				t.Fatalf("accepted duplicate %q", r.Addr)
			}
			seen[k] = true
		}
	})
}
