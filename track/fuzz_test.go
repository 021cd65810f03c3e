package track_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/track"
)

// FuzzRewriteHTML checks, for any input, that RewriteHTML does not panic;
// that a link function giving every URL back leaves the document byte for
// byte as it was (less NoTrackAttr); and that with the marker link the
// output differs from the input in exactly the hrefs Links reports, which
// checker.compare verifies token by token against x/net/html's tokenizer.
func FuzzRewriteHTML(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.html")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil && len(b) < 8<<10 {
			f.Add(b)
		}
	}
	for _, s := range []string{
		`<a href=x`, `<a href="https://a.example/`, `<a/href=https://a.example/>`, `<a =href=https://a.example/>`,
		`<!--[if mso]><a href=https://a.example/><![endif]-->`, `<!--[if mso]><!-- <a href=https://a.example/>-->`,
		`<a href=https://a.example/ data-mxrelay-notrack/>`, `<base href=https://b.example/><a href=c>`,
		`<a href=c><base href=https://b.example/>`, "<a href=\"\x00https://a.example/\">", `<noscript><a href=https://a.example/>`,
		`<a href="https://a.example/" data-mxrelay-notrack="x"y=1>`, `<script><!--<script></script>--></script><a href=https://a.example/>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		links, err := track.Links(doc)
		if err != nil {
			t.Fatal(err)
		}
		kept, err := track.RewriteHTML(doc, same, "")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(bytes.ToLower(doc), []byte(track.NoTrackAttr)) && !bytes.Equal(kept, doc) {
			t.Fatalf("identity link changed the document at byte %d:\n in %q\nout %q", firstDiff(kept, doc), doc, kept)
		}
		// The checker cannot tell a marker from an href that already starts with it.
		if bytes.Contains(doc, []byte("\x01")) {
			return
		}
		out, err := track.RewriteHTML(doc, func(u string) (string, bool) { return "\x01" + u, true }, "")
		if err != nil {
			t.Fatal(err)
		}
		c := &checker{t: t, want: links, marker: "\x01"}
		if rebuilt := c.compare(doc, out, false); !bytes.Equal(rebuilt, doc) {
			t.Fatalf("un-rewriting does not give the input back:\n in %q\nout %q", doc, out)
		}
		if c.k != len(links) {
			t.Fatalf("%d links rewritten, Links reports %d", c.k, len(links))
		}
		withPixel, err := track.RewriteHTML(doc, nil, pixelURL)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Count(withPixel, []byte(pixelTag)) != 1+bytes.Count(doc, []byte(pixelTag)) || len(withPixel) != len(kept)+len(pixelTag) {
			t.Fatalf("pixel not inserted once:\n in %q\nout %q", doc, withPixel)
		}
	})
}

// FuzzRewriteText checks that RewriteText does not panic, that the
// identity leaves the text as it was, and that with the marker link
// deleting the markers gives the input back.
func FuzzRewriteText(f *testing.F) {
	for _, s := range []string{
		"see https://a.example/x.", "(https://a.example/wiki/A_(b))", "<https://a.example/>,", "xhttps://a.example/",
		"HTTPS://A.EXAMPLE/ and http://b.example/?q=1&r=2!", "https://", "https://[::1", "\u00a0https://a.example/\u2003",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := track.RewriteText(s, same); got != s {
			t.Fatalf("identity changed %q to %q", s, got)
		}
		if strings.Contains(s, "\x01") {
			return
		}
		n := 0
		out := track.RewriteText(s, func(u string) (string, bool) { n++; return "\x01" + u, true })
		if strings.Count(out, "\x01") != n {
			t.Fatalf("%d URLs, %d markers in %q", n, strings.Count(out, "\x01"), out)
		}
		if back := strings.ReplaceAll(out, "\x01", ""); back != s {
			t.Fatalf("removing markers from %q gives %q, not %q", out, back, s)
		}
	})
}
