package console

import (
	"fmt"
	"html/template"
	"strconv"
	"time"
)

// funcs are the templates' helpers.
func (k *server) funcs() template.FuncMap {
	return template.FuncMap{
		"ago":    func(t time.Time) string { return ago(k.now(), t) },
		"due":    func(t time.Time) string { return due(k.now(), t) },
		"when":   func(t time.Time) string { return when(t) },
		"bytes":  byteSize,
		"pct":    pct,
		"num":    func(n int64) string { return group(n) },
		"inum":   func(n int) string { return group(int64(n)) },
		"dict":   dict,
		"plural": plural,
	}
}

// when writes an instant for a table cell, in UTC; "" for the zero time.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// ago says how long before now t was ("3 min ago", "in 2 h"); within
// a second either way, "now".
func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d > -time.Second && d < time.Second:
		return "now"
	case d < 0:
		return "in " + span(-d)
	}
	return span(d) + " ago"
}

// due says when an attempt is due: "now" once its time has come, else
// how long until then.
func due(now, t time.Time) string {
	if !t.After(now) {
		return "now"
	}
	return ago(now, t)
}

// span writes a duration in its largest whole unit.
func span(d time.Duration) string {
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", int(d/time.Hour))
	default:
		return fmt.Sprintf("%d d", int(d/(24*time.Hour)))
	}
}

// byteSize writes a size in B, KB or MB (powers of 1,000, as mail
// providers state their limits).
func byteSize(n int) string {
	switch {
	case n < 1000:
		return strconv.Itoa(n) + " B"
	case n < 1000_000:
		return fmt.Sprintf("%.1f KB", float64(n)/1e3)
	default:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
}

// pct writes a rate as a percentage with two decimals.
func pct(r float64) string { return fmt.Sprintf("%.2f%%", r*100) }

// group writes n with thin separators of thousands.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// dict makes a map of alternate keys and values, for a sub-template.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}
