package preflight

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/mx/mxtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestSeverityText(t *testing.T) {
	for s := OK; s <= Error; s++ {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Severity
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%v: %q → %v, %v", s, b, back, err)
		}
	}
	if _, err := Severity(7).MarshalText(); err == nil {
		t.Error("Severity(7) marshals")
	}
	var s Severity
	if err := s.UnmarshalText([]byte("fatal")); err == nil {
		t.Error(`"fatal" unmarshals`)
	}
	if Severity(7).String() != "Severity(7)" || TLSPolicy(5).String() != "TLSPolicy(5)" || TLSRequired.String() != "required" {
		t.Error("String")
	}
}

// failing returns the report of a setup with several mistakes.
func failing(t *testing.T) *Report {
	cfg := cleanConfig(t)
	z := cleanZone(t, cfg)
	setTXT(z, "_spf.example.com", "v=spf1 ip4:198.51.100.0/24 -all")
	delete(z, "_dmarc.example.com")
	z[rev(t, src6)] = mxtest.Domain{Faults: mxtest.Faults{ServFail: true}}
	return run(t, cfg, z, nil)
}

func TestJSONRoundTrip(t *testing.T) {
	rep := failing(t)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"domain":"example.com"`, `"checked":"2026-03-01T12:00:00Z"`, `"check":"spf.not-authorized"`,
		`"severity":"error"`, `"severity":"ok"`, `"record":{"name":"_dmarc.example.com","type":"TXT","value":"v=DMARC1; p=none; rua=mailto:dmarc@example.com"}`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
	if bytes.Contains(b, []byte(`"fix":""`)) || bytes.Contains(b, []byte(`"record":null`)) {
		t.Errorf("empty fields not omitted:\n%s", b)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Checked.Equal(rep.Checked) || back.Domain != rep.Domain || !reflect.DeepEqual(back.Findings, rep.Findings) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, *rep)
	}
	if back.String() != rep.String() {
		t.Error("text differs after the round trip")
	}
}

func TestReportAccessors(t *testing.T) {
	rep := failing(t)
	if rep.OK() {
		t.Error("OK")
	}
	var errs, warns []string
	for _, f := range rep.Errors() {
		errs = append(errs, f.Check)
	}
	for _, f := range rep.Warnings() {
		warns = append(warns, f.Check)
	}
	if !slices.Equal(errs, []string{"spf.not-authorized", "dmarc.missing", "bulk.dmarc", "bulk.authentication"}) ||
		!slices.Equal(warns, []string{"rdns.unchecked"}) {
		t.Errorf("errors %q, warnings %q", errs, warns)
	}
	var nilRep *Report
	if nilRep.OK() || nilRep.Errors() != nil || nilRep.String() != "no report\n" {
		t.Error("nil report")
	}
	if got := (Finding{Check: "mx.null", Severity: Warning, Subject: "example.com", Found: "null MX"}).String(); got != "warning mx.null example.com: null MX" {
		t.Error(got)
	}
}

func TestCompare(t *testing.T) {
	f := func(check, subject string, sev Severity) Finding {
		return Finding{Check: check, Subject: subject, Severity: sev}
	}
	old := &Report{Findings: []Finding{
		f("spf.ok", "example.com", OK),
		f("dkim.missing", "a._domainkey.example.com", Error),
		f("dmarc.missing", "_dmarc.example.com", Warning),
		f("rdns.ehlo-literal", "192.0.2.1", Warning),
		f("dmarc.policy-none", "_dmarc.example.com", Info),
	}}
	new := &Report{Findings: []Finding{
		f("spf.not-authorized", "example.com", Error),        // new
		f("dkim.missing", "a._domainkey.example.com", Error), // still there
		f("dkim.missing", "b._domainkey.example.com", Error), // another subject
		f("dmarc.missing", "_dmarc.example.com", Error),      // worse
		f("rdns.ehlo-literal", "192.0.2.1", Warning),         // same
		f("dmarc.policy-none", "_dmarc.example.com", Info),   // info: never
		f("mx.unchecked", "example.com", Warning),            // new
	}}
	var got []string
	for _, x := range Compare(old, new) {
		got = append(got, x.Check+" "+x.Subject)
	}
	want := []string{"spf.not-authorized example.com", "dkim.missing b._domainkey.example.com", "dmarc.missing _dmarc.example.com", "mx.unchecked example.com"}
	if !slices.Equal(got, want) {
		t.Errorf("Compare = %q, want %q", got, want)
	}
	if n := len(Compare(nil, new)); n != 6 {
		t.Errorf("Compare(nil, new): %d findings", n)
	}
	if Compare(old, nil) != nil || len(Compare(new, new)) != 0 || len(Compare(new, old)) != 0 {
		t.Error("Compare")
	}

	// Two real reports: the failing one has regressions against the clean
	// one, not the other way round.
	cfg := cleanConfig(t)
	clean := run(t, cfg, cleanZone(t, cfg), nil)
	bad := failing(t)
	if r := Compare(clean, bad); len(r) != 5 {
		t.Errorf("clean → failing: %v", r)
	}
	if r := Compare(bad, clean); len(r) != 0 {
		t.Errorf("failing → clean: %v", r)
	}
}

func TestRecordString(t *testing.T) {
	long := strings.Repeat("a", 300)
	tests := map[Record]string{
		{Name: "example.com", Type: "TXT", Value: "v=spf1 -all"}:   `example.com. IN TXT "v=spf1 -all"`,
		{Name: "x.example", Type: "TXT", Value: `say "hi" \o/`}:    `x.example. IN TXT "say \"hi\" \\o/"`,
		{Name: "s._domainkey.example", Type: "TXT", Value: long}:   `s._domainkey.example. IN TXT "` + long[:255] + `" "` + long[255:] + `"`,
		{Name: "1.2.0.192.in-addr.arpa", Type: "PTR", Value: "m."}: `1.2.0.192.in-addr.arpa. IN PTR m.`,
	}
	for r, want := range tests {
		if got := r.String(); got != want {
			t.Errorf("%+v: %s, want %s", r, got, want)
		}
	}
}

// TestWriteText compares the text of a fixed report with a golden file,
// and checks its layout on real reports.
func TestWriteText(t *testing.T) {
	rep := &Report{Domain: "example.com", Checked: checkedAt, Findings: []Finding{
		{Check: "config.no-sources", Severity: Info, Subject: "example.com", Found: "no sending addresses given", Fix: "list them", Source: "preflight"},
		{Check: "spf.ok", Severity: OK, Subject: "example.com", Found: `"v=spf1 -all"`, Source: "RFC 7208"},
		{Check: "dkim.mismatch", Severity: Error, Subject: "s._domainkey.example.com", Found: "another key", Fix: "publish the key's record",
			Record: &Record{Name: "s._domainkey.example.com", Type: "TXT", Value: "v=DKIM1; k=ed25519; p=AAAA"}, Source: "RFC 6376 §3.6.1"},
		{Check: "dkim.ok", Severity: OK, Subject: "t._domainkey.example.com", Found: "k=rsa, matches"},
		{Check: "dmarc.policy-none", Severity: Info, Subject: "_dmarc.example.com", Found: "p=none", Fix: "move on", Source: "RFC 7489 §6.3"},
		{Check: "rdns.ehlo-mismatch", Severity: Warning, Subject: "192.0.2.1", Found: "EHLO a, PTR b", Fix: "use b", Source: "RFC 5321 §4.1.4"},
		{Check: "rdns.missing", Severity: Error, Subject: "2001:db8::1", Found: "no PTR", Fix: "ask", Source: "RFC 1912 §2.1"},
		{Check: "mx.ok", Severity: OK, Subject: "example.com", Found: "MX mx.example.com"},
	}}
	got := rep.String()
	golden := filepath.Join("testdata", "report.txt")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("text differs from %s (go test -update to rewrite):\n%s", golden, got)
	}

	text := failing(t).String()
	lines := strings.Split(text, "\n")
	if lines[0] != "Preflight of example.com, checked 2026-03-01 12:00:00 UTC" || lines[1] != "4 errors, 1 warning, 0 info, 6 ok" {
		t.Errorf("header:\n%s", text)
	}
	// Families with errors come first, in package order; within a family
	// errors come first.
	var titles []string
	for _, l := range lines {
		if l != "" && l[0] != ' ' {
			titles = append(titles, l)
		}
	}
	if want := []string{"SPF (RFC 7208)", "DMARC (RFC 7489)", "Bulk-sender rules (Gmail, Yahoo)", "Reverse DNS and EHLO", "DKIM (RFC 6376)", "Replies and bounces (MX)"}; !slices.Equal(titles[2:], want) {
		t.Errorf("families %q, want %q", titles[2:], want)
	}
	for _, want := range []string{
		"  ERROR    spf.not-authorized   bounce.example.com\n           found   192.0.2.1 gets fail (matched -all); 2001:db8::1 gets fail (matched -all)\n",
		`           record  bounce.example.com. IN TXT "v=spf1 include:_spf.example.com ip4:192.0.2.1 ip6:2001:db8::1 -all"` + "\n           source  RFC 7208 §2.6, §5.6\n",
		"  WARNING  rdns.unchecked       2001:db8::1\n",
		"  OK       rdns.ok              192.0.2.1\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if i, j := strings.Index(text, "spf.not-authorized   bounce"), strings.Index(text, "spf.ok  "); i < 0 || j < i {
		t.Errorf("errors not first in the SPF family:\n%s", text)
	}
}
