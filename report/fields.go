package report

import "strings"

// Field is one header field.
type Field struct {
	Name  string // as written ("Message-ID", "message-id")
	Value string // continuation lines joined by one space, trimmed; not RFC 2047-decoded
}

// Header is a header block in the order it was written. It is a plain
// slice, so ranging over it sees every field, repeated ones included.
type Header []Field

// Get returns the value of the first field named name, compared without
// regard to case, or "" when there is none.
func (h Header) Get(name string) string {
	v, _ := h.lookup(name)
	return v
}

// Values returns the values of every field named name, in order.
func (h Header) Values(name string) []string {
	var vs []string
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			vs = append(vs, f.Value)
		}
	}
	return vs
}

func (h Header) lookup(name string) (string, bool) {
	for _, f := range h {
		if len(f.Name) == len(name) && strings.EqualFold(f.Name, name) {
			return f.Value, true
		}
	}
	return "", false
}

// Bounds on what one header block may hold, so that hostile input cannot
// make Parse allocate far more than it read.
const (
	maxFields = 1000 // fields kept per header block
	maxGroups = 2000 // field groups kept per delivery-status or feedback-report part
)

// nextLine returns the line that starts at s[i:] without its line end
// (LF or CRLF) and the offset just after that end.
func nextLine(s string, i int) (line string, next int) {
	j := strings.IndexByte(s[i:], '\n')
	if j < 0 {
		line, next = s[i:], len(s)
	} else {
		line, next = s[i:i+j], i+j+1
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, next
}

func isBlank(line string) bool {
	for i := 0; i < len(line); i++ {
		if c := line[i]; c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// fieldName returns the name of a "Name: value" line and the offset of the
// colon, or ok false when the line is not a header field. Spaces between
// the name and the colon are tolerated, as some MTAs write them.
func fieldName(line string) (name string, colon int, ok bool) {
	colon = strings.IndexByte(line, ':')
	if colon <= 0 {
		return "", 0, false
	}
	name = strings.TrimRight(line[:colon], " \t")
	if name == "" {
		return "", 0, false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f {
			return "", 0, false
		}
	}
	return name, colon, true
}

// blockMode says what parseBlock does with a line that is neither a field
// nor a continuation.
type blockMode int

const (
	// topMode: such a line ends the header (the body starts there) unless
	// the next line is a field again, in which case it is skipped.
	topMode blockMode = iota
	// groupMode: such lines are skipped; only a blank line ends the block.
	groupMode
)

// parseBlock reads one header block from s: fields up to the first blank
// (or whitespace-only) line. It returns the fields and what follows the
// blank line. Folded values are unfolded with one space per line break.
func parseBlock(s string, mode blockMode) (Header, string) {
	var (
		h     Header
		b     strings.Builder
		name  string
		value string
		open  bool // a field is being read
		multi bool // and its value is in b
	)
	flush := func() {
		if !open {
			return
		}
		if multi {
			value = b.String()
			b = strings.Builder{}
		}
		if len(h) < maxFields {
			if h == nil {
				h = make(Header, 0, countFields(s))
			}
			h = append(h, Field{Name: name, Value: value})
		}
		open, multi = false, false
	}
	i := 0
	for i < len(s) {
		start := i
		line, next := nextLine(s, i)
		i = next
		if isBlank(line) {
			flush()
			return h, s[i:]
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !open {
				continue // a continuation of nothing
			}
			piece := strings.TrimSpace(line)
			if piece == "" {
				continue
			}
			if !multi {
				b.Grow(len(value) + 1 + len(piece))
				b.WriteString(value)
				multi = true
			}
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(piece)
			continue
		}
		n, colon, ok := fieldName(line)
		if ok {
			flush()
			name, value, open = n, strings.TrimSpace(line[colon+1:]), true
			continue
		}
		// Neither a field nor a continuation.
		if mode == groupMode {
			continue
		}
		if i < len(s) {
			if peek, _ := nextLine(s, i); !isBlank(peek) {
				if _, _, ok := fieldName(peek); ok {
					continue // one stray line inside the header
				}
			}
		}
		flush()
		return h, s[start:]
	}
	flush()
	return h, ""
}

// countFields estimates how many fields the header block at the start of
// s has: the lines up to the first blank one that do not start with white
// space. It lets parseBlock allocate once.
func countFields(s string) int {
	n := 0
	for i := 0; i < len(s) && n < maxFields; {
		line, next := nextLine(s, i)
		if isBlank(line) {
			break
		}
		if line[0] != ' ' && line[0] != '\t' {
			n++
		}
		i = next
	}
	return max(n, 1)
}

// parseGroups reads the blank-line separated field groups of a
// delivery-status or feedback-report body.
func parseGroups(s string) []Header {
	var groups []Header
	for s != "" && len(groups) < maxGroups {
		h, rest := parseBlock(s, groupMode)
		if len(h) > 0 {
			groups = append(groups, h)
		}
		if len(rest) >= len(s) {
			break
		}
		s = rest
	}
	return groups
}
