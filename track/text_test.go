package track_test

import (
	"testing"

	"github.com/mxrelay/mxrelay/track"
)

func TestRewriteText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Read it at https://a.example/post.", "Read it at Xhttps://a.example/post."},
		{"https://a.example/", "Xhttps://a.example/"},
		{"two: http://a.example/1, http://b.example/2; done", "two: Xhttp://a.example/1, Xhttp://b.example/2; done"},
		{"(see https://a.example/x)", "(see Xhttps://a.example/x)"},
		{"<https://a.example/x>", "<Xhttps://a.example/x>"},
		{"[https://a.example/x]: a reference", "[Xhttps://a.example/x]: a reference"},
		{"https://en.wikipedia.org/wiki/Mail_(protocol)", "Xhttps://en.wikipedia.org/wiki/Mail_(protocol)"},
		{"(https://en.wikipedia.org/wiki/Mail_(protocol))", "(Xhttps://en.wikipedia.org/wiki/Mail_(protocol))"},
		{"Really?! https://a.example/?q=1&r=2!?", "Really?! Xhttps://a.example/?q=1&r=2!?"},
		{`"https://a.example/q"`, `"Xhttps://a.example/q"`},
		{"HTTPS://A.EXAMPLE/UP", "XHTTPS://A.EXAMPLE/UP"},
		{"line one\r\nhttps://a.example/\r\nline three", "line one\r\nXhttps://a.example/\r\nline three"},
		{"url:https://a.example/", "url:Xhttps://a.example/"},
		{"xhttps://a.example/ is not a URL", "xhttps://a.example/ is not a URL"},
		{"https:// alone, https://, and ftp://a.example/", "https:// alone, https://, and ftp://a.example/"},
		{"https://[::1 broken", "https://[::1 broken"},
		{"Grüße https://bücher.example/ü\u00a0next", "Grüße Xhttps://bücher.example/ü\u00a0next"},
		{"no links here", "no links here"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := track.RewriteText(tt.in, mark); got != tt.want {
			t.Errorf("RewriteText(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestRewriteTextLinkSaysNo(t *testing.T) {
	in := "keep https://a.example/keep but https://a.example/go"
	got := track.RewriteText(in, func(u string) (string, bool) {
		return "https://t.example/1", u == "https://a.example/go"
	})
	if want := "keep https://a.example/keep but https://t.example/1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := track.RewriteText(in, nil); got != in {
		t.Errorf("nil link changed %q to %q", in, got)
	}
}
