package mime

import (
	"encoding/base64"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestBase64 compares appendBase64 with encoding/base64 for every length
// around the line size.
func TestBase64(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for n := range 300 {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		got := appendBase64([]byte("x"), data)
		std := base64.StdEncoding.EncodeToString(data)
		var want strings.Builder
		want.WriteString("x")
		for len(std) > 0 {
			k := min(76, len(std))
			want.WriteString(std[:k] + "\r\n")
			std = std[k:]
		}
		if string(got) != want.String() {
			t.Fatalf("length %d:\n got %q\nwant %q", n, got, want.String())
		}
	}
}

// BenchmarkQuotedPrintable encodes 20 KB of mostly-ASCII HTML.
func BenchmarkQuotedPrintable(b *testing.B) {
	html := strings.Repeat("<a href=\"https://shop.example/p/1?utm_source=news&amp;x=1\">Voir l'article – 19,90 €</a> Découvrez notre sélection d'été\n", 160)
	buf := make([]byte, 0, 2*len(html))
	b.SetBytes(int64(len(html)))
	for b.Loop() {
		buf = appendQP(buf[:0], html)
	}
}

// TestSpecial8 compares the word-at-a-time test with a byte loop: every
// byte value at every position of a word of plain bytes, and random words.
// The position of the first special byte must be exact.
func TestSpecial8(t *testing.T) {
	slow := func(b string) int {
		for i := range len(b) {
			if c := b[i]; c < 0x20 || c > '~' || c == '=' || c == '_' {
				return i
			}
		}
		return 8
	}
	plain8 := func(b string) int {
		m := special8(b)
		if m == 0 {
			return 8
		}
		return bits.TrailingZeros64(m) >> 3
	}
	for _, base := range []string{"abcdefgh", "        ", "~~~~~~~~", "!!!!!!!!", "^^^^^^^^", "````````", "<<<<<<<<", ">>>>>>>>"} {
		for pos := range 8 {
			for c := range 256 {
				b := []byte(base)
				b[pos] = byte(c)
				if got, want := plain8(string(b)), slow(string(b)); got != want {
					t.Fatalf("plain8(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var b [8]byte
		for i := range b {
			// Mostly printable, sometimes anything.
			if r.IntN(8) == 0 {
				b[i] = byte(r.IntN(256))
			} else {
				b[i] = byte(0x20 + r.IntN(0x5f))
			}
		}
		if got, want := plain8(string(b[:])), slow(string(b[:])); got != want {
			t.Fatalf("plain8(%q) = %v, want %v", b, got, want)
		}
	}
}

// BenchmarkScanText measures the choice of encoding for a plain ASCII
// body of 5 KB, the common case of bulk mail.
func BenchmarkScanText(b *testing.B) {
	s := strings.Repeat("00042 The quick brown fox jumps over the lazy dog, again and again. xxx\r\n", 70)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if st := scanText(s); st.enc != cte7bit {
			b.Fatal("not 7bit")
		}
	}
}

// TestAppend7bitCRLF checks that copying a text whose line breaks are all
// CRLF gives what normalising it line by line gives, and that scanText
// says so only when it is true.
func TestAppend7bitCRLF(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", "bc", " ", "\t", "\r\n", "\n", "\r", "=", "_", "é", "\r\r\n", "xxxxxxxxxxxxxxxxxxxxxxx"}
	for range 20000 {
		var b strings.Builder
		for range r.IntN(30) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		s := b.String()
		st := scanText(s)
		if want := !strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\n") && !strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\r"); st.crlf != want {
			t.Fatalf("scanText(%q).crlf = %v, want %v", s, st.crlf, want)
		}
		if got, want := string(append7bit(nil, s, st.crlf)), string(append7bit(nil, s, false)); got != want {
			t.Fatalf("append7bit(%q, %v) = %q, want %q", s, st.crlf, got, want)
		}
	}
}
