package preflight

import (
	"fmt"
	"strings"
	"time"
)

// Severity is how much a Finding matters.
type Severity int

// The severities, in increasing order.
const (
	// OK: the check passed.
	OK Severity = iota
	// Info: worth knowing; nothing needs to change.
	Info
	// Warning: some receivers will hold it against the mail, or the check
	// could not be made.
	Warning
	// Error: mail will fail authentication, be rejected, or break a
	// published rule.
	Error
)

// String returns "ok", "info", "warning" or "error".
func (s Severity) String() string {
	switch s {
	case OK:
		return "ok"
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return fmt.Sprintf("Severity(%d)", int(s))
}

// MarshalText returns String's result, so that a Severity is a JSON string.
func (s Severity) MarshalText() ([]byte, error) {
	if s < OK || s > Error {
		return nil, fmt.Errorf("preflight: cannot marshal %v", s)
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads what MarshalText writes.
func (s *Severity) UnmarshalText(b []byte) error {
	for v := OK; v <= Error; v++ {
		if string(b) == v.String() {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("preflight: unknown severity %q", b)
}

// Record is a DNS record to publish.
type Record struct {
	// Name is the owner name, without the trailing dot:
	// "example.com", "sel._domainkey.example.com",
	// "1.2.0.192.in-addr.arpa".
	Name string `json:"name"`
	// Type is "TXT", "PTR", "A" or "AAAA".
	Type string `json:"type"`
	// Value is the record's data: for TXT the whole text, unquoted and
	// not split into 255-octet strings (String splits it); for PTR a host
	// name with its trailing dot; for A and AAAA an address.
	Value string `json:"value"`
}

// String formats r as a zone-file line (RFC 1035 §5.1), a long TXT value
// split into quoted character-strings of at most 255 octets:
//
//	example.com. IN TXT "v=spf1 ip4:192.0.2.1 ~all"
func (r Record) String() string {
	value := r.Value
	if r.Type == "TXT" {
		var b strings.Builder
		for i, s := range splitTXT(r.Value) {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteByte('"')
			for j := 0; j < len(s); j++ {
				if s[j] == '"' || s[j] == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(s[j])
			}
			b.WriteByte('"')
		}
		value = b.String()
	}
	return r.Name + ". IN " + r.Type + " " + value
}

// splitTXT cuts s into character-strings of at most 255 octets.
func splitTXT(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}

// Finding is the outcome of one check about one subject.
type Finding struct {
	// Check is the check's stable dotted name, "spf.missing": the family
	// before the dot (config, spf, dkim, dmarc, rdns, mx, bulk). The
	// package documentation lists them.
	Check string `json:"check"`
	// Severity says how much it matters; OK for a check that passed.
	Severity Severity `json:"severity"`
	// Subject is the DNS name or address the finding is about.
	Subject string `json:"subject"`
	// Found says what the DNS holds, or what went wrong.
	Found string `json:"found,omitempty"`
	// Fix says what to change; empty for OK.
	Fix string `json:"fix,omitempty"`
	// Record is the DNS record to publish that fixes it, when one does.
	Record *Record `json:"record,omitempty"`
	// Source names the RFC or published rule the check comes from.
	Source string `json:"source,omitempty"`
}

// String returns "severity check subject: found".
func (f Finding) String() string {
	s := f.Severity.String() + " " + f.Check + " " + f.Subject
	if f.Found != "" {
		s += ": " + f.Found
	}
	return s
}

// family returns the part of a check name before the first dot.
func family(check string) string {
	if i := strings.IndexByte(check, '.'); i >= 0 {
		return check[:i]
	}
	return check
}

// Report is the outcome of Check.
type Report struct {
	Domain   string    `json:"domain"`   // the From domain checked, A-labels
	Checked  time.Time `json:"checked"`  // when, UTC
	Findings []Finding `json:"findings"` // by family, in the order of the package documentation
}

// Errors returns the findings of Severity Error.
func (r *Report) Errors() []Finding { return r.bySeverity(Error) }

// Warnings returns the findings of Severity Warning.
func (r *Report) Warnings() []Finding { return r.bySeverity(Warning) }

func (r *Report) bySeverity(s Severity) []Finding {
	if r == nil {
		return nil
	}
	var out []Finding
	for _, f := range r.Findings {
		if f.Severity == s {
			out = append(out, f)
		}
	}
	return out
}

// OK reports whether nothing needs fixing: no Error and no Warning. (A
// Warning is also what a check that could not be made gives.)
func (r *Report) OK() bool {
	if r == nil {
		return false
	}
	for _, f := range r.Findings {
		if f.Severity >= Warning {
			return false
		}
	}
	return true
}

// String returns the text WriteText writes.
func (r *Report) String() string {
	var b strings.Builder
	_ = r.WriteText(&b)
	return b.String()
}

// Compare returns the findings of new at Warning or Error that old does
// not have, matched by Check and Subject, at the same or a higher
// severity: what got worse between two preflights, for alerts. A nil old
// counts as empty; a nil new gives nil. The findings keep new's order.
func Compare(old, new *Report) []Finding {
	if new == nil {
		return nil
	}
	type id struct{ check, subject string }
	before := map[id]Severity{}
	if old != nil {
		for _, f := range old.Findings {
			k := id{f.Check, f.Subject}
			if s, ok := before[k]; !ok || f.Severity > s {
				before[k] = f.Severity
			}
		}
	}
	var out []Finding
	for _, f := range new.Findings {
		if f.Severity < Warning {
			continue
		}
		if s, ok := before[id{f.Check, f.Subject}]; ok && s >= f.Severity {
			continue
		}
		out = append(out, f)
	}
	return out
}
