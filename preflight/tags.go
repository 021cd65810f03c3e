package preflight

import (
	"fmt"
	"strings"
)

// tagList is a parsed tag=value list (RFC 6376 §3.2), the syntax of DKIM
// key records and DMARC records.
type tagList struct {
	order []string          // tag names in the order given, lower case
	tags  map[string]string // values with surrounding whitespace removed
}

// parseTagList parses "v=DKIM1; k=rsa; p=..." : tags separated by ";", a
// final ";" allowed, whitespace around names and values ignored. A tag
// given twice makes the whole list invalid (RFC 6376 §3.2).
func parseTagList(s string) (*tagList, error) {
	tl := &tagList{tags: map[string]string{}}
	for spec := range strings.SplitSeq(s, ";") {
		spec = strings.Trim(spec, " \t\r\n")
		if spec == "" {
			continue
		}
		name, value, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not tag=value", spec)
		}
		name = strings.ToLower(strings.Trim(name, " \t\r\n"))
		if !validTagName(name) {
			return nil, fmt.Errorf("bad tag name %q", name)
		}
		if _, dup := tl.tags[name]; dup {
			return nil, fmt.Errorf("tag %q given twice", name)
		}
		tl.order = append(tl.order, name)
		tl.tags[name] = strings.Trim(value, " \t\r\n")
	}
	return tl, nil
}

// validTagName reports whether s is ALPHA *( ALPHA / DIGIT / "_" ).
func validTagName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isAlpha(s[i]) && !isDigit(s[i]) && s[i] != '_' {
			return false
		}
	}
	return true
}

// get returns the value of a tag and whether it is present.
func (tl *tagList) get(name string) (string, bool) {
	v, ok := tl.tags[name]
	return v, ok
}
