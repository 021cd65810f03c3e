package smtpclient

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

func TestDataWriter(t *testing.T) {
	tests := []struct {
		name, in, data, bdat string
	}{
		{"empty", "", ".\r\n", ""},
		{"crlf", "a\r\nb\r\n", "a\r\nb\r\n.\r\n", "a\r\nb\r\n"},
		{"no-final-eol", "a\r\nb", "a\r\nb\r\n.\r\n", "a\r\nb\r\n"},
		{"bare-lf", "a\nb\n", "a\r\nb\r\n.\r\n", "a\r\nb\r\n"},
		{"bare-cr", "a\rb\r", "a\r\nb\r\n.\r\n", "a\r\nb\r\n"},
		{"cr-cr-lf", "a\r\r\nb", "a\r\n\r\nb\r\n.\r\n", "a\r\n\r\nb\r\n"},
		{"lf-cr", "a\n\rb", "a\r\n\r\nb\r\n.\r\n", "a\r\n\r\nb\r\n"},
		{"leading-dot", ".a\r\n", "..a\r\n.\r\n", ".a\r\n"},
		{"lone-dot", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n", "a\r\n.\r\nb\r\n"},
		{"smuggle-lf", "a\n.\nMAIL", "a\r\n..\r\nMAIL\r\n.\r\n", "a\r\n.\r\nMAIL\r\n"},
		{"smuggle-crlf-lf", "a\r\n.\nMAIL", "a\r\n..\r\nMAIL\r\n.\r\n", "a\r\n.\r\nMAIL\r\n"},
		{"smuggle-cr", "a\r.\rMAIL", "a\r\n..\r\nMAIL\r\n.\r\n", "a\r\n.\r\nMAIL\r\n"},
		{"dot-after-bare-cr", "a\r..b", "a\r\n...b\r\n.\r\n", "a\r\n..b\r\n"},
		{"dots-mid-line", "a.b\r\n", "a.b\r\n.\r\n", "a.b\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, stuff := range []bool{true, false} {
				want := tc.bdat
				if stuff {
					want = tc.data
				}
				// Whole, then one byte per Write (state across calls).
				for _, split := range []int{0, 1} {
					var b bytes.Buffer
					d := NewDataWriter(&b, stuff)
					if split == 0 {
						d.Write([]byte(tc.in))
					} else {
						for i := 0; i < len(tc.in); i++ {
							d.Write([]byte{tc.in[i]})
						}
					}
					if err := d.Close(); err != nil {
						t.Fatal(err)
					}
					if b.String() != want || d.Written() != int64(len(want)) {
						t.Errorf("stuff=%v split=%d: got %q (%d), want %q", stuff, split, b.String(), d.Written(), want)
					}
				}
			}
			if size, _ := scanBody([]byte(tc.in)); size != int64(len(tc.bdat)) {
				t.Errorf("scanBody size %d, want %d", size, len(tc.bdat))
			}
		})
	}
}

func TestHas8bit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{{"", false}, {"plain ascii text, long enough", false}, {"abcdefghijklmnop\x80", true}, {"\xff", true}, {"abcdefg\xc3\xa9", true}} {
		if got := has8bit([]byte(tc.in)); got != tc.want {
			t.Errorf("has8bit(%q) = %v", tc.in, got)
		}
	}
}

// unstuff reverses DATA framing: it checks every line ends in CRLF, the
// only end-of-data is the last line, and removes the dot-stuffing.
func unstuff(t *testing.T, out string) string {
	if !strings.HasSuffix(out, ".\r\n") {
		t.Fatalf("no end-of-data: %q", out)
	}
	body := out[:len(out)-3]
	if body != "" && !strings.HasSuffix(body, "\r\n") {
		t.Fatalf("end-of-data not at a line start: %q", out)
	}
	var b strings.Builder
	for body != "" {
		i := strings.Index(body, "\r\n")
		line := body[:i]
		if strings.ContainsAny(line, "\r\n") {
			t.Fatalf("bare CR or LF in line %q", line)
		}
		if line == "." {
			t.Fatalf("premature end-of-data in %q", out)
		}
		if strings.HasPrefix(line, ".") {
			if !strings.HasPrefix(line, "..") {
				t.Fatalf("line %q starts with an unstuffed dot", line)
			}
			line = line[1:]
		}
		b.WriteString(line)
		b.WriteString("\r\n")
		body = body[i+2:]
	}
	return b.String()
}

func FuzzDataWriter(f *testing.F) {
	for _, tc := range hostileBodies {
		f.Add([]byte(tc.body), uint8(3))
	}
	f.Add([]byte("a\r\n.\r\nb"), uint8(0))
	f.Add([]byte("\r"), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		want := normalize(string(in))
		for _, stuff := range []bool{true, false} {
			var b bytes.Buffer
			d := NewDataWriter(&b, stuff)
			// Feed in pieces of split+1 bytes to exercise state across Writes.
			step := int(split) + 1
			for p := in; len(p) > 0; {
				n := min(step, len(p))
				if k, err := d.Write(p[:n]); k != n || err != nil {
					t.Fatalf("Write: %d, %v", k, err)
				}
				p = p[n:]
			}
			d.Close()
			out := b.String()
			if stuff {
				if got := unstuff(t, out); got != want {
					t.Fatalf("un-stuffed %q, want %q", got, want)
				}
			} else if out != want {
				t.Fatalf("BDAT data %q, want %q", out, want)
			}
		}
		size, eight := scanBody(in)
		if size != int64(len(want)) {
			t.Fatalf("scanBody %d, want %d", size, len(want))
		}
		if eight != bytes.ContainsFunc(in, func(r rune) bool { return r >= 0x80 }) {
			t.Fatalf("8-bit %v for %q", eight, in)
		}
	})
}

// The fast path of scanBody must agree with normalising for real.
func TestScanBodyMatchesDataWriter(t *testing.T) {
	for _, body := range []string{
		"a\r\nb\r\n", "a\r\n", "\r\n", "a\r\nb", "a\nb\r\n", "a\rb\r\n", "a\r\r\n", "\r\n\r\n.\r\n",
		"", "x", "\n", "\r", "a\r\n\n", "caf\xc3\xa9\r\n",
	} {
		size, eight := scanBody([]byte(body))
		d := DataWriter{w: io.Discard, lineStart: true}
		d.Write([]byte(body))
		d.Close()
		if size != d.Written() || eight != has8bit([]byte(body)) {
			t.Errorf("scanBody(%q) = %d, %v; normalised size %d", body, size, eight, d.Written())
		}
	}
}

func TestDataProblem(t *testing.T) {
	x := strings.Repeat("x", 998)
	for in, bad := range map[string]bool{
		"":                          false,
		x + "\r\n":                  false,
		x:                           false,
		x + "\n" + x + "\r" + x:     false,
		"a\r" + x + "\r":            false,
		x + "x\r\n":                 true,
		"a\r\n" + x + "x":           true,
		x + "\r" + x + "x\r\n":      true,
		"a\x00":                     true,
		"Subject: \x00\r\n\r\nbody": true,
	} {
		if got := dataProblem([]byte(in)) != ""; got != bad {
			t.Errorf("dataProblem(%.20q... %d octets) bad %v, want %v", in, len(in), got, bad)
		}
	}
}
