package bounce

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Class is what [Classify] makes of a failure.
type Class struct {
	// Category says what kind of failure it is.
	Category Category

	// Permanent reports a permanent failure: an enhanced status code of
	// class 5, or, without one, a 5xx reply code. Anything else, an unknown
	// or zero code included, is temporary, so that an unclassifiable
	// failure is retried rather than given up.
	Permanent bool

	// Suppress reports that the address itself is bad and should go on the
	// suppression list: it is true exactly when the failure is permanent and
	// the category is InvalidRecipient or UnknownDomain.
	Suppress bool

	// Rule names the rule that decided, for logs and tests; "" when none
	// did and the category is the default, Other.
	Rule string
}

// String returns the class in the form
// "invalid-recipient permanent suppress rule=bad-mailbox-status", for logs.
func (c Class) String() string {
	var b strings.Builder
	b.WriteString(c.Category.String())
	if c.Permanent {
		b.WriteString(" permanent")
	} else {
		b.WriteString(" temporary")
	}
	if c.Suppress {
		b.WriteString(" suppress")
	}
	if c.Rule != "" {
		b.WriteString(" rule=")
		b.WriteString(c.Rule)
	}
	return b.String()
}

// Classify classifies a failure from its reply code (0 if unknown), its
// RFC 3463 enhanced status code ("5.1.1", or "" if none) and its text.
//
// It takes a synchronous SMTP reply (code, enhanced code, text) as well as
// an asynchronous bounce: a DSN's Status as enhanced and its
// Diagnostic-Code as text ("smtp; 550-5.1.1 The email account ..."), or
// the words of a text-only bounce. When code or enhanced is missing it is
// read from the text: a leading "550 5.1.1", after a diagnostic type such
// as "smtp;", or failing that the first such pair anywhere in it. An
// enhanced code that is not of the form class.subject.detail counts as
// missing. A text that starts with an X.7.x code keeps that security or
// policy subject even when enhanced names another, as a DSN's Status may
// ("5.1.1" over "smtp; 550 5.7.1 ... Access denied").
//
// Permanent follows the enhanced code's class, else the reply code's, else
// it is false; Suppress is true only for a permanent InvalidRecipient or
// UnknownDomain. The rules themselves are in rules.go; the package
// documentation lists the guarantees they keep.
func Classify(code int, enhanced, text string) Class {
	st := parseStatus(enhanced)
	if code < 200 || code > 599 {
		code = 0
	}
	if code == 0 || !st.ok {
		c, s := fromText(text)
		if code == 0 {
			code = c
		}
		if !st.ok {
			st = s
		}
	}

	// A Diagnostic-Code that starts with a security or policy code
	// ("smtp; 550 5.7.1 ... Access denied") keeps its subject even when the
	// reporting MTA put another in the DSN's Status (5.1.1): a policy
	// refusal is never taken for a missing mailbox. The class, and so
	// Permanent, stays the caller's.
	if st.ok && st.subject != 7 {
		if _, ts, _ := leading(text); ts.ok && ts.subject == 7 {
			st.subject, st.detail = ts.subject, ts.detail
		}
	}

	var cl Class
	if st.ok {
		cl.Permanent = st.class == 5
	} else {
		cl.Permanent = code/100 == 5
	}

	table, index := compiled()
	var hits ruleSet
	scanned := false
	for i := range table {
		r := &table[i]
		if !r.matchStatus(st) || !r.matchCode(code) {
			continue
		}
		if r.hasText {
			if !scanned {
				hits, scanned = index.scan(text), true
			}
			if !hits.has(i) {
				continue
			}
		}
		cl.Category, cl.Rule = r.cat, r.name
		break
	}
	cl.Suppress = cl.Permanent && (cl.Category == InvalidRecipient || cl.Category == UnknownDomain)
	return cl
}

// rule is one line of the table in rules.go.
type rule struct {
	name   string
	status []string // patterns, any of which must match; none: any status
	codes  []int    // reply codes, one of which must match; none: any code
	text   []string // phrases, one of which must occur; none: any text
	cat    Category

	pats    []statusPattern // compiled from status
	hasText bool
}

// statusPattern matches a subject and a range of details, or no status.
type statusPattern struct {
	none            bool
	subject, lo, hi int
	anyDetail       bool
}

func (r *rule) matchStatus(st status) bool {
	if len(r.pats) == 0 {
		return true
	}
	for _, p := range r.pats {
		switch {
		case p.none:
			if !st.ok {
				return true
			}
		case !st.ok || st.subject != p.subject:
		case p.anyDetail || (p.lo <= st.detail && st.detail <= p.hi):
			return true
		}
	}
	return false
}

func (r *rule) matchCode(code int) bool {
	return len(r.codes) == 0 || slices.Contains(r.codes, code)
}

// parsePattern reads "none", "X.7.*", "X.1.1" or "X.7.20-27".
func parsePattern(s string) (statusPattern, error) {
	if s == "none" {
		return statusPattern{none: true}, nil
	}
	bad := fmt.Errorf("bounce: bad status pattern %q", s)
	rest, ok := strings.CutPrefix(s, "X.")
	if !ok {
		return statusPattern{}, bad
	}
	subj, det, ok := strings.Cut(rest, ".")
	if !ok {
		return statusPattern{}, bad
	}
	var p statusPattern
	var err error
	if p.subject, err = strconv.Atoi(subj); err != nil {
		return statusPattern{}, bad
	}
	if det == "*" {
		p.anyDetail = true
		return p, nil
	}
	lo, hi, isRange := strings.Cut(det, "-")
	if p.lo, err = strconv.Atoi(lo); err != nil {
		return statusPattern{}, bad
	}
	p.hi = p.lo
	if isRange {
		if p.hi, err = strconv.Atoi(hi); err != nil || p.hi < p.lo {
			return statusPattern{}, bad
		}
	}
	return p, nil
}

// compile checks the table and builds the phrase automaton. The results
// are set once, at package initialisation, and never changed.
func compile(rs []rule) ([]rule, *matcher, error) {
	if len(rs) > maxRules {
		return nil, nil, fmt.Errorf("bounce: %d rules, at most %d", len(rs), maxRules)
	}
	out := make([]rule, len(rs))
	var phrases []string
	var owners []int
	names := map[string]bool{}
	for i, r := range rs {
		if r.name == "" || names[r.name] {
			return nil, nil, fmt.Errorf("bounce: rule %d: missing or repeated name %q", i, r.name)
		}
		names[r.name] = true
		if r.cat < 0 || r.cat >= numCategories {
			return nil, nil, fmt.Errorf("bounce: rule %q: bad category", r.name)
		}
		for _, s := range r.status {
			p, err := parsePattern(s)
			if err != nil {
				return nil, nil, fmt.Errorf("%w in rule %q", err, r.name)
			}
			r.pats = append(r.pats, p)
		}
		for _, p := range r.text {
			phrases = append(phrases, p)
			owners = append(owners, i)
		}
		r.hasText = len(r.text) > 0
		out[i] = r
	}
	m, err := newMatcher(phrases, owners)
	if err != nil {
		return nil, nil, err
	}
	return out, m, nil
}

// compiled is the table and its automaton, built on first use (some 280
// KiB of transitions, which a program that never classifies need not
// pay for) and never changed after. The table is static and tested, so the
// panic cannot happen in a released build.
var compiled = sync.OnceValues(func() ([]rule, *matcher) {
	t, m, err := compile(rules)
	if err != nil {
		panic(err)
	}
	return t, m
})
