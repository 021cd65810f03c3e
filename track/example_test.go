package track_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/mxrelay/mxrelay/track"
)

func ExampleRewriteHTML() {
	doc := []byte(`<html><body>
<p><a href="https://shop.example/spring?utm_source=mail&amp;id=7">Spring sale</a></p>
<p><a href="mailto:help@shop.example">Write to us</a> &middot;
<a href="https://shop.example/account" data-mxrelay-notrack>Your account</a></p>
</body></html>`)
	n := 0
	link := func(u string) (string, bool) {
		n++
		return fmt.Sprintf("https://t.example/c/%d?u=%s", n, url.QueryEscape(u)), true
	}
	out, err := track.RewriteHTML(doc, link, "https://t.example/o/1")
	if err != nil {
		panic(err)
	}
	fmt.Println(string(out))
	// Output:
	// <html><body>
	// <p><a href="https://t.example/c/1?u=https%3A%2F%2Fshop.example%2Fspring%3Futm_source%3Dmail%26id%3D7">Spring sale</a></p>
	// <p><a href="mailto:help@shop.example">Write to us</a> &middot;
	// <a href="https://shop.example/account">Your account</a></p>
	// <img src="https://t.example/o/1" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px;" /></body></html>
}

func ExampleLinks() {
	links, err := track.Links([]byte(`<base href="https://news.example/2026/">
<a href="may.html">May</a> <a href="#top">Top</a> <a href="tel:+15555550100">Call</a>
<!--[if mso]><v:roundrect href="https://news.example/subscribe"></v:roundrect><![endif]-->`))
	if err != nil {
		panic(err)
	}
	for _, l := range links {
		fmt.Println(l)
	}
	// Output:
	// https://news.example/2026/may.html
	// https://news.example/subscribe
}

func ExampleRewriteText() {
	text := "Your order shipped: https://shop.example/orders/1234.\nQuestions? Reply to this mail."
	fmt.Println(track.RewriteText(text, func(u string) (string, bool) {
		return "https://t.example/c/1", true
	}))
	// Output:
	// Your order shipped: https://t.example/c/1.
	// Questions? Reply to this mail.
}

func ExampleJudge() {
	for _, r := range []track.Request{
		{Kind: track.Click, Method: "GET", UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15", SinceSend: 40 * time.Minute},
		{Kind: track.Click, Method: "GET", UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", SinceSend: 3 * time.Second},
		{Kind: track.Click, Method: "HEAD", UserAgent: "Mozilla/5.0", SinceSend: time.Hour},
		{Kind: track.Open, Method: "GET", UserAgent: "Mozilla/5.0", SinceSend: 2 * time.Second},
		{Kind: track.Open, Method: "GET", UserAgent: "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", SinceSend: 3 * time.Hour},
	} {
		v := track.Judge(r)
		fmt.Printf("%s after %v: machine=%v reason=%q\n", r.Kind, r.SinceSend, v.Machine, v.Reason)
	}
	// Output:
	// click after 40m0s: machine=false reason=""
	// click after 3s: machine=true reason="scanner-fast"
	// click after 1h0m0s: machine=true reason="scanner-head"
	// open after 2s: machine=true reason="apple-mpp"
	// open after 3h0m0s: machine=false reason="gmail-proxy"
}

func ExamplePixelGIF() {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/gif")
		w.Header().Set("Cache-Control", "no-store, private")
		w.Write(track.PixelGIF())
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/o/1", nil))
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len(), "bytes")
	// Output:
	// 200 image/gif 43 bytes
}
