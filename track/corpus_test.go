package track_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/mxrelay/mxrelay/track"
)

// The corpus: testdata/NAME.html with, in testdata/NAME.links, the URLs
// Links must return for it, one a line. newsletter.html is a 50 KB
// marketing message with 60 links.

func mark(u string) (string, bool) { return "X" + u, true }
func same(u string) (string, bool) { return u, true }

const pixelURL = "https://t.example.com/o/abc?x=1&y=2"
const pixelTag = `<img src="https://t.example.com/o/abc?x=1&amp;y=2" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px;" />`

func TestCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/*.html")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 15 {
		t.Fatalf("corpus has %d documents, want at least 15", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".html")
		t.Run(name, func(t *testing.T) {
			doc, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want := readLinks(t, strings.TrimSuffix(f, ".html")+".links")

			got, err := track.Links(doc)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("Links:\n got %q\nwant %q", got, want)
			}

			out, err := track.RewriteHTML(doc, mark, "")
			if err != nil {
				t.Fatal(err)
			}
			c := &checker{t: t, want: want}
			if rebuilt := c.compare(doc, out, false); !bytes.Equal(rebuilt, doc) {
				t.Errorf("un-rewriting does not give the input back: first difference at byte %d", firstDiff(rebuilt, doc))
			}
			if c.k != len(want) {
				t.Errorf("%d links rewritten, want %d", c.k, len(want))
			}

			kept, err := track.RewriteHTML(doc, same, "")
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(bytes.ToLower(doc), []byte(track.NoTrackAttr)) {
				c := &checker{t: t}
				if rebuilt := c.compare(doc, kept, false); !bytes.Equal(rebuilt, doc) {
					t.Errorf("identity link: not the input less %s", track.NoTrackAttr)
				}
			} else if !bytes.Equal(kept, doc) {
				t.Errorf("identity link changed the document at byte %d", firstDiff(kept, doc))
			}

			withPixel, err := track.RewriteHTML(doc, nil, pixelURL)
			if err != nil {
				t.Fatal(err)
			}
			// A nil link changes nothing but NoTrackAttr, as the identity does.
			at := lastBodyEnd(kept)
			wantPixel := slices.Concat(kept[:at], []byte(pixelTag), kept[at:])
			if !bytes.Equal(withPixel, wantPixel) {
				t.Errorf("pixel not inserted at byte %d: first difference at byte %d", at, firstDiff(withPixel, wantPixel))
			}
		})
	}
}

func TestPixelTag(t *testing.T) {
	toks := tokenize([]byte(pixelTag))
	if len(toks) != 1 || toks[0].tt != html.SelfClosingTagToken || toks[0].tok.Data != "img" {
		t.Fatalf("pixel tag tokenizes as %v", toks)
	}
	var keys []string
	for _, a := range toks[0].tok.Attr {
		keys = append(keys, a.Key)
	}
	if want := []string{"src", "width", "height", "alt", "style"}; !slices.Equal(keys, want) {
		t.Errorf("pixel attributes %q, want %q", keys, want)
	}
	if toks[0].tok.Attr[0].Val != pixelURL {
		t.Errorf("pixel src %q", toks[0].tok.Attr[0].Val)
	}
}

func readLinks(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var links []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" {
			links = append(links, l)
		}
	}
	return links
}

// lastBodyEnd returns the offset of the last </body> end tag outside
// comments, or len(doc).
func lastBodyEnd(doc []byte) int {
	at, off := len(doc), 0
	for _, tk := range tokenize(doc) {
		if tk.tt == html.EndTagToken && tk.tok.Data == "body" {
			at = off
		}
		off += len(tk.raw)
	}
	return at
}

func firstDiff(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

type tok struct {
	tt  html.TokenType
	raw []byte
	tok html.Token
}

// tokenize splits doc into tokens the way a mail client's parser does
// (scripting off: <noscript> holds markup), the last one the unfinished
// rest, if any.
func tokenize(doc []byte) []tok {
	z := html.NewTokenizer(bytes.NewReader(doc))
	var toks []tok
	for {
		tt := z.Next()
		raw := bytes.Clone(z.Raw())
		if tt == html.ErrorToken {
			if len(raw) > 0 {
				toks = append(toks, tok{tt: tt, raw: raw})
			}
			return toks
		}
		tk := tok{tt: tt, raw: raw, tok: z.Token()}
		if tt == html.StartTagToken && tk.tok.Data == "noscript" {
			z.NextIsNotRawText()
		}
		toks = append(toks, tk)
	}
}

// checker compares a document with its rewritten form token by token.
type checker struct {
	t      *testing.T
	want   []string // the URLs expected to be rewritten, in order
	marker string   // what the link function put before each URL; "" means "X"
	k      int      // how many of want have been seen
}

// compare checks that out is in with exactly the hrefs of want rewritten
// to "X"+u and NoTrackAttr removed, and returns in as rebuilt from out by
// undoing each change.
func (c *checker) compare(in, out []byte, inComment bool) []byte {
	c.t.Helper()
	ti, to := tokenize(in), tokenize(out)
	if len(ti) != len(to) {
		c.t.Fatalf("%d tokens in, %d out", len(ti), len(to))
	}
	var rebuilt []byte
	for i := range ti {
		a, b := ti[i], to[i]
		if a.tt != b.tt {
			c.t.Fatalf("token %d: %v became %v", i, a.tt, b.tt)
		}
		if bytes.Equal(a.raw, b.raw) {
			rebuilt = append(rebuilt, b.raw...)
			continue
		}
		switch a.tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			rebuilt = append(rebuilt, c.compareTag(a, b)...)
		case html.CommentToken:
			if inComment || !conditional(a.raw) || !conditional(b.raw) {
				c.t.Fatalf("comment %q became %q", a.raw, b.raw)
			}
			inner := c.compare(a.raw[4:len(a.raw)-3], b.raw[4:len(b.raw)-3], true)
			rebuilt = slices.Concat(rebuilt, []byte("<!--"), inner, []byte("-->"))
		default:
			c.t.Fatalf("token %d %q became %q", i, a.raw, b.raw)
		}
	}
	return rebuilt
}

// compareTag checks one changed tag and returns the input tag rebuilt from
// the output one.
func (c *checker) compareTag(a, b tok) []byte {
	c.t.Helper()
	if a.tok.Data != b.tok.Data {
		c.t.Fatalf("tag %q became %q", a.raw, b.raw)
	}
	inAttrs := slices.DeleteFunc(slices.Clone(a.tok.Attr), func(x html.Attribute) bool { return x.Key == track.NoTrackAttr })
	notrack := len(inAttrs) != len(a.tok.Attr)
	if len(inAttrs) != len(b.tok.Attr) {
		c.t.Fatalf("tag %q became %q: attributes differ", a.raw, b.raw)
	}
	var inHref, outHref string
	for j, ia := range inAttrs {
		oa := b.tok.Attr[j]
		if ia.Key != oa.Key {
			c.t.Fatalf("tag %q became %q: attribute %q became %q", a.raw, b.raw, ia.Key, oa.Key)
		}
		if ia.Key == "href" {
			inHref, outHref = ia.Val, oa.Val
		} else if ia.Val != oa.Val {
			c.t.Fatalf("tag %q became %q: %s changed", a.raw, b.raw, ia.Key)
		}
	}
	if notrack {
		if inHref != outHref {
			c.t.Fatalf("tag %q with %s rewritten to %q", a.raw, track.NoTrackAttr, b.raw)
		}
		// out is in with one stretch deleted, and that stretch is the attribute.
		if n := len(a.tok.Attr) - len(inAttrs); n > 1 || bytes.Count(bytes.ToLower(a.raw), []byte(track.NoTrackAttr)) > 1 {
			// Several stretches removed: the attributes compare equal
			// above; here only check that nothing was added.
			if !subsequence(b.raw, a.raw) {
				c.t.Fatalf("tag %q became %q: not only removals", a.raw, b.raw)
			}
			return a.raw
		}
		// One stretch deleted: find where, among the places it can be.
		n := len(a.raw) - len(b.raw)
		for p := commonPrefix(a.raw, b.raw); n > 0 && p >= 0; p-- {
			if !bytes.Equal(a.raw[p+n:], b.raw[p:]) {
				continue
			}
			del := a.raw[p : p+n]
			probe := tokenize(slices.Concat([]byte("<a "), del, []byte(">")))
			if len(probe) == 1 && len(probe[0].tok.Attr) == 1 && probe[0].tok.Attr[0].Key == track.NoTrackAttr {
				return slices.Concat(b.raw[:p], del, b.raw[p:])
			}
		}
		c.t.Fatalf("tag %q became %q: not one %s removed", a.raw, b.raw, track.NoTrackAttr)
	}
	// A changed tag without the attribute is a rewritten link. (Its href
	// may decode as before: "&#1;https://a" is "\x01https://a", which is
	// the marker and "https://a". The undoing below still checks it.)
	if c.k >= len(c.want) {
		c.t.Fatalf("tag %q rewritten to %q: more links than expected", a.raw, b.raw)
	}
	u := c.want[c.k]
	c.k++
	m := c.marker
	if m == "" {
		m = "X"
	}
	if outHref != m+u {
		c.t.Fatalf("tag %q: href %q, want %q", a.raw, outHref, m+u)
	}
	// Undo: out = A + escaped new URL + B, and in = A + old value + B, A
	// and B byte for byte, but for a quote added around an unquoted value.
	enc := []byte(html.EscapeString(m + u))
	idx := bytes.Index(b.raw, enc)
	if idx < 0 {
		c.t.Fatalf("tag %q: %q not in it", b.raw, enc)
	}
	A, B := b.raw[:idx], b.raw[idx+len(enc):]
	fits := func() bool {
		return len(A)+len(B) <= len(a.raw) && bytes.HasPrefix(a.raw, A) && bytes.HasSuffix(a.raw, B)
	}
	q := ""
	if !fits() {
		if !bytes.HasSuffix(A, []byte(`"`)) || !bytes.HasPrefix(B, []byte(`"`)) {
			c.t.Fatalf("tag %q became %q: more than the value changed", a.raw, b.raw)
		}
		A, B = A[:len(A)-1], B[1:]
		if !fits() {
			c.t.Fatalf("tag %q became %q: more than the value changed", a.raw, b.raw)
		}
	} else if n := len(A); n > 0 && (A[n-1] == '"' || A[n-1] == '\'') {
		q = string(A[n-1])
	}
	old := a.raw[len(A) : len(a.raw)-len(B)]
	probe := tokenize([]byte("<a href=" + q + string(old) + q + ">"))
	if len(probe) != 1 || len(probe[0].tok.Attr) != 1 || probe[0].tok.Attr[0].Val != inHref {
		c.t.Fatalf("tag %q became %q: replaced %q, which is not the href value", a.raw, b.raw, old)
	}
	return slices.Concat(A, old, B)
}

func conditional(raw []byte) bool {
	return len(raw) >= 10 && bytes.EqualFold(raw[:7], []byte("<!--[if")) && bytes.HasSuffix(raw, []byte("-->"))
}

// subsequence reports whether a is b with some bytes deleted.
func subsequence(a, b []byte) bool {
	i := 0
	for j := 0; j < len(b) && i < len(a); j++ {
		if a[i] == b[j] {
			i++
		}
	}
	return i == len(a)
}

func commonPrefix(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}
