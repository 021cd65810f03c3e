package console

import (
	"bytes"
	"strings"

	"golang.org/x/net/html"
)

// previewHTML rewrites a message's HTML for the preview frame: cid:
// images become data: URLs of their inline parts, tracking images (one
// pixel square, or served by the client's open-tracking URL under
// trackBase) are dropped, and, unless images is set, remote images lose
// their source (kept in data-blocked-src), so that the frame asks
// nothing of anyone. It returns the document and how many remote images
// it blocked. The frame's Content-Security-Policy is the second line:
// even an image this misses is not fetched.
func previewHTML(doc string, parts []part, trackBase string, images bool) (string, int) {
	cids := make(map[string]*part)
	for i := range parts {
		if p := &parts[i]; p.ContentID != "" && strings.HasPrefix(p.Type, "image/") {
			cids[strings.ToLower(p.ContentID)] = p
		}
	}
	z := html.NewTokenizer(strings.NewReader(doc))
	var out bytes.Buffer
	blocked := 0
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			out.Write(z.Raw())
			continue
		}
		tok := z.Token()
		if tok.Data != "img" {
			out.WriteString(tok.String())
			continue
		}
		src, w, h := "", "", ""
		for _, a := range tok.Attr {
			switch a.Key {
			case "src":
				src = strings.TrimSpace(a.Val)
			case "width":
				w = strings.TrimSpace(a.Val)
			case "height":
				h = strings.TrimSpace(a.Val)
			}
		}
		if isPixel(src, w, h, trackBase) {
			continue
		}
		lower := strings.ToLower(src)
		switch {
		case strings.HasPrefix(lower, "cid:"):
			if p := cids[strings.ToLower(strings.TrimPrefix(src[4:], "//"))]; p != nil {
				setAttr(&tok, "src", p.dataURL())
			}
		case strings.HasPrefix(lower, "data:"):
		case !images:
			blocked++
			setAttr(&tok, "src", "")
			tok.Attr = append(tok.Attr, html.Attribute{Key: "data-blocked-src", Val: src})
		}
		out.WriteString(tok.String())
	}
	return out.String(), blocked
}

// isPixel reports whether an image is a tracking image.
func isPixel(src, w, h, trackBase string) bool {
	if trackBase != "" && strings.HasPrefix(src, trackBase) {
		return true
	}
	one := func(s string) bool { s = strings.TrimSuffix(s, "px"); return s == "0" || s == "1" }
	return one(w) && one(h)
}

func setAttr(t *html.Token, key, val string) {
	for i := range t.Attr {
		if t.Attr[i].Key == key {
			t.Attr[i].Val = val
			return
		}
	}
	t.Attr = append(t.Attr, html.Attribute{Key: key, Val: val})
}
