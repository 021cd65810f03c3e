package lint

import (
	"strconv"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// whiteOnWhite is the reason given for white text on a white background.
const whiteOnWhite = "white text on a white background"

// htmlInfo is what the rules need from an HTML body.
type htmlInfo struct {
	visible     string // visible text, words separated by single spaces
	images      int    // <img> elements
	linkedImage bool   // an <img> inside an <a href>
	anchors     []anchor
	hidden      []*hiddenText
}

// anchor is an <a href> and its visible text.
type anchor struct {
	href string
	text string
}

// hiddenText is the text under one hiding element.
type hiddenText struct {
	why  string
	text strings.Builder
}

// state is what an element passes on to its children.
type state struct {
	hideBy  *html.Node // the element hiding its content, or nil
	why     string     // how hideBy hides it
	white   bool       // the text colour is white
	bgOther bool       // a background other than white is set
	anchor  *strings.Builder
}

// analyzeHTML parses doc as mail clients do (no scripting) and collects
// its text, images, links and hidden text.
func analyzeHTML(doc string) *htmlInfo {
	h := &htmlInfo{}
	root, err := html.ParseWithOptions(strings.NewReader(doc), html.ParseOptionEnableScripting(false))
	if err != nil || root == nil {
		return h
	}
	var vis strings.Builder
	hidden := make(map[*html.Node]*hiddenText)
	var walk func(n *html.Node, st state)
	walk = func(n *html.Node, st state) {
		switch n.Type {
		case html.TextNode:
			t := strings.Join(strings.Fields(n.Data), " ")
			if t == "" {
				return
			}
			why, by := st.why, st.hideBy
			if by == nil && st.white && !st.bgOther {
				why, by = whiteOnWhite, n.Parent
			}
			if by != nil {
				x := hidden[by]
				if x == nil {
					x = &hiddenText{why: why}
					hidden[by] = x
					h.hidden = append(h.hidden, x)
				}
				if x.text.Len() < 4*quoteMax {
					if x.text.Len() > 0 {
						x.text.WriteByte(' ')
					}
					x.text.WriteString(t)
				}
				return
			}
			if vis.Len() > 0 {
				vis.WriteByte(' ')
			}
			vis.WriteString(t)
			if st.anchor != nil {
				if st.anchor.Len() > 0 {
					st.anchor.WriteByte(' ')
				}
				st.anchor.WriteString(t)
			}
			return
		case html.ElementNode:
			switch n.DataAtom {
			case atom.Script, atom.Style, atom.Head, atom.Title, atom.Template:
				return
			case atom.Img:
				h.images++
				if st.anchor != nil {
					h.linkedImage = true
				}
			}
			st = element(n, st)
			if n.DataAtom == atom.A {
				if href, ok := attr(n, "href"); ok {
					b := &strings.Builder{}
					st.anchor = b
					defer func() { h.anchors = append(h.anchors, anchor{href: href, text: b.String()}) }()
				}
			}
		case html.CommentNode, html.DoctypeNode:
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, st)
		}
	}
	walk(root, state{})
	h.visible = vis.String()
	return h
}

// element returns the state for the children of the element n.
func element(n *html.Node, st state) state {
	if v, ok := attr(n, "bgcolor"); ok {
		st.bgOther = !isWhite(v)
	}
	if n.DataAtom == atom.Font {
		if v, ok := attr(n, "color"); ok {
			st.white = isWhite(v)
		}
	}
	style, _ := attr(n, "style")
	for _, decl := range strings.Split(style, ";") {
		prop, val, ok := strings.Cut(decl, ":")
		if !ok {
			continue
		}
		prop = strings.ToLower(strings.TrimSpace(prop))
		val = strings.ToLower(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(val), "!important")))
		switch prop {
		case "display":
			if val == "none" && st.hideBy == nil {
				st.hideBy, st.why = n, "display:none"
			}
		case "font-size":
			if zeroLength(val) && st.hideBy == nil {
				st.hideBy, st.why = n, "font-size:0"
			}
		case "color":
			st.white = isWhite(val)
		case "background-color":
			st.bgOther = !isWhite(val)
		case "background":
			white := false
			for _, f := range strings.Fields(val) {
				if isWhite(f) {
					white = true
				}
			}
			st.bgOther = !white
		}
	}
	return st
}

// attr returns the value of n's attribute key.
func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// isWhite reports whether the CSS or HTML colour v is white: white, #fff,
// #ffffff or rgb(255,255,255).
func isWhite(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	switch strings.ReplaceAll(v, " ", "") {
	case "white", "#fff", "#ffffff", "fff", "ffffff", "rgb(255,255,255)":
		return true
	}
	return false
}

// zeroLength reports whether the CSS length v is zero ("0", "0px", "0pt",
// "0em", "0%", "0.0").
func zeroLength(v string) bool {
	v = strings.TrimRight(v, "abcdefghijklmnopqrstuvwxyz%")
	f, err := strconv.ParseFloat(v, 64)
	return err == nil && f == 0
}

// fileExt lists name endings that make "report.pdf" a file name rather
// than a domain in link text.
var fileExt = map[string]bool{
	"pdf": true, "doc": true, "docx": true, "xls": true, "xlsx": true, "ppt": true, "pptx": true,
	"jpg": true, "jpeg": true, "png": true, "gif": true, "txt": true, "csv": true,
	"htm": true, "html": true, "ics": true, "mp3": true, "mp4": true, "php": true, "aspx": true,
}

// textDomain returns the domain shown by a link's text, in lower case, or
// "". It is the host of a word starting with http://, https:// or www., or,
// when the whole text is one word, of that word if it looks like a domain
// (dot-separated labels ending in letters) with an optional path.
func textDomain(text string) string {
	words := strings.Fields(strings.ToLower(text))
	for _, w := range words {
		w = strings.Trim(w, "()<>[]\"'.,;:!?")
		switch {
		case strings.HasPrefix(w, "http://"), strings.HasPrefix(w, "https://"):
			_, w, _ = strings.Cut(w, "://")
		case strings.HasPrefix(w, "www."):
		case len(words) == 1:
		default:
			continue
		}
		if d := hostPart(w); d != "" {
			return d
		}
	}
	return ""
}

// hostPart returns the domain w starts with, up to a path, query, fragment
// or port, if it looks like one.
func hostPart(w string) string {
	if i := strings.IndexAny(w, "/?#:"); i >= 0 {
		w = w[:i]
	}
	if at := strings.LastIndexByte(w, '@'); at >= 0 {
		return "" // an e-mail address, not a link target
	}
	w = strings.TrimSuffix(w, ".")
	labels := strings.Split(w, ".")
	if len(labels) < 2 {
		return ""
	}
	for _, l := range labels {
		if l == "" || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return ""
		}
		for _, r := range l {
			if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 0x80) {
				return ""
			}
		}
	}
	tld := labels[len(labels)-1]
	if len(tld) < 2 || fileExt[tld] {
		return ""
	}
	for _, r := range tld {
		if r >= '0' && r <= '9' || r == '-' {
			return ""
		}
	}
	return w
}

// sameSite reports whether the domains a and b are the same site: equal,
// one a subdomain of the other, or siblings under a common parent of at
// least two labels (shop.example.com and click.example.com).
func sameSite(a, b string) bool {
	if a == b || strings.HasSuffix(a, "."+b) || strings.HasSuffix(b, "."+a) {
		return true
	}
	pa, pb := parent(a), parent(b)
	return pa != "" && pa == pb
}

// parent strips the first label of d if at least two remain.
func parent(d string) string {
	_, p, ok := strings.Cut(d, ".")
	if !ok || !strings.Contains(p, ".") {
		return ""
	}
	return p
}
