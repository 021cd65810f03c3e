package report

import (
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

// The MIME structure is split here rather than by go-message's reader:
// that reader stops with an error at the first header line without a colon
// and at a part header it cannot read, and bounces quote broken messages.
// Splitting the structure over the input held in memory also lets Parse
// skip a returned message's body without reading it. go-message decodes
// the leaf parts that Parse reads (transfer encodings and charsets).

// Bounds on the MIME tree, so that hostile nesting cannot make Parse slow.
const (
	maxDepth  = 8
	maxLeaves = 256
)

// entity is one leaf part of the message: a part that is not multipart,
// or a message/* part, which Parse does not descend into.
type entity struct {
	header     Header
	body       string // as written, still transfer-encoded
	mediaType  string // lower case; "text/plain" when absent or invalid
	params     params
	reportType string // report-type of the innermost enclosing multipart/report
	index      int    // position among the leaves
}

// tree is the flattened MIME structure of a message.
type tree struct {
	leaves      []*entity
	reportTypes []string // report-type of every multipart/report, outermost first
}

// scan flattens the MIME structure of a message or part.
func scan(h Header, body string) *tree {
	t := &tree{}
	t.walk(h, body, 0, "", "")
	return t
}

func (t *tree) walk(h Header, body string, depth int, reportType, parent string) {
	if len(t.leaves) >= maxLeaves {
		return
	}
	mt, ps := contentType(h, parent)
	if strings.HasPrefix(mt, "multipart/") && depth < maxDepth {
		if mt == "multipart/report" {
			reportType = strings.ToLower(strings.TrimSpace(ps.reportType))
			t.reportTypes = append(t.reportTypes, reportType)
		}
		b := ps.boundary
		if b == "" {
			b = guessBoundary(body)
		}
		if b != "" {
			parts := splitParts(body, b)
			if len(parts) > 0 {
				for _, p := range parts {
					ph, pbody := parseBlock(p, topMode)
					t.walk(ph, pbody, depth+1, reportType, mt)
				}
				return
			}
		}
		// A multipart without parts that can be found: read it as text,
		// so that its words are still seen.
		mt, ps = "text/plain", params{}
	}
	t.leaves = append(t.leaves, &entity{
		header:     h,
		body:       body,
		mediaType:  mt,
		params:     ps,
		reportType: reportType,
		index:      len(t.leaves),
	})
}

// hasReport reports whether a multipart/report of one of the types is in
// the message.
func (t *tree) hasReport(types ...string) bool {
	for _, rt := range t.reportTypes {
		for _, want := range types {
			if rt == want {
				return true
			}
		}
	}
	return false
}

// first returns the first leaf of one of the media types, or nil.
func (t *tree) first(types ...string) *entity {
	for _, e := range t.leaves {
		for _, mt := range types {
			if e.mediaType == mt {
				return e
			}
		}
	}
	return nil
}

// params are the Content-Type parameters Parse uses.
type params struct {
	boundary, reportType, charset string
}

func (p *params) set(name, value string) {
	switch {
	case nameIs(name, "boundary"):
		if p.boundary == "" {
			p.boundary = value
		}
	case nameIs(name, "report-type"):
		if p.reportType == "" {
			p.reportType = value
		}
	case nameIs(name, "charset"):
		if p.charset == "" {
			p.charset = value
		}
	}
}

// guessBoundary returns the boundary of a multipart body whose
// Content-Type lost its boundary parameter: what follows "--" on the first
// line that starts with it, if that line appears again.
func guessBoundary(body string) string {
	for i := 0; i < len(body) && i < 64<<10; {
		line, next := nextLine(body, i)
		i = next
		if !strings.HasPrefix(line, "--") {
			continue
		}
		b := strings.TrimRight(line[2:], " \t")
		if len(b) < 2 || len(b) > 200 || strings.HasSuffix(b, "--") {
			return ""
		}
		if _, _, _, ok := findDelim(body, "--"+b, i); ok {
			return b
		}
		return ""
	}
	return ""
}

// contentType returns the lower-cased media type and parameters of a part.
// A missing or unreadable Content-Type is text/plain (RFC 2045 §5.2), or
// message/rfc822 inside a multipart/digest (RFC 2046 §5.1.5). The common
// simple form is read here; RFC 2231 parameters and quoted pairs go to
// mime.ParseMediaType, and what that rejects is read loosely.
func contentType(h Header, parent string) (string, params) {
	v := h.Get("Content-Type")
	if v == "" {
		if parent == "multipart/digest" {
			return "message/rfc822", params{}
		}
		return "text/plain", params{}
	}
	mt, p, ok := simpleMediaType(v)
	if !ok {
		var m map[string]string
		var err error
		mt, m, err = mime.ParseMediaType(v)
		if err != nil {
			mt, p = looseMediaType(v)
		} else {
			p = params{boundary: m["boundary"], reportType: m["report-type"], charset: m["charset"]}
		}
	}
	if i := strings.IndexByte(mt, '/'); i <= 0 || i == len(mt)-1 {
		return "text/plain", p
	}
	return mt, p
}

func isTokenChar(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune(`()<>@,;:\"/[]?=`, rune(c))
}

// simpleMediaType reads `type/subtype; name=value; name="value"` when it
// has no RFC 2231 parameter (name*) and no quoted pair; ok is false for
// anything else.
func simpleMediaType(v string) (string, params, bool) {
	var p params
	i := strings.IndexByte(v, ';')
	if i < 0 {
		i = len(v)
	}
	mt := strings.ToLower(strings.TrimSpace(v[:i]))
	slash := strings.IndexByte(mt, '/')
	if slash <= 0 {
		return "", p, false
	}
	for j := 0; j < len(mt); j++ {
		if j != slash && !isTokenChar(mt[j]) {
			return "", p, false
		}
	}
	for i < len(v) {
		i++ // the ';'
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if i == len(v) {
			break // a trailing ';'
		}
		start := i
		for i < len(v) && isTokenChar(v[i]) && v[i] != '*' {
			i++
		}
		name := v[start:i]
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if name == "" || i == len(v) || v[i] != '=' {
			return "", p, false
		}
		i++
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		var value string
		if i < len(v) && v[i] == '"' {
			end := strings.IndexAny(v[i+1:], `"\`)
			if end < 0 || v[i+1+end] == '\\' {
				return "", p, false
			}
			value = v[i+1 : i+1+end]
			i += end + 2
		} else {
			start := i
			for i < len(v) && isTokenChar(v[i]) {
				i++
			}
			value = v[start:i]
			if value == "" {
				return "", p, false
			}
		}
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if i < len(v) && v[i] != ';' {
			return "", p, false
		}
		p.set(name, value)
	}
	return mt, p, true
}

// looseMediaType reads "type/subtype; name=value; ..." without RFC 2045's
// rules, for values that mime.ParseMediaType refuses (duplicate or
// malformed parameters, stray characters).
func looseMediaType(v string) (string, params) {
	var p params
	parts := strings.Split(v, ";")
	mt := strings.ToLower(strings.TrimSpace(parts[0]))
	if i := strings.IndexAny(mt, " \t"); i >= 0 {
		mt = mt[:i]
	}
	for _, part := range parts[1:] {
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' {
			if j := strings.IndexByte(val[1:], '"'); j >= 0 {
				val = val[1 : 1+j]
			}
		}
		p.set(k, val)
	}
	return mt, p
}

// splitParts returns the bodies of the parts of a multipart body (RFC 2046
// §5.1.1), each with its header. The line end before a delimiter belongs
// to the delimiter. A missing close delimiter ends the last part at the
// end of the body.
func splitParts(body, boundary string) []string {
	delim := "--" + boundary
	_, pos, closed, ok := findDelim(body, delim, 0)
	if !ok || closed {
		return nil
	}
	var parts []string
	for len(parts) < maxLeaves {
		start, next, closed, ok := findDelim(body, delim, pos)
		if !ok {
			parts = append(parts, body[pos:])
			break
		}
		end := start
		if end > pos && body[end-1] == '\n' {
			end--
			if end > pos && body[end-1] == '\r' {
				end--
			}
		}
		parts = append(parts, body[pos:end])
		if closed {
			break
		}
		pos = next
	}
	return parts
}

// findDelim finds the next delimiter line at or after from: "--boundary",
// optionally "--" for the close delimiter, then only white space. It
// returns where the line starts, where the next line starts and whether
// it is the close delimiter.
func findDelim(s, delim string, from int) (start, next int, closed, ok bool) {
	for from <= len(s) {
		k := strings.Index(s[from:], delim)
		if k < 0 {
			return 0, 0, false, false
		}
		k += from
		from = k + 1
		if k > 0 && s[k-1] != '\n' {
			continue
		}
		line, nx := nextLine(s, k)
		rest := line[len(delim):]
		cl := strings.HasPrefix(rest, "--")
		if cl {
			rest = rest[2:]
		}
		if !isBlank(rest) {
			continue // a longer boundary that starts with this one
		}
		return k, nx, cl, true
	}
	return 0, 0, false, false
}

// content returns a leaf's body decoded from its transfer encoding and,
// for text, its charset: at most limit bytes of it. Undecodable content
// (an unknown encoding or charset, broken base64) comes back as it is, so
// the caller still sees its words.
func (e *entity) content(limit int) string {
	cte := strings.ToLower(strings.TrimSpace(e.header.Get("Content-Transfer-Encoding")))
	cs := ""
	if strings.HasPrefix(e.mediaType, "text/") {
		cs = strings.ToLower(strings.Trim(e.params.charset, `" `))
	}
	raw := e.body
	switch cte {
	case "", "7bit", "8bit", "binary":
		switch cs {
		case "", "utf-8", "us-ascii", "utf8", "ascii":
			return cut(raw, limit)
		}
		cte = ""
	}
	var th textproto.Header
	if cs != "" {
		th.Set("Content-Type", mime.FormatMediaType(e.mediaType, map[string]string{"charset": cs}))
	} else {
		th.Set("Content-Type", e.mediaType)
	}
	if cte != "" {
		th.Set("Content-Transfer-Encoding", cte)
	}
	ent, _ := message.New(message.Header{Header: th}, strings.NewReader(raw))
	if ent == nil {
		return cut(raw, limit)
	}
	var b strings.Builder
	_, err := io.CopyBuffer(&b, io.LimitReader(ent.Body, int64(limit)), make([]byte, 2048))
	if err == nil {
		return b.String()
	}
	if cte == "quoted-printable" {
		// Go's decoder stops at a control character or at junk after a
		// soft line break; decode such text loosely instead.
		return cut(convert(looseQP(raw), cs), limit)
	}
	if b.Len() == 0 {
		return cut(raw, limit)
	}
	return b.String()
}

// looseQP decodes quoted-printable without failing: "=XX" and soft line
// breaks are decoded, anything else is kept.
func looseQP(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '=' {
			b.WriteByte(c)
			continue
		}
		if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		j := i + 1
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		if j < len(s) && s[j] == '\r' {
			j++
		}
		if j < len(s) && s[j] == '\n' {
			i = j // soft line break
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isHex(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// convert decodes s from a charset to UTF-8, or returns it as it is when
// the charset is unknown or does not decode.
func convert(s, cs string) string {
	switch cs {
	case "", "utf-8", "us-ascii", "utf8", "ascii":
		return s
	}
	r, err := charset.Reader(cs, strings.NewReader(s))
	if err != nil {
		return s
	}
	var b strings.Builder
	if _, err := io.CopyBuffer(&b, r, make([]byte, 2048)); err != nil && b.Len() == 0 {
		return s
	}
	return b.String()
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
