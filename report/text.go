package report

import (
	"html"
	"strings"
	"unicode/utf8"
)

// textPart returns the leaf that holds the message's human-readable text:
// the first inline text/plain part, else the first text/plain part, else
// the first text/html part; nil when there is none.
func (t *tree) textPart() *entity {
	var plain, html *entity
	for _, e := range t.leaves {
		switch e.mediaType {
		case "text/plain":
			if !isAttachment(e) {
				return e
			}
			if plain == nil {
				plain = e
			}
		case "text/html":
			if html == nil {
				html = e
			}
		}
	}
	if plain != nil {
		return plain
	}
	return html
}

func isAttachment(e *entity) bool {
	return hasPrefixFold(strings.TrimSpace(e.header.Get("Content-Disposition")), "attachment")
}

// bodyText returns the decoded text of a leaf, markup removed from HTML,
// with LF line ends, valid UTF-8, at most limit bytes (cut on a character
// boundary) and trimmed.
func bodyText(e *entity, limit int) string {
	if e == nil {
		return ""
	}
	// Read some more than limit: line ends shrink and markup goes.
	read := limit * 2
	if e.mediaType == "text/html" {
		read = limit * 8
	}
	s := e.content(read)
	if e.mediaType == "text/html" {
		s = htmlText(s)
	}
	return finishText(s, limit)
}

func finishText(s string, limit int) string {
	s = validUTF8(s)
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
	}
	s = strings.TrimSpace(s)
	if len(s) > limit {
		n := limit
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	return s
}

// htmlText turns HTML into plain text well enough to read a bounce or an
// auto-reply: script and style content dropped, block ends become line
// breaks, other tags removed, entities decoded.
func htmlText(s string) string {
	var b strings.Builder
	b.Grow(len(s) / 2)
	for len(s) > 0 {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		j := strings.IndexByte(s, '>')
		if j < 0 {
			break
		}
		tag := s[1:j]
		s = s[j+1:]
		name := tagName(tag)
		switch name {
		case "script", "style", "head", "title":
			end := indexFold(s, "</"+name)
			if end < 0 {
				end = len(s) // unclosed: the rest is not text
			}
			s = s[end:]
		case "br", "p", "/p", "div", "/div", "tr", "/tr", "li", "/li", "h1", "h2", "h3", "/h1", "/h2", "/h3", "table", "/table":
			b.WriteByte('\n')
		case "td", "/td", "th":
			b.WriteByte(' ')
		}
	}
	out := html.UnescapeString(b.String())
	// Collapse the runs of blank lines and indentation markup leaves.
	lines := strings.Split(out, "\n")
	kept := lines[:0]
	blank := false
	for _, l := range lines {
		l = strings.Join(strings.Fields(l), " ")
		if l == "" {
			if !blank && len(kept) > 0 {
				kept = append(kept, "")
			}
			blank = true
			continue
		}
		blank = false
		kept = append(kept, l)
	}
	return strings.Join(kept, "\n")
}

func tagName(tag string) string {
	tag = strings.TrimSpace(tag)
	i := 0
	if i < len(tag) && tag[i] == '/' {
		i++
	}
	for i < len(tag) && isAlnum(tag[i]) {
		i++
	}
	return strings.ToLower(tag[:i])
}

// indexFold is strings.Index without regard to ASCII case, for a
// lower-case substr.
func indexFold(s, lowerSubstr string) int {
	for i := 0; i+len(lowerSubstr) <= len(s); i++ {
		if hasPrefixFold(s[i:], lowerSubstr) {
			return i
		}
	}
	return -1
}
