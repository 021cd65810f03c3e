package preflight

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

// FuzzParseSPF parses and, when the record parses, expands every
// domain-spec of it: neither may panic, and an expansion fits in 253
// octets.
func FuzzParseSPF(f *testing.F) {
	for _, s := range []string{
		"v=spf1 -all",
		"v=spf1 a mx/24 a:x.example.com/24//64 ptr ip4:192.0.2.0/24 ip6:2001:db8::/32 ?all",
		"v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} include:_spf.example.com ~all exp=explain._spf.%{d} foo=bar",
		"v=spf1 redirect=%{d2}.example.net",
		"v=spf1 exists:%{S}%{O}%{H}%{V}%{I10r}.x.example",
		"v=spf1 include:%%%_%-.example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rec, err := parseSPF(s)
		if err != nil {
			return
		}
		e := &spfEval{ip: netip.MustParseAddr("2001:db8::1"), local: "postmaster", sender: "example.com", helo: "mail.example.com", probe: true}
		terms := append([]spfTerm(nil), rec.terms...)
		if rec.redirect != nil {
			terms = append(terms, *rec.redirect)
		}
		for _, term := range terms {
			if term.domain == nil || hasMacro(term.domain, 'p') {
				continue
			}
			name, res := e.target(context.Background(), &term, "example.com")
			if res == "" && len(name) > 253 && strings.Contains(name, ".") {
				t.Errorf("%q expands to %d octets", term.text, len(name))
			}
		}
	})
}

// hasMacro reports whether parts use a macro letter (%{p} needs DNS).
func hasMacro(parts []macroPart, letter byte) bool {
	for _, p := range parts {
		if p.letter == letter {
			return true
		}
	}
	return false
}

func FuzzParseDKIMRecord(f *testing.F) {
	for _, s := range []string{
		"v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
		"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
		"k=rsa; t=y:s; h=sha256; s=email; p=",
		"v=DKIM1; p= MIIB IjAN ;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rec, err := parseDKIMRecord(s)
		if err != nil {
			return
		}
		_ = describeKey(rec)
	})
}

func FuzzParseDMARC(f *testing.F) {
	for _, s := range []string{
		"v=DMARC1; p=none; rua=mailto:dmarc@example.com",
		"v=DMARC1; p=reject; sp=quarantine; adkim=s; aspf=r; pct=50; rua=mailto:a@example.com!10m,mailto:b@example.net",
		"v = DMARC1 ; p = none ;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !isDMARC(s) {
			return // discarded before parsing
		}
		rec, err := parseDMARC(s)
		if err != nil {
			return
		}
		if rec.policy == "" || rec.pct < 0 || rec.pct > 100 {
			t.Errorf("%q: %+v", s, rec)
		}
	})
}
