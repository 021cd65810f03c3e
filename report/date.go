package report

import (
	"strings"
	"time"
)

// dateLayouts are tried in order on a date that parseDate has normalised:
// no weekday, no comments, single spaces, a numeric zone.
var dateLayouts = [...]string{
	"2 Jan 2006 15:04:05 -0700", // RFC 5322 §3.3, by far the most common
	"2 Jan 2006 15:04 -0700",
	"2 Jan 06 15:04:05 -0700", // RFC 822 two-digit year
	"2 Jan 06 15:04 -0700",
	"2 January 2006 15:04:05 -0700",
	"2 Jan 2006 15:04:05", // no zone: UTC
	"Jan 2 15:04:05 2006", // asctime, as ctime(3) prints it
	"Jan 2 15:04:05 -0700 2006",
	"Jan 2 2006 15:04:05 -0700",
	"January 2, 2006 3:04:05 PM -0700",
	"January 2, 2006 3:04:05 PM",
	"January 2, 2006 15:04:05 -0700",
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
	"2.1.2006 15:04:05 -0700",
	"2.1.2006 15:04:05",
}

// namedZone returns the offset of a zone name of RFC 5322 §4.3 or of
// some common others. Names are resolved here, not by the time package, so
// that a result never depends on the machine's local zone.
func namedZone(name string) (string, bool) {
	switch name {
	case "UT", "UTC", "GMT", "Z", "WET":
		return "+0000", true
	case "EST", "CDT":
		return "-0500", true
	case "EDT":
		return "-0400", true
	case "CST", "MDT":
		return "-0600", true
	case "MST", "PDT":
		return "-0700", true
	case "PST":
		return "-0800", true
	case "WEST", "BST", "CET", "MET":
		return "+0100", true
	case "CEST", "MEST", "EET":
		return "+0200", true
	case "EEST", "MSK":
		return "+0300", true
	case "IST":
		return "+0530", true
	case "SGT", "HKT", "CCT":
		return "+0800", true
	case "JST", "KST":
		return "+0900", true
	case "AEST":
		return "+1000", true
	case "AEDT":
		return "+1100", true
	case "NZST":
		return "+1200", true
	case "NZDT":
		return "+1300", true
	}
	return "", false
}

var weekdays = [...]string{
	"mon", "tue", "wed", "thu", "fri", "sat", "sun",
	"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
	"tues", "thur", "thurs",
}

var months = [...]string{
	"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
	"january", "february", "march", "april", "june", "july", "august",
	"sept", "september", "october", "november", "december",
}

// parseDate parses the dates MTAs write: RFC 5322 with or without the
// weekday, with zone names or comments, asctime, ISO 8601 and a few
// others. It returns the zero time when nothing fits; a bad date is never
// an error.
func parseDate(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	// The common case parses as it is, once a trailing "(UTC)" is cut.
	fast := s
	if n := len(fast); n > 0 && fast[n-1] == ')' {
		if i := strings.LastIndexByte(fast, '('); i > 0 {
			fast = strings.TrimRight(fast[:i], " \t")
		}
	}
	if len(fast) > 4 && fast[3] == ',' && fast[4] == ' ' && (len(fast) < 6 || fast[5] != ' ') {
		if t, err := time.Parse("Mon, 2 Jan 2006 15:04:05 -0700", fast); err == nil {
			return t
		}
	}
	norm := normDate(s)
	if norm == "" {
		return time.Time{}
	}
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, norm); err == nil {
			return t
		}
	}
	return time.Time{}
}

// normDate drops comments, the weekday and commas after it, collapses
// spaces and turns a zone name into an offset.
func normDate(s string) string {
	s = stripComments(s)
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 12 {
		return ""
	}
	if w := strings.ToLower(strings.TrimRight(f[0], ",.")); isOneOf(w, weekdays[:]) {
		f = f[1:]
	} else if i := strings.IndexByte(f[0], ','); i > 0 && isOneOf(strings.ToLower(f[0][:i]), weekdays[:]) {
		f[0] = f[0][i+1:] // "Thu,7 Jul 1994"
		if f[0] == "" {
			f = f[1:]
		}
	}
	out := f[:0]
	prevZone := false
	for i, tok := range f {
		tok = strings.TrimSuffix(tok, ".")
		if i > 0 && tok != "" {
			if z, ok := zoneOffset(tok); ok {
				if prevZone {
					continue // "+0000 GMT": one zone is enough
				}
				out = append(out, z)
				prevZone = true
				continue
			}
		}
		prevZone = len(tok) == 5 && (tok[0] == '+' || tok[0] == '-') && isDigit(tok[1])
		if tok != "" {
			out = append(out, tok)
		}
	}
	return strings.Join(out, " ")
}

// zoneOffset turns a zone name ("EDT", "GMT+0100", "UTC+01:00") into a
// numeric offset. Tokens that are not zone names, such as "PM" or a month,
// are not.
func zoneOffset(tok string) (string, bool) {
	letters := 0
	for letters < len(tok) && (tok[letters] >= 'A' && tok[letters] <= 'Z' || tok[letters] >= 'a' && tok[letters] <= 'z') {
		letters++
	}
	if letters == 0 || letters > 5 {
		return "", false
	}
	name := strings.ToUpper(tok[:letters])
	rest := tok[letters:]
	if rest != "" {
		if (name == "GMT" || name == "UTC" || name == "UT") && (rest[0] == '+' || rest[0] == '-') {
			return strings.Replace(rest, ":", "", 1), true
		}
		return "", false
	}
	if name == "AM" || name == "PM" {
		return "", false
	}
	lower := strings.ToLower(name)
	if isOneOf(lower, months[:]) || isOneOf(lower, weekdays[:]) {
		return "", false
	}
	if z, ok := namedZone(name); ok {
		return z, true
	}
	if letters >= 3 {
		return "+0000", true // an unknown zone: RFC 5322 reads it as -0000
	}
	return "", false
}

func isOneOf(s string, list []string) bool {
	for _, l := range list {
		if s == l {
			return true
		}
	}
	return false
}
