package preflight

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// families are the check families in report order, with their headings.
var families = []struct{ name, title string }{
	{"config", "Configuration"},
	{"spf", "SPF (RFC 7208)"},
	{"dkim", "DKIM (RFC 6376)"},
	{"dmarc", "DMARC (RFC 7489)"},
	{"rdns", "Reverse DNS and EHLO"},
	{"mx", "Replies and bounces (MX)"},
	{"bulk", "Bulk-sender rules (Gmail, Yahoo)"},
}

// familyIndex returns the place of a family in families, unknown ones
// last.
func familyIndex(name string) int {
	for i, f := range families {
		if f.name == name {
			return i
		}
	}
	return len(families)
}

// WriteText writes the report for a person to read: a summary line, then
// the findings grouped by check family, the families with the worst
// findings first, and within a family errors first, each finding with
// what was found, the fix, the record to publish and the rule's source:
//
//	Preflight of example.com, checked 2026-03-01 12:00:00 UTC
//	1 error, 0 warnings, 1 info, 6 ok
//
//	SPF (RFC 7208)
//	  ERROR    spf.not-authorized  example.com
//	           found   192.0.2.9 gets softfail (matched ~all)
//	           fix     authorise the sending addresses in the SPF record
//	           record  example.com. IN TXT "v=spf1 ip4:192.0.2.1 ip4:192.0.2.9 ~all"
//	           source  RFC 7208 §2.6, §5.6
func (r *Report) WriteText(w io.Writer) error {
	if r == nil {
		_, err := io.WriteString(w, "no report\n")
		return err
	}
	bw := bufio.NewWriter(w)
	counts := [Error + 1]int{}
	width := 0
	groups := map[string][]Finding{}
	for _, f := range r.Findings {
		if f.Severity >= OK && f.Severity <= Error {
			counts[f.Severity]++
		}
		width = max(width, len(f.Check))
		fam := family(f.Check)
		groups[fam] = append(groups[fam], f)
	}
	fmt.Fprintf(bw, "Preflight of %s, checked %s\n", r.Domain, r.Checked.UTC().Format(time.DateTime+" MST"))
	fmt.Fprintf(bw, "%s, %s, %d info, %d ok\n",
		plural(counts[Error], "error"), plural(counts[Warning], "warning"), counts[Info], counts[OK])

	names := make([]string, 0, len(groups))
	worst := map[string]Severity{}
	for name, fs := range groups {
		names = append(names, name)
		for _, f := range fs {
			worst[name] = max(worst[name], f.Severity)
		}
		slices.SortStableFunc(fs, func(a, b Finding) int { return cmp.Compare(b.Severity, a.Severity) })
	}
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(worst[b], worst[a]), cmp.Compare(familyIndex(a), familyIndex(b)), strings.Compare(a, b))
	})
	const indent = "           " // under the check name: 2 + len("WARNING") + 2
	for _, name := range names {
		title := name
		if i := familyIndex(name); i < len(families) {
			title = families[i].title
		}
		fmt.Fprintf(bw, "\n%s\n", title)
		for _, f := range groups[name] {
			fmt.Fprintf(bw, "  %-7s  %-*s  %s\n", strings.ToUpper(f.Severity.String()), width, f.Check, f.Subject)
			line := func(label, text string) {
				if text != "" {
					fmt.Fprintf(bw, "%s%-6s  %s\n", indent, label, text)
				}
			}
			line("found", f.Found)
			line("fix", f.Fix)
			if f.Record != nil {
				line("record", f.Record.String())
			}
			if f.Severity > OK {
				line("source", f.Source)
			}
		}
	}
	return bw.Flush()
}

// plural returns "1 error" or "2 errors".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
