package relay

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzCheckRaw checks SendRaw's input policy: whatever it accepts is
// RFC 5322 line-clean, a CRLF message passes unchanged, and the only
// change is LF → CRLF. Run longer with
//
//	go test -run X -fuzz FuzzCheckRaw -fuzztime 5m ./relay/
func FuzzCheckRaw(f *testing.F) {
	for _, s := range []string{
		"From: a@example.org\r\n\r\nbody\r\n",
		"From: a@example.org\n\nbody\n",
		"Subject: a\rReply-To: b\r\n\r\n",
		"a\r\n.\r\nb",
		"\r", "\n", "\r\n", "",
		"a\x00b\r\n",
		string(bytes.Repeat([]byte("x"), 999)),
		string(bytes.Repeat([]byte("x"), 998)) + "\n",
		"mixed\r\nends\nhere\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		out, err := checkRaw(in)
		if !bytes.Equal(in, orig) {
			t.Fatal("input modified")
		}
		if err != nil {
			var me *MessageError
			if !errors.As(err, &me) || !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("error %v is not a *MessageError", err)
			}
			if me.Offset < 0 || me.Offset >= len(in) || me.Line < 1 {
				t.Fatalf("bad position %+v for %d bytes", me, len(in))
			}
			return
		}
		if bytes.IndexByte(out, 0) >= 0 {
			t.Fatal("NUL accepted")
		}
		for i, line := range bytes.Split(out, []byte("\r\n")) {
			if bytes.ContainsAny(line, "\r\n") {
				t.Fatalf("line %d has a bare CR or LF: %q", i+1, line)
			}
			if len(line) > maxLineOctets {
				t.Fatalf("line %d has %d octets", i+1, len(line))
			}
		}
		bareLF := bytes.Count(orig, []byte("\n")) != bytes.Count(orig, []byte("\r\n"))
		if !bareLF && !bytes.Equal(out, orig) {
			t.Fatalf("CRLF input changed: %q → %q", orig, out)
		}
		if !bytes.Equal(bytes.ReplaceAll(out, []byte("\r\n"), []byte("\n")), bytes.ReplaceAll(orig, []byte("\r\n"), []byte("\n"))) {
			t.Fatalf("content changed: %q → %q", orig, out)
		}
	})
}

func BenchmarkCheckRaw(b *testing.B) {
	line := bytes.Repeat([]byte("abcdefghij"), 7)
	var msg []byte
	for len(msg) < 5000 {
		msg = append(append(msg, line...), '\r', '\n')
	}
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := checkRaw(msg); err != nil {
			b.Fatal(err)
		}
	}
}
