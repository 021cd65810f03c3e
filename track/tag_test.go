package track

import (
	"bytes"
	"testing"

	"golang.org/x/net/html"
)

// FuzzScanAttrs checks that scanAttrs and tagName find in every start tag
// the names and values x/net/html's tokenizer finds: the same attributes,
// first of each name kept, and each value span decoding to the
// tokenizer's value.
func FuzzScanAttrs(f *testing.F) {
	for _, s := range []string{
		`<a href="x" b='y' c=z d>`, `<a/b/c=d/>`, `<a =b=c>`, `<a b = "c" d= e f =g>`, `<a b=c/>`, `<a b="c"d>`,
		"<a\tb\n=\fc\r>", `<a b=>`, `<a b= >`, `<a B=1 b=2>`, `<v:roundrect HREF="x">`, `<a b="c`, `<a b='>'>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		z := html.NewTokenizer(bytes.NewReader(doc))
		off := 0
		for {
			tt := z.Next()
			if tt == html.ErrorToken {
				return
			}
			start := off
			off += len(z.Raw())
			if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
				continue
			}
			raw := doc[start:off]
			name, _ := z.TagName()
			if got := asciiLower(tagName(raw)); !bytes.Equal(bytes.ReplaceAll(got, []byte{0}, []byte("\ufffd")), name) {
				t.Fatalf("%q: tagName %q, tokenizer %q", raw, got, name)
			}
			var want []html.Attribute
			for more := true; more; {
				var k, v []byte
				k, v, more = z.TagAttr()
				if k != nil {
					want = append(want, html.Attribute{Key: string(k), Val: string(v)})
				}
			}
			var got []attrSpan
			seen := map[string]bool{}
			for _, a := range scanAttrs(nil, raw) {
				k := string(asciiLower(raw[a.keyStart:a.keyEnd]))
				if !seen[k] {
					seen[k] = true
					got = append(got, a)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%q: %d attributes, tokenizer %d", raw, len(got), len(want))
			}
			for i, a := range got {
				k := bytes.ReplaceAll(asciiLower(raw[a.keyStart:a.keyEnd]), []byte{0}, []byte("\ufffd"))
				if string(k) != want[i].Key {
					t.Fatalf("%q: attribute %d is %q, tokenizer %q", raw, i, k, want[i].Key)
				}
				q := ""
				if a.quote != 0 {
					q = string(a.quote)
				}
				probe := html.NewTokenizer(bytes.NewReader([]byte("<p v=" + q + string(raw[a.valStart:a.valEnd]) + q + ">")))
				probe.Next()
				_, v, _ := probe.TagAttr()
				if string(v) != want[i].Val {
					t.Fatalf("%q: value of %q is %q, tokenizer %q", raw, k, v, want[i].Val)
				}
				if a.end < a.valEnd || a.end > len(raw) || a.keyEnd > a.end {
					t.Fatalf("%q: attribute %q ends at %d", raw, k, a.end)
				}
			}
		}
	})
}

// asciiLower lower-cases ASCII letters only, as the tokenizer does.
func asciiLower(b []byte) []byte {
	c := bytes.Clone(b)
	for i, x := range c {
		if 'A' <= x && x <= 'Z' {
			c[i] = x + 'a' - 'A'
		}
	}
	return c
}
