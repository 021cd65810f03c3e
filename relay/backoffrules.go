package relay

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/relay/internal/smtpclient"
)

// BackoffRule turns a reply that a receiver uses to say "slow down" or
// "you are blocked" into an action on the MX host that gave it, beside
// the automatic back-off on 421s, refused connections and 4xx greetings.
// The big providers publish their throttling and reputation replies
// (Yahoo's [TSS04], Gmail's 4.7.28, Microsoft's S3150); retrying into
// them at full speed makes the block last longer.
//
// A rule matches a reply when its Match expression finds the reply as
// one line, "<code> <enhanced code> <text>" ("421 4.7.0 [TSS04] Messages
// from 192.0.2.1 temporarily deferred ..."; the text of a multi-line reply
// joined with spaces), and, when Hosts is set, the host's name matches
// it. It then takes one or more of the actions: Slow or Suspend the host
// for For, and Bounce the recipients that got the reply. Each action
// taken is an EventBackoff, and the hosts under a rule are listed by
// Client.Backoffs (the console's dashboard shows them).
type BackoffRule struct {
	// Name identifies the rule in events, logs and the console:
	// "yahoo-tss04". Required; unique within the rules.
	Name string
	// Match is a regular expression (RE2 syntax, matched case-insensitively)
	// over the reply line. Required.
	Match string
	// Hosts, when set, limits the rule to MX hosts matching it: an exact
	// name, or "*.example.com" for every name below example.com.
	Hosts string

	// Slow, when positive, caps the host at Slow messages a minute over
	// one connection while the rule lasts. A message that would wait
	// more than a few seconds for its turn is deferred instead, so the
	// queue retries it later.
	Slow int
	// Suspend makes no new connection to the host while the rule lasts:
	// its recipients are deferred, with the rule named in the reason.
	Suspend bool
	// Bounce fails the recipients that got the reply for good, even when
	// the reply is temporary: for replies that say retrying will not
	// succeed.
	Bounce bool
	// For is how long Slow or Suspend lasts after the last matching
	// reply. 0 → an hour.
	For time.Duration

	// Source says where the reply text and the advice come from, for the
	// documentation and the console.
	Source string

	re *regexp.Regexp
}

// DefaultBackoffRules returns the rules a Direct transport applies when
// its BackoffRules is nil: the throttling and reputation replies the big
// providers document, mapped to the slow-down they ask for. Extend them
// with append(relay.DefaultBackoffRules(), myRules...), or put your own
// first to override one: the first rule that matches a reply wins.
func DefaultBackoffRules() []BackoffRule {
	return []BackoffRule{
		{
			Name:    "yahoo-permanently-deferred",
			Match:   `\[TSS?0?[39]\]|will be permanently deferred`,
			Suspend: true, Bounce: true, For: 6 * time.Hour,
			Source: "Yahoo Sender Hub, SMTP error codes (TS03, TSS09: retrying will not succeed)",
		},
		{
			Name:    "yahoo-tss04",
			Match:   `\[TSS?04\]`,
			Suspend: true, For: 2 * time.Hour,
			Source: "Yahoo Sender Hub, SMTP error codes (TSS04: unexpected volume or user complaints); KumoMTA's shipped shaping rules",
		},
		{
			Name:  "yahoo-temporarily-deferred",
			Match: `\[TSS?0[1-2]\]|messages from \S+ temporarily deferred`,
			Slow:  1, For: 90 * time.Minute,
			Source: "Yahoo Sender Hub, SMTP error codes (TS01, TS02); KumoMTA's shipped shaping rules",
		},
		{
			Name:  "gmail-rate-limited",
			Match: `^4\d\d 4\.7\.28 `,
			Slow:  60, For: time.Hour,
			Source: "Gmail SMTP errors and codes (421 4.7.28: unusual rate of unsolicited mail, rate limited)",
		},
		{
			Name:  "gmail-try-again-later",
			Match: `^421 4\.7\.0 .*(try again later|unusual rate|rate limited)`,
			Slow:  60, For: 30 * time.Minute,
			Source: "Gmail SMTP errors and codes (421 4.7.0: try again later, closing connection)",
		},
		{
			Name:    "microsoft-blocked",
			Match:   `\(S3150\)|\(S3140\)|part of their network is on our block list`,
			Suspend: true, For: 6 * time.Hour,
			Source: "Microsoft sender support, Outlook.com delivery error codes (S3150, S3140: the address is on the block list)",
		},
		{
			Name:  "microsoft-ip-reputation",
			Match: `4\.7\.650|temporarily rate limited due to IP reputation`,
			Slow:  1, For: 90 * time.Minute,
			Source: "Microsoft sender support, Outlook.com delivery error codes (451 4.7.650); KumoMTA's shipped shaping rules",
		},
		{
			Name:  "microsoft-server-busy",
			Match: `\(S77[0-9]+\)|server busy\. please try again later from`,
			Slow:  1, For: 90 * time.Minute,
			Source: "Microsoft sender support, Outlook.com delivery error codes (451 4.7.500 server busy, S775xx); KumoMTA's shipped shaping rules",
		},
		{
			Name:  "comcast-rate-limited",
			Match: `\bRL0000[0-9]+\b`,
			Slow:  100, For: 2 * time.Hour,
			Source: "Xfinity postmaster, Comcast mail errors (RL000001: rate limited)",
		},
	}
}

// compileBackoffRules checks rules and compiles their expressions.
func compileBackoffRules(rules []BackoffRule) ([]BackoffRule, error) {
	out := make([]BackoffRule, len(rules))
	names := make(map[string]bool, len(rules))
	for i, r := range rules {
		switch {
		case r.Name == "":
			return nil, fmt.Errorf("%w: BackoffRules[%d] has no Name", ErrInvalidConfig, i)
		case names[r.Name]:
			return nil, fmt.Errorf("%w: BackoffRules: two rules named %q", ErrInvalidConfig, r.Name)
		case r.Match == "":
			return nil, fmt.Errorf("%w: back-off rule %q has no Match", ErrInvalidConfig, r.Name)
		case r.Slow < 0 || r.For < 0:
			return nil, fmt.Errorf("%w: back-off rule %q: negative Slow or For", ErrInvalidConfig, r.Name)
		case r.Slow == 0 && !r.Suspend && !r.Bounce:
			return nil, fmt.Errorf("%w: back-off rule %q takes no action: set Slow, Suspend or Bounce", ErrInvalidConfig, r.Name)
		case r.Slow > 0 && r.Suspend:
			return nil, fmt.Errorf("%w: back-off rule %q both slows and suspends: choose one", ErrInvalidConfig, r.Name)
		}
		names[r.Name] = true
		re, err := regexp.Compile("(?i)" + r.Match)
		if err != nil {
			return nil, fmt.Errorf("%w: back-off rule %q: %w", ErrInvalidConfig, r.Name, err)
		}
		r.re = re
		if r.For == 0 {
			r.For = time.Hour
		}
		r.Hosts = strings.ToLower(strings.TrimSuffix(r.Hosts, "."))
		out[i] = r
	}
	return out, nil
}

// matchHost reports whether host matches the pattern: exact, or
// "*.example.com" for names below example.com; "" matches every host.
func matchHost(pattern, host string) bool {
	if pattern == "" || pattern == host {
		return true
	}
	suffix, ok := strings.CutPrefix(pattern, "*")
	return ok && strings.HasPrefix(suffix, ".") && strings.HasSuffix(host, suffix)
}

// replyLine formats a reply for the rules: "421 4.7.0 text".
func replyLine(se *smtpclient.Error) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(se.Code))
	if se.Enhanced != "" {
		b.WriteByte(' ')
		b.WriteString(se.Enhanced)
	}
	b.WriteByte(' ')
	b.WriteString(strings.Join(strings.Fields(se.Message), " "))
	return b.String()
}

// backoffRules returns the compiled rules of t (checked by Validate).
func (t *Direct) backoffRules() []BackoffRule {
	t.rulesOnce.Do(func() {
		rules := t.BackoffRules
		if rules == nil {
			rules = DefaultBackoffRules()
		}
		t.rules, t.rulesErr = compileBackoffRules(rules)
	})
	return t.rules
}

// ruleFor returns the first rule matching the reply err carries from
// host, or nil when err is not a reply or no rule matches.
func (t *Direct) ruleFor(host string, err error) *BackoffRule {
	if err == nil {
		return nil // before se, which escapes: most replies are not errors
	}
	var se *smtpclient.Error
	if !errors.As(err, &se) || se.Code < 400 {
		return nil
	}
	rules := t.backoffRules()
	if len(rules) == 0 {
		return nil
	}
	line := replyLine(se)
	for i := range rules {
		r := &rules[i]
		if matchHost(r.Hosts, host) && r.re.MatchString(line) {
			return r
		}
	}
	return nil
}
