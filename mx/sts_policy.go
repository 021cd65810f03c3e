package mx

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// STSMode is the mode of an MTA-STS policy (RFC 8461 §5).
type STSMode string

// The three modes.
const (
	// STSEnforce: deliver only to MX hosts matching the policy, over TLS
	// with a certificate valid for the MX host name; otherwise defer.
	STSEnforce STSMode = "enforce"
	// STSTesting: report failures (TLSRPT) but deliver anyway.
	STSTesting STSMode = "testing"
	// STSNone: the domain withdrew its policy.
	STSNone STSMode = "none"
)

// maxSTSMaxAge is the largest max_age RFC 8461 §3.2 allows (about a year).
const maxSTSMaxAge = 31557600

// ErrBadPolicy reports an MTA-STS policy or TXT record that does not parse.
var ErrBadPolicy = errors.New("mx: invalid MTA-STS policy")

// Policy is an MTA-STS policy (RFC 8461 §3.2). A Policy returned by
// LookupSTS is shared with the cache: treat it as read-only.
type Policy struct {
	// Mode is enforce, testing or none: only enforce changes delivery.
	Mode STSMode
	// MX holds the allowed MX host patterns as published, lower case:
	// "mx.example.com" or "*.example.net" (a wildcard stands for exactly
	// one leftmost label).
	MX []string
	// MaxAge is how long the policy may be cached (max_age).
	MaxAge time.Duration
	// ID is the id of the _mta-sts TXT record the policy was fetched
	// under ("" for a policy from ParsePolicy).
	ID string
}

// Match reports whether an MX host name is allowed by the policy's mx
// patterns (RFC 8461 §4.1): an exact match, or a "*." pattern matching
// exactly one more label on the left. Comparison ignores case and a trailing
// dot. Match does not look at Mode: the caller decides what a mismatch means
// (defer in enforce mode). A nil policy matches nothing.
func (p *Policy) Match(host string) bool {
	if p == nil {
		return false
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, pat := range p.MX {
		if suffix, ok := strings.CutPrefix(pat, "*."); ok {
			label, rest, found := strings.Cut(host, ".")
			if found && label != "" && rest == suffix {
				return true
			}
			continue
		}
		if host == pat {
			return true
		}
	}
	return false
}

// ParsePolicy parses the body of an mta-sts.txt policy file (RFC 8461
// §3.2) strictly: "key: value" lines ended by LF or CRLF; version must be
// STSv1; mode enforce, testing or none; max_age a number of seconds up to
// 31557600; at least one mx pattern unless the mode is none; mx patterns in
// A-labels. Unknown keys are ignored. For every key but mx only the first
// occurrence counts. Blank lines are allowed only at the end.
func ParsePolicy(body []byte) (*Policy, error) {
	s := string(body)
	p := &Policy{}
	seen := map[string]bool{}
	lineNo := 0
	trailing := false
	for len(s) > 0 {
		var line string
		line, s, _ = strings.Cut(s, "\n")
		line = strings.TrimSuffix(line, "\r")
		lineNo++
		if line == "" {
			trailing = true
			continue
		}
		if trailing {
			return nil, fmt.Errorf("%w: line %d: blank line inside the policy", ErrBadPolicy, lineNo-1)
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok || !validPolicyKey(key) {
			return nil, fmt.Errorf("%w: line %d: not a key: value line", ErrBadPolicy, lineNo)
		}
		value = strings.Trim(value, " \t")
		first := !seen[key]
		seen[key] = true
		switch key {
		case "version":
			if value != "STSv1" {
				return nil, fmt.Errorf("%w: line %d: version %q", ErrBadPolicy, lineNo, value)
			}
		case "mode":
			// The constants, not value: a substring would keep the whole
			// body alive for as long as the policy is cached.
			var m STSMode
			switch value {
			case string(STSEnforce):
				m = STSEnforce
			case string(STSTesting):
				m = STSTesting
			case string(STSNone):
				m = STSNone
			default:
				return nil, fmt.Errorf("%w: line %d: mode %q", ErrBadPolicy, lineNo, value)
			}
			if first {
				p.Mode = m
			}
		case "max_age":
			n, err := strconv.ParseUint(value, 10, 64)
			if err != nil || len(value) > 10 || n > maxSTSMaxAge {
				return nil, fmt.Errorf("%w: line %d: max_age %q", ErrBadPolicy, lineNo, value)
			}
			if first {
				p.MaxAge = time.Duration(n) * time.Second
			}
		case "mx":
			pat := strings.ToLower(value)
			if !validMXPattern(pat) {
				return nil, fmt.Errorf("%w: line %d: mx %q", ErrBadPolicy, lineNo, value)
			}
			// A copy, for the reason given for the mode.
			p.MX = append(p.MX, strings.Clone(pat))
		}
	}
	for _, k := range []string{"version", "mode", "max_age"} {
		if !seen[k] {
			return nil, fmt.Errorf("%w: no %s", ErrBadPolicy, k)
		}
	}
	if len(p.MX) == 0 && p.Mode != STSNone {
		return nil, fmt.Errorf("%w: no mx in mode %s", ErrBadPolicy, p.Mode)
	}
	return p, nil
}

// validPolicyKey: sts-policy-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT /
// "_" / "-" / ".").
func validPolicyKey(k string) bool {
	if k == "" || len(k) > 32 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '-' && c != '.') {
			return false
		}
	}
	return true
}

// validMXPattern checks a lower-case pattern: an optional "*." and a host
// name of letter-digit-hyphen labels (RFC 8461 §3.2, RFC 5321 Domain).
func validMXPattern(p string) bool {
	p = strings.TrimPrefix(p, "*.")
	if checkLengths(p) != "" {
		return false
	}
	for label := range strings.SplitSeq(p, ".") {
		if label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// parseSTSRecord parses the TXT record of _mta-sts.<domain> (RFC 8461
// §3.1), "v=STSv1; id=20160831085700Z;", and returns its id.
func parseSTSRecord(txt string) (string, error) {
	fields := strings.Split(txt, ";")
	id := ""
	for i, f := range fields {
		f = strings.Trim(f, " \t")
		if f == "" && i == len(fields)-1 && i > 0 {
			break
		}
		k, v, ok := strings.Cut(f, "=")
		k, v = strings.Trim(k, " \t"), strings.Trim(v, " \t")
		if !ok || k == "" {
			return "", fmt.Errorf("%w: TXT record %q: bad field %q", ErrBadPolicy, txt, f)
		}
		if i == 0 {
			if k != "v" || v != "STSv1" {
				return "", fmt.Errorf("%w: TXT record %q: does not start with v=STSv1", ErrBadPolicy, txt)
			}
			continue
		}
		if k == "id" && id == "" {
			if !validSTSID(v) {
				return "", fmt.Errorf("%w: TXT record %q: bad id", ErrBadPolicy, txt)
			}
			id = v
		}
	}
	if id == "" {
		return "", fmt.Errorf("%w: TXT record %q: no id", ErrBadPolicy, txt)
	}
	return id, nil
}

// validSTSID: sts-id-value = 1*32(ALPHA / DIGIT).
func validSTSID(v string) bool {
	if v == "" || len(v) > 32 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// isSTSRecord reports whether a TXT string is meant as an MTA-STS record:
// those that do not begin with "v=STSv1;" are discarded (RFC 8461 §3.1).
func isSTSRecord(txt string) bool {
	rest, ok := strings.CutPrefix(txt, "v=STSv1")
	if !ok {
		return false
	}
	rest = strings.TrimLeft(rest, " \t")
	return strings.HasPrefix(rest, ";")
}
