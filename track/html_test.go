package track_test

import (
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/track"
)

// tracker rewrites every URL to a fixed tracking URL, like the relay does.
func tracker(u string) (string, bool) { return "https://t.example/c/1?u=" + u, true }

func TestRewriteHTMLCases(t *testing.T) {
	tests := []struct {
		name string
		in   string
		link func(string) (string, bool)
		want string
	}{
		{"double quotes", `<a href="https://a.example/">x</a>`, mark,
			`<a href="Xhttps://a.example/">x</a>`},
		{"single quotes kept", `<a href='https://a.example/'>x</a>`, mark,
			`<a href='Xhttps://a.example/'>x</a>`},
		{"unquoted stays unquoted", `<a href=https://a.example/>x</a>`, mark,
			`<a href=Xhttps://a.example/>x</a>`},
		{"unquoted gets quotes for =", `<a href=https://a.example/ class=b>x</a>`, tracker,
			`<a href="https://t.example/c/1?u=https://a.example/" class=b>x</a>`},
		{"new URL escaped", `<a href="https://a.example/">x</a>`,
			func(string) (string, bool) { return `https://t.example/?a=1&b="2"<'3'>`, true },
			`<a href="https://t.example/?a=1&amp;b=&#34;2&#34;&lt;&#39;3&#39;&gt;">x</a>`},
		{"other attributes untouched", `<A CLASS=btn HREF = 'https://a.example/?a=1&amp;b=2'  Style="x:y">x</A>`, mark,
			`<A CLASS=btn HREF = 'Xhttps://a.example/?a=1&amp;b=2'  Style="x:y">x</A>`},
		{"link says no", `<a href="https://a.example/">x</a>`,
			func(string) (string, bool) { return "https://t.example/", false },
			`<a href="https://a.example/">x</a>`},
		{"same URL back leaves the tag", `<a href="https://a.example/?a=1&b=2">x</a>`,
			func(u string) (string, bool) { return u, true },
			`<a href="https://a.example/?a=1&b=2">x</a>`},
		{"nil link", `<a href="https://a.example/">x</a>`, nil,
			`<a href="https://a.example/">x</a>`},
		{"first of two hrefs", `<a href="https://a.example/" href="https://b.example/">x</a>`, mark,
			`<a href="Xhttps://a.example/" href="https://b.example/">x</a>`},
		{"whitespace around the URL replaced", "<a href=\" https://a.example/\n\">x</a>", mark,
			`<a href="Xhttps://a.example/">x</a>`},
		{"notrack last", `<a href="https://a.example/" data-mxrelay-notrack>x</a>`, mark,
			`<a href="https://a.example/">x</a>`},
		{"notrack first", `<a data-mxrelay-notrack href="https://a.example/">x</a>`, mark,
			`<a href="https://a.example/">x</a>`},
		{"notrack with value", `<a href="https://a.example/" Data-MxRelay-NoTrack = "1" id=x>x</a>`, mark,
			`<a href="https://a.example/" id=x>x</a>`},
		{"notrack twice", `<a data-mxrelay-notrack href="https://a.example/" data-mxrelay-notrack=2>x</a>`, mark,
			`<a href="https://a.example/">x</a>`},
		{"notrack before self-closing slash", `<a href=https://a.example/ data-mxrelay-notrack/>`, mark,
			`<a href=https://a.example/ />`},
		{"notrack without separator", `<a href="https://a.example/"data-mxrelay-notrack title=t>x</a>`, mark,
			`<a href="https://a.example/" title=t>x</a>`},
		{"notrack after a slash", `<A/data-mxrelay-notrack>x</A>`, mark, `<A>x</A>`},
		{"notrack after a slash and space", `<a/ data-mxrelay-notrack>x</a>`, mark, `<a>x</a>`},
		{"notrack after an unquoted value ending in a slash", `<a href=https://a.example/ data-mxrelay-notrack>x</a>`, mark,
			`<a href=https://a.example/>x</a>`},
		{"notrack on mailto removed", `<a href="mailto:a@example.com" data-mxrelay-notrack>x</a>`, mark,
			`<a href="mailto:a@example.com">x</a>`},
		{"notrack only on link elements", `<td data-mxrelay-notrack><a href="https://a.example/">x</a></td>`, mark,
			`<td data-mxrelay-notrack><a href="Xhttps://a.example/">x</a></td>`},
		{"relative base ignored", `<base href="/news/"><a href="a.html">x</a>`, mark,
			`<base href="/news/"><a href="a.html">x</a>`},
		{"base resolves", `<base href="HTTPS://News.Example/2026/"><a href="a.html?x=1&amp;y=2">x</a>`, mark,
			`<base href="HTTPS://News.Example/2026/"><a href="Xhttps://News.Example/2026/a.html?x=1&amp;y=2">x</a>`},
		{"mailto base", `<base href="mailto:a@example.com"><a href="b">x</a>`, mark,
			`<base href="mailto:a@example.com"><a href="b">x</a>`},
		{"conditional comment", `<!--[if mso]><v:roundrect href="https://a.example/"></v:roundrect><![endif]-->`, mark,
			`<!--[if mso]><v:roundrect href="Xhttps://a.example/"></v:roundrect><![endif]-->`},
		{"new URL cannot close a comment", `<!--[if mso]><v:rect href="https://a.example/"></v:rect><![endif]-->`,
			func(string) (string, bool) { return "https://t.example/--><script>", true },
			`<!--[if mso]><v:rect href="https://t.example/--&gt;&lt;script&gt;"></v:rect><![endif]-->`},
		{"notrack in a conditional comment", `<!--[if mso]><v:rect data-mxrelay-notrack></v:rect><![endif]-->`, mark,
			`<!--[if mso]><v:rect></v:rect><![endif]-->`},
		{"plain comment untouched", `<!-- <a href="https://a.example/"> -->`, mark,
			`<!-- <a href="https://a.example/"> -->`},
		{"unfinished tag at the end", `<p>x</p><a href="https://a.example/"`, mark,
			`<p>x</p><a href="https://a.example/"`},
		{"empty document", ``, mark, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := track.RewriteHTML([]byte(tt.in), tt.link, "")
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("RewriteHTML(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRewriteHTMLPixel(t *testing.T) {
	tests := []struct{ in, want string }{
		{`<html><body><p>x</p></body></html>`, `<html><body><p>x</p>` + pixelTag + `</body></html>`},
		{`<p>x</p>`, `<p>x</p>` + pixelTag},
		{`<body>a</body>b</BODY >c`, `<body>a</body>b` + pixelTag + `</BODY >c`},
		{`<body>a<!--[if mso]></body><![endif]--></body>`, `<body>a<!--[if mso]></body><![endif]-->` + pixelTag + `</body>`},
		{`<body><script>"</body>"</script>`, `<body><script>"</body>"</script>` + pixelTag},
	}
	for _, tt := range tests {
		got, err := track.RewriteHTML([]byte(tt.in), mark, pixelURL)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("RewriteHTML(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestRewriteHTMLBadPixel(t *testing.T) {
	for _, p := range []string{"/o/1", "mailto:a@example.com", "https://", "https://t.example/o\r\nX: y", "https://t example/", "javascript:alert(1)"} {
		if _, err := track.RewriteHTML([]byte("<p>x</p>"), mark, p); err == nil || !strings.HasPrefix(err.Error(), "track: ") {
			t.Errorf("pixel %q: err = %v, want a track: error", p, err)
		}
	}
}
