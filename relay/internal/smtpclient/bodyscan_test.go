package smtpclient

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// refInfo is what the reference functions (one pass each) say of body.
func refInfo(body []byte) bodyInfo {
	size, eight := scanBody(body)
	var stuffed, plain bytes.Buffer
	d := DataWriter{w: &stuffed, stuff: true, lineStart: true}
	d.Write(body)
	d.Close()
	d = DataWriter{w: &plain, lineStart: true}
	d.Write(body)
	d.Close()
	clean := wellFormed(body)
	return bodyInfo{
		size: size, eight: eight, problem: dataProblem(body), clean: clean,
		// With clean lines, stuffing adds exactly the dots; the end adds ".\r\n".
		dots: clean && stuffed.Len() != plain.Len()+3,
	}
}

// checkScan compares scanMessage with the reference functions, and the
// bytes Send puts on the wire on its fast path with DataWriter's.
func checkScan(t *testing.T, body []byte) {
	t.Helper()
	got, want := scanMessage(body), refInfo(body)
	if !got.clean {
		got.dots = false // only meaningful for clean bodies
	}
	if got != want {
		t.Fatalf("scanMessage(%q) = %+v, want %+v", body, got, want)
	}
	if got.clean && !got.dots {
		var b bytes.Buffer
		d := DataWriter{w: &b, stuff: true, lineStart: true}
		d.Write(body)
		d.Close()
		if fast := string(body) + ".\r\n"; b.String() != fast {
			t.Fatalf("the fast path sends %q, DataWriter %q", fast, b.String())
		}
	}
}

func TestScanMessage(t *testing.T) {
	long := strings.Repeat("x", 998)
	for _, s := range []string{
		"", "x", "\r\n", "a\r\n", "a\r\nb", "a\nb\r\n", "a\rb\r\n", "a\r\r\n", "\r\n\r\n.\r\n",
		".a\r\n", "a\r\n.b\r\n", "abcdef\r\n.b\r\n", "abcdefg\r\n.b\r\n", "abcde\r\n.\r\n",
		"a\x00b\r\n", "caf\xc3\xa9\r\n", long + "\r\n", long + "x\r\n", "a\r\n" + long + "x\r\n",
		long + "\r\n" + long + "\r\n", "1234567\r", "1234567\r\n", "123456\r\n.", "1234567\n.\r\n",
		"12345678\r\n.2345678\r\n", strings.Repeat("abc.\r\n", 40), strings.Repeat("ab\r\n.", 40) + "\r\n",
	} {
		checkScan(t, []byte(s))
	}
}

func FuzzScanMessage(f *testing.F) {
	for _, s := range []string{"a\r\n.b\r\n", "x\ry\nz\r\n", strings.Repeat("x", 1001) + "\r\n", "1234567\r\n.x\r\n\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkScan(t, body)
		// And as a message of mostly clean lines, where the fast path runs.
		clean := bytes.ReplaceAll(bytes.ReplaceAll(body, []byte("\r"), nil), []byte("\n"), []byte("\r\n"))
		checkScan(t, append(clean, "\r\n"...))
	})
}

// BenchmarkScanMessage measures what Send does to a clean 60 KB message
// of 72-octet lines before it writes it: scanMessage (after which the
// message is written as it is), against the passes it replaces, which
// then normalised the message line by line through DataWriter.
func BenchmarkScanMessage(b *testing.B) {
	body := []byte(strings.Repeat("00042 The quick brown fox jumps over the lazy dog, again and again. xxx\r\n", 850))
	b.Run("scanMessage", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if !scanMessage(body).clean {
				b.Fatal("not clean")
			}
		}
	})
	b.Run("passes", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			scanBody(body)
			if dataProblem(body) != "" {
				b.Fatal("a problem")
			}
			d := DataWriter{w: io.Discard, stuff: true, lineStart: true}
			d.Write(body)
			d.Close()
		}
	})
}
