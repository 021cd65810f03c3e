package track

import (
	"bytes"
	"io"
	"net/url"
	"slices"

	"golang.org/x/net/html"
)

// NoTrackAttr is the attribute that exempts one link from click tracking:
// <a href="https://example.com/" data-mxrelay-notrack>. RewriteHTML removes
// it from the output whether or not the link would have been tracked.
const NoTrackAttr = "data-mxrelay-notrack"

// RewriteHTML rewrites the links of an HTML document for click tracking,
// and adds an open-tracking image if pixel is not empty.
//
// Every <a href> and <area href>, and the VML shapes Outlook draws
// bulletproof buttons with (v:roundrect, v:rect, v:oval, v:shape), whose
// URL is http or https is passed to link, which returns the URL to write in
// its place, or false to leave the link alone. The scheme may be in any
// case; a document with a <base href> has its relative links resolved
// against it first. Links inside Outlook conditional comments
// (<!--[if mso]>…<![endif]-->) are found by tokenizing the comment's text
// and rewritten there too. These are left alone: mailto:, tel:, sms:,
// javascript:, data: and every other scheme, fragment-only links (#top),
// relative links in a document without an absolute base, URLs net/url
// cannot parse or that have no host, and links carrying NoTrackAttr, which
// is removed from the output either way. A nil link leaves every link alone.
//
// link is called once for each tracked link, in document order, with the
// attribute value entity-decoded and trimmed of surrounding whitespace,
// otherwise as written; a URL resolved against a base is given as net/url
// writes it. When link returns the URL it was given, the tag is not
// touched.
//
// If pixel is not empty it must be an absolute http or https URL; an
// <img src=pixel width="1" height="1" alt="" style="…"> is inserted just
// before the last </body>, or at the end of a document without one.
//
// Every other byte of the document is kept as written: doctype, comments,
// entities, attribute quoting and case, whitespace, and malformed markup.
// In a rewritten tag only the value of href changes; the new URL is
// HTML-escaped (& as &amp;) and keeps the original quote character. An
// unquoted value stays unquoted if the new one is a valid unquoted value,
// and is double-quoted otherwise.
func RewriteHTML(doc []byte, link func(u string) (string, bool), pixel string) ([]byte, error) {
	if pixel != "" {
		if err := checkPixel(pixel); err != nil {
			return nil, err
		}
	}
	r := rewriter{link: link, doc: doc}
	grow := len(doc) / 4
	if pixel != "" {
		grow += len(pixelTagStart) + len(pixel) + len(pixelTagEnd) + 16
	}
	out, _, err := r.pass(make([]byte, 0, len(doc)+grow), doc, true)
	if err != nil {
		return nil, err
	}
	if pixel != "" {
		tag := appendPixelTag(r.scratch[:0], pixel)
		if r.bodyAt >= 0 {
			out = slices.Insert(out, r.bodyAt, tag...)
		} else {
			out = append(out, tag...)
		}
	}
	return out, nil
}

// Links returns the URLs RewriteHTML would pass to its link function, in
// document order.
func Links(doc []byte) ([]string, error) {
	var links []string
	r := rewriter{doc: doc, seen: func(u string) { links = append(links, u) }}
	if _, _, err := r.pass(nil, doc, true); err != nil {
		return nil, err
	}
	return links, nil
}

// rewriter holds the state of one RewriteHTML or Links call.
type rewriter struct {
	link func(string) (string, bool) // nil: change no link
	seen func(string)                // if set, called with every tracked URL (Links)
	doc  []byte                      // the whole document

	// The document base URL applies to all of it, also to links before the
	// <base> element (WHATWG HTML §2.4.1), but it nearly always comes
	// first, in <head>. So base is picked up as the pass meets it, and
	// only if a link needs it before that is the document searched ahead.
	base      *url.URL // the document base URL, or nil
	baseFinal bool     // base is known: a <base href> was met or searched for

	bodyAt  int        // offset in the output of the last top-level </body>, or -1
	attrs   []attrSpan // reused by editTag
	scratch []byte     // reused for rewritten tags
	esc     []byte     // reused for escaped URLs
}

// pass appends doc to out with its links rewritten, and reports whether it
// changed anything. The tokenizer's raw bytes partition its input, so each
// token's offset is the sum of the lengths before it; unchanged stretches are
// copied from doc in one piece. top is false inside a conditional comment,
// where </body> does not count and comments are not looked into.
func (r *rewriter) pass(out, doc []byte, top bool) ([]byte, bool, error) {
	if top {
		r.bodyAt = -1
	}
	z := html.NewTokenizer(bytes.NewReader(doc))
	off, last := 0, 0
	changed := false
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			if err := z.Err(); err != io.EOF {
				return nil, false, err
			}
			// An unfinished tag or comment at the end is left as it is:
			// it is part of doc[last:].
			break
		}
		start := off
		off += len(z.Raw())
		t := doc[start:off]
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			name := tagName(t)
			if tt == html.StartTagToken && equalFold(name, "noscript") {
				// Mail clients run no scripts, so they show what is in
				// <noscript> as markup (WHATWG HTML §13.2.6.4.4, with the
				// scripting flag off), links included.
				z.NextIsNotRawText()
				continue
			}
			if top && !r.baseFinal && equalFold(name, "base") {
				r.readBase(z, t)
				continue
			}
			if !isLinkTag(name) {
				continue
			}
			nt, ok := r.editTag(z, t)
			if !ok {
				continue
			}
			out = append(out, doc[last:start]...)
			out = append(out, nt...)
			last, changed = off, true
		case html.EndTagToken:
			if top && equalFold(tagName(t), "body") {
				r.bodyAt = len(out) + start - last
			}
		case html.CommentToken:
			if !top || !isConditional(t) {
				continue
			}
			inner := t[len("<!--") : len(t)-len("-->")]
			if !containsFold(inner, "href") && !containsFold(inner, NoTrackAttr) {
				continue
			}
			mark := len(out)
			out = append(out, doc[last:start]...)
			out = append(out, "<!--"...)
			var ok bool
			var err error
			if out, ok, err = r.pass(out, inner, false); err != nil {
				return nil, false, err
			}
			if !ok {
				out = out[:mark]
				continue
			}
			out = append(out, "-->"...)
			last, changed = off, true
		}
	}
	return append(out, doc[last:]...), changed, nil
}

// editTag returns the rewritten form of the link tag t, the current token of
// z, or false if it stays as it is.
func (r *rewriter) editTag(z *html.Tokenizer, t []byte) ([]byte, bool) {
	r.attrs = scanAttrs(r.attrs[:0], t)
	href, notrack := -1, false
	for i, a := range r.attrs {
		k := t[a.keyStart:a.keyEnd]
		// The tokenizer keeps the first of attributes with the same name,
		// and so do browsers.
		if href < 0 && equalFold(k, "href") {
			href = i
		}
		if equalFold(k, NoTrackAttr) {
			notrack = true
		}
	}
	if href < 0 && !notrack {
		return nil, false
	}
	var newURL string
	rewrite := false
	if href >= 0 && !notrack {
		v := r.value(z, t, r.attrs[href])
		if !r.baseFinal && needsBase(v) {
			r.base, r.baseFinal = findBase(r.doc), true
		}
		if u, ok := trackable(v, r.base); ok {
			if r.seen != nil {
				r.seen(u)
			}
			if r.link != nil {
				if nu, ok := r.link(u); ok && nu != u {
					newURL, rewrite = nu, true
				}
			}
		}
	}
	if !rewrite && !notrack {
		return nil, false
	}
	b := r.scratch[:0]
	pos := 0
	// kept is where, in b, the last attribute kept (or the name) ends.
	// Between attributes there is only white space and '/'.
	kept := 1 + len(tagName(t))
	for i, a := range r.attrs {
		switch {
		case notrack && equalFold(t[a.keyStart:a.keyEnd], NoTrackAttr):
			// Take the gap before the attribute too, as far as what
			// follows allows: all of it before '>' ("<a/data-mxrelay-notrack>"
			// must not become the self-closing "<a/>"), its white space
			// before more white space, none before '/' or a name ("<a x=y
			// data-mxrelay-notrack/>" must not become "<a x=y/>").
			b = append(b, t[pos:a.keyStart]...)
			pos = a.end
			switch {
			case pos >= len(t) || t[pos] == '>':
				b = b[:kept]
			case isSpace(t[pos]):
				for len(b) > kept && isSpace(b[len(b)-1]) {
					b = b[:len(b)-1]
				}
			}
			continue
		case i == href && rewrite:
			r.esc = appendEscaped(r.esc[:0], newURL)
			b = append(b, t[pos:a.valStart]...)
			if a.quote == 0 && !unquotedOK(r.esc) {
				b = append(b, '"')
				b = append(b, r.esc...)
				b = append(b, '"')
			} else {
				b = append(b, r.esc...)
			}
			pos = a.valEnd
		}
		kept = len(b) + a.end - pos
	}
	b = append(b, t[pos:]...)
	r.scratch = b
	return b, true
}

// value returns the decoded value of the href attribute a of the current
// tag of z, whose raw bytes are t, as the tokenizer decodes it: entities
// in attribute mode, CR LF as LF, NUL as U+FFFD. A value whose only
// character references are &amp; (the common case: URL queries) is decoded
// here; for the rest the tokenizer is asked. It has the first of
// attributes with the same name, and so does a.
func (r *rewriter) value(z *html.Tokenizer, t []byte, a attrSpan) string {
	v := t[a.valStart:a.valEnd]
	if bytes.IndexByte(v, '\r') < 0 && bytes.IndexByte(v, 0) < 0 {
		amps := bytes.Count(v, []byte("&"))
		if amps == 0 {
			return string(v)
		}
		if bytes.Count(v, []byte("&amp;")) == amps {
			return string(bytes.ReplaceAll(v, []byte("&amp;"), []byte("&")))
		}
	}
	for more := true; more; {
		var k, v []byte
		k, v, more = z.TagAttr()
		if string(k) == "href" {
			return string(v)
		}
	}
	return ""
}

// readBase takes the document base URL from the <base> tag t, the current
// token of z, if it has an href. The first <base> with an href decides,
// even if its value is no use (WHATWG HTML §4.2.3).
func (r *rewriter) readBase(z *html.Tokenizer, t []byte) {
	r.attrs = scanAttrs(r.attrs[:0], t)
	for _, a := range r.attrs {
		if equalFold(t[a.keyStart:a.keyEnd], "href") {
			r.base, r.baseFinal = parseBase(r.value(z, t, a)), true
			return
		}
	}
}

// findBase returns the base URL of doc, for a link that needs it before the
// pass has met the <base> element: the first <base href> if that is
// absolute. A document without "<base" is not tokenized again.
func findBase(doc []byte) *url.URL {
	if !containsFold(doc, "<base") {
		return nil
	}
	z := html.NewTokenizer(bytes.NewReader(doc))
	for {
		switch z.Next() {
		case html.ErrorToken:
			return nil
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			if string(name) == "noscript" {
				z.NextIsNotRawText() // as in pass
			}
			if string(name) != "base" || !hasAttr {
				continue
			}
			for more := true; more; {
				var k, v []byte
				k, v, more = z.TagAttr()
				if string(k) == "href" {
					return parseBase(string(v))
				}
			}
		}
	}
}

// isLinkTag reports whether name (as written) is a tag whose href is tracked.
func isLinkTag(name []byte) bool {
	switch len(name) {
	case 1:
		return name[0] == 'a' || name[0] == 'A'
	case 4:
		return equalFold(name, "area")
	case 6, 7, 11: // v:rect, v:oval; v:shape; v:roundrect
		return equalFold(name, "v:rect") || equalFold(name, "v:oval") ||
			equalFold(name, "v:shape") || equalFold(name, "v:roundrect")
	}
	return false
}

// isConditional reports whether the comment token t is an Outlook
// conditional comment, <!--[if …]>…<![endif]-->.
func isConditional(t []byte) bool {
	const open = "<!--[if"
	return len(t) >= len(open)+len("-->") &&
		equalFold(t[:len(open)], open) &&
		bytes.HasSuffix(t, []byte("-->"))
}
