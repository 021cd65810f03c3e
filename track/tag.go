package track

// attrSpan locates one attribute inside the raw bytes of a start tag.
// All offsets index the tag's raw bytes.
type attrSpan struct {
	keyStart, keyEnd int  // the name, as written
	valStart, valEnd int  // the value, without its quotes; empty if none
	end              int  // one past the attribute: past the closing quote, the value or the '='
	quote            byte // '"', '\'', or 0 for an unquoted or missing value
}

// scanAttrs appends to dst the attributes of the start tag t, the raw bytes
// of one StartTagToken or SelfClosingTagToken (t[0] == '<', t[1] a letter).
//
// It runs the attribute states of WHATWG HTML §13.2.5.32–38 the way
// golang.org/x/net/html's Tokenizer does (an '=' opening a name belongs to
// it; '/' separates), over bytes the tokenizer has already cut out, and so
// finds the names and values the tokenizer finds; it also returns repeated
// names, of which the tokenizer keeps the first. The tokenizer does not say
// where an attribute sits in its raw bytes, and a rewriter that keeps every
// other byte needs exactly that. FuzzScanAttrs checks that the two agree.
func scanAttrs(dst []attrSpan, t []byte) []attrSpan {
	n := len(t)
	i := 2 // '<' and the first letter of the name are consumed
	// readTagName
	for i < n {
		c := t[i]
		i++
		if isSpace(c) {
			break
		}
		if c == '/' || c == '>' {
			i--
			break
		}
	}
	i = skipSpace(t, i)
	for i < n {
		if t[i] == '>' {
			break
		}
		var a attrSpan
		// readTagAttrKey
		a.keyStart = i
		for i < n {
			c := t[i]
			i++
			if c == '=' && a.keyStart+1 == i {
				continue // '=' as the first byte of a name belongs to the name
			}
			if c == '=' || c == '/' || c == '>' || isSpace(c) {
				i--
				break
			}
		}
		a.keyEnd = i
		a.end = i
		// readTagAttrVal
		a.valStart, a.valEnd = i, i
		i = skipSpace(t, i)
		if i < n {
			switch c := t[i]; c {
			case '/':
				i++
			case '=':
				i++
				a.end = i
				i = skipSpace(t, i)
				if i >= n {
					break
				}
				switch q := t[i]; q {
				case '>':
				case '"', '\'':
					i++
					a.quote = q
					a.valStart = i
					for i < n && t[i] != q {
						i++
					}
					a.valEnd = i
					if i < n {
						i++ // the closing quote
					}
					a.end = i
				default:
					a.valStart = i
					for i < n && t[i] != '>' && !isSpace(t[i]) {
						i++
					}
					a.valEnd = i
					a.end = i
				}
			}
		}
		if a.keyEnd > a.keyStart {
			dst = append(dst, a)
		}
		i = skipSpace(t, i)
	}
	return dst
}

// tagName returns the name of the tag whose raw bytes are t, as written (not
// lower-cased), the way the tokenizer's readTagName delimits it.
func tagName(t []byte) []byte {
	start := 1
	if len(t) > 1 && t[1] == '/' {
		start = 2
	}
	i := start + 1
	for i < len(t) {
		c := t[i]
		if isSpace(c) || c == '/' || c == '>' {
			break
		}
		i++
	}
	return t[start:i]
}

// isSpace reports whether c is HTML whitespace as the tokenizer sees it.
func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f'
}

func skipSpace(t []byte, i int) int {
	for i < len(t) && isSpace(t[i]) {
		i++
	}
	return i
}

// equalFold reports whether b equals the lower-case ASCII string s,
// ignoring ASCII case in b.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// containsFold reports whether b contains the lower-case ASCII string s,
// ignoring ASCII case in b.
func containsFold(b []byte, s string) bool {
	if len(s) == 0 {
		return true
	}
	first := s[0]
	upper := first
	if 'a' <= first && first <= 'z' {
		upper -= 'a' - 'A'
	}
	for i := 0; i+len(s) <= len(b); i++ {
		if c := b[i]; (c == first || c == upper) && equalFold(b[i:i+len(s)], s) {
			return true
		}
	}
	return false
}
