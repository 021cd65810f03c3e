package preflight

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
)

func TestClean(t *testing.T) {
	cfg := cleanConfig(t)
	rep := run(t, cfg, cleanZone(t, cfg), nil)
	if !rep.OK() || len(rep.Errors()) > 0 || len(rep.Warnings()) > 0 {
		t.Fatalf("clean setup has findings:\n%s", problems(rep))
	}
	var got []string
	for _, f := range rep.Findings {
		if f.Severity != OK {
			t.Errorf("unexpected %v", f)
		}
		got = append(got, f.Check+" "+f.Subject)
	}
	want := []string{
		"spf.ok example.com", "spf.ok bounce.example.com",
		"dkim.ok ed._domainkey.example.com", "dkim.ok rsa._domainkey.example.com",
		"dmarc.ok _dmarc.example.com",
		"rdns.ok " + src4, "rdns.ok " + src6,
		"mx.ok example.com", "mx.ok bounce.example.com",
		"bulk.ok example.com",
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings\n got %q\nwant %q", got, want)
	}
	if rep.Domain != "example.com" || !rep.Checked.Equal(checkedAt) {
		t.Errorf("report %q at %v", rep.Domain, rep.Checked)
	}
	if f := find(rep, "spf.ok"); !strings.Contains(f.Found, src4+" passes (ip4:"+src4+")") {
		t.Errorf("spf.ok found %q", f.Found)
	}
	if f := find(rep, "rdns.ok"); f.Found != src4+" → mail.example.com → "+src4+"; EHLO mail.example.com" {
		t.Errorf("rdns.ok found %q", f.Found)
	}
}

// TestFixRecords checks the exact records findings offer.
func TestFixRecords(t *testing.T) {
	ed, _, _, other := testKeys(t)
	cfg := cleanConfig(t)
	z := cleanZone(t, cfg)
	setTXT(z, "_spf.example.com", "v=spf1 ip4:198.51.100.0/24 -all")
	setTXT(z, "example.com", "v=spf1 ip4:"+src4+" ?all")
	otherRecord, _ := dkim.TXTRecord(other.Public())
	setTXT(z, "ed._domainkey.example.com", otherRecord)
	delete(z, "_dmarc.example.com")
	delete(z, rev(t, src4))
	rep := run(t, cfg, z, nil)

	edRecord, _ := dkim.TXTRecord(ed.Public())
	want := map[string]Record{
		"spf.not-authorized bounce.example.com": {Name: "bounce.example.com", Type: "TXT", Value: "v=spf1 include:_spf.example.com ip4:192.0.2.1 ip6:2001:db8::1 -all"},
		// One corrected record fixes both findings of the From domain.
		"spf.all-neutral":                {Name: "example.com", Type: "TXT", Value: "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 ~all"},
		"spf.not-authorized example.com": {Name: "example.com", Type: "TXT", Value: "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 ~all"},
		"dkim.mismatch":                  {Name: "ed._domainkey.example.com", Type: "TXT", Value: edRecord},
		"dmarc.missing":                  {Name: "_dmarc.example.com", Type: "TXT", Value: "v=DMARC1; p=none; rua=mailto:dmarc@example.com"},
		"bulk.dmarc":                     {Name: "_dmarc.example.com", Type: "TXT", Value: "v=DMARC1; p=none; rua=mailto:dmarc@example.com"},
		"rdns.missing":                   {Name: "1.2.0.192.in-addr.arpa", Type: "PTR", Value: "mail.example.com."},
	}
	for check, rec := range want {
		check, subject, _ := strings.Cut(check, " ")
		f := find(rep, check)
		if subject != "" {
			f = findAt(rep, check, subject)
		}
		switch {
		case f == nil:
			t.Errorf("no %s finding:\n%s", check, problems(rep))
		case f.Record == nil || *f.Record != rec:
			t.Errorf("%s: record %+v, want %+v", check, f.Record, rec)
		}
	}
	if f := findAt(rep, "spf.not-authorized", "bounce.example.com"); f == nil || f.Severity != Error ||
		f.Found != "192.0.2.1 gets fail (matched -all); 2001:db8::1 gets fail (matched -all)" {
		t.Errorf("envelope domain: %+v", f)
	}
	// The From domain lacks the IPv6 source; mail leaves from the bounce
	// domain, so it is a warning.
	if f := findAt(rep, "spf.not-authorized", "example.com"); f == nil || f.Severity != Warning ||
		!strings.HasPrefix(f.Found, "2001:db8::1 gets neutral (matched ?all); receivers check SPF on the envelope domain") {
		t.Errorf("From domain: %+v", f)
	}
}

// TestAllPassFix: the record that replaces +all keeps the sources it let
// in.
func TestAllPassFix(t *testing.T) {
	cfg := cleanConfig(t)
	z := cleanZone(t, cfg)
	setTXT(z, "example.com", "v=spf1 ip4:"+src4+" +all")
	rep := run(t, cfg, z, nil)
	f := find(rep, "spf.all-pass")
	if f == nil || f.Severity != Error || f.Record == nil || f.Record.Value != "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 ~all" ||
		f.Found != "every address passes (matched +all): anyone may send as the domain" {
		t.Fatalf("%+v %+v", f, f.Record)
	}
}

func TestMissingSPFRecord(t *testing.T) {
	cfg := cleanConfig(t)
	cfg.BounceDomain = ""
	z := cleanZone(t, cfg)
	setTXT(z, "example.com", "google-site-verification=abc")
	rep := run(t, cfg, z, nil)
	f := find(rep, "spf.missing")
	if f == nil || f.Severity != Error || *f.Record != (Record{Name: "example.com", Type: "TXT", Value: "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 ~all"}) {
		t.Fatalf("%+v", f)
	}
}

func TestDMARCOrgFallback(t *testing.T) {
	cfg := cleanConfig(t)
	cfg.Domain = "news.example.com"
	cfg.Keys = signingKeys(t, "news.example.com")
	z := cleanZone(t, cfg)
	z["news.example.com"] = mxtest.Domain{
		MX:  []mx.MX{{Host: "mx.example.com", Pref: 10}},
		TXT: []string{"v=spf1 include:_spf.example.com -all"},
	}
	setTXT(z, "_dmarc.example.com", "v=DMARC1; p=reject; sp=quarantine; adkim=r; rua=mailto:dmarc@example.com")
	rep := run(t, cfg, z, nil)
	if !rep.OK() {
		t.Fatalf("findings:\n%s", problems(rep))
	}
	f := find(rep, "dmarc.org-fallback")
	if f == nil || f.Severity != Info || f.Subject != "_dmarc.news.example.com" || !strings.Contains(f.Found, "_dmarc.example.com applies (sp=quarantine)") {
		t.Fatalf("%+v", f)
	}
	if f := find(rep, "dmarc.ok"); f == nil || f.Subject != "_dmarc.example.com" {
		t.Fatalf("%+v", f)
	}

	// p=none at the organizational domain, no sp=: the subdomain gets
	// p=none.
	setTXT(z, "_dmarc.example.com", "v=DMARC1; p=none; rua=mailto:dmarc@example.com")
	rep = run(t, cfg, z, nil)
	if f := find(rep, "dmarc.policy-none"); f == nil || f.Subject != "_dmarc.example.com" {
		t.Fatalf("%+v\n%s", f, problems(rep))
	}

	// A failure at the first name is not a missing record: no fallback.
	d := z["_dmarc.example.com"]
	z["_dmarc.news.example.com"] = mxtest.Domain{Faults: mxtest.Faults{ServFail: true}}
	z["_dmarc.example.com"] = d
	rep = run(t, cfg, z, nil)
	if f := find(rep, "dmarc.unchecked"); f == nil || f.Subject != "_dmarc.news.example.com" || find(rep, "dmarc.org-fallback") != nil {
		t.Fatalf("%+v\n%s", f, problems(rep))
	}

	// Neither: the record to publish is the From domain's.
	delete(z, "_dmarc.news.example.com")
	delete(z, "_dmarc.example.com")
	rep = run(t, cfg, z, nil)
	f = find(rep, "dmarc.missing")
	if f == nil || f.Record.Name != "_dmarc.news.example.com" || f.Record.Value != "v=DMARC1; p=none; rua=mailto:dmarc@news.example.com" ||
		!strings.Contains(f.Found, "nor at _dmarc.example.com") {
		t.Fatalf("%+v", f)
	}
}

func TestOrgDomain(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":            "example.com",
		"a.b.example.com":        "example.com",
		"mail.example.co.uk":     "example.co.uk",
		"example.test":           "example.test",
		"com":                    "com",
		"x.y.example.github.io":  "example.github.io",
		"bounce.esp.example.net": "example.net",
	} {
		if got := orgDomain(in); got != want {
			t.Errorf("orgDomain(%q) = %q, want %q", in, got, want)
		}
	}
	if !aligned("bounce.example.com", "example.com", 'r') || aligned("bounce.example.com", "example.com", 's') ||
		!aligned("example.com", "example.com", 's') || aligned("example.net", "example.com", 'r') {
		t.Error("aligned")
	}
}

func TestDKIMKeyMismatch(t *testing.T) {
	ed, rs, _, other := testKeys(t)
	cfg := cleanConfig(t)
	z := cleanZone(t, cfg)
	// The RSA key published as bare PKCS #1 is accepted.
	pkcs1 := "v=DKIM1; k=rsa; p=" + b64(x509PKCS1(rs))
	setTXT(z, "rsa._domainkey.example.com", pkcs1)
	// The Ed25519 record holds another key.
	otherRecord, _ := dkim.TXTRecord(other.Public())
	setTXT(z, "ed._domainkey.example.com", otherRecord)
	rep := run(t, cfg, z, nil)
	var okSubjects []string
	for _, f := range rep.Findings {
		if f.Check == "dkim.ok" {
			okSubjects = append(okSubjects, f.Subject)
		}
	}
	if !slices.Equal(okSubjects, []string{"rsa._domainkey.example.com"}) {
		t.Errorf("dkim.ok for %q\n%s", okSubjects, problems(rep))
	}
	f := find(rep, "dkim.mismatch")
	if f == nil || f.Subject != "ed._domainkey.example.com" || !strings.Contains(f.Found, "publishes an Ed25519 key, not the Ed25519 signing key") {
		t.Fatalf("%+v", f)
	}
	want, _ := dkim.TXTRecord(ed.Public())
	if f.Record.Value != want {
		t.Errorf("record %q, want %q", f.Record.Value, want)
	}

	// An RSA record that is not the signing key says what it holds.
	_, _, weakKey, _ := testKeys(t)
	weakRecord, _ := dkim.TXTRecord(weakKey.Public())
	setTXT(z, "rsa._domainkey.example.com", weakRecord)
	rep = run(t, cfg, z, nil)
	for _, f := range rep.Findings {
		if f.Check == "dkim.mismatch" && f.Subject == "rsa._domainkey.example.com" {
			if !strings.Contains(f.Found, "publishes an RSA key of 1024 bits, not the RSA signing key (2048 bits)") {
				t.Errorf("found %q", f.Found)
			}
			return
		}
	}
	t.Fatalf("no RSA mismatch:\n%s", problems(rep))
}

func TestInvalidConfig(t *testing.T) {
	r := &mx.Resolver{Servers: []string{"127.0.0.1:1"}}
	ed, _, _, _ := testKeys(t)
	tests := map[string]*Config{
		"nil":             nil,
		"no resolver":     {Domain: "example.com"},
		"no domain":       {Resolver: r},
		"bad domain":      {Resolver: r, Domain: "exa mple.com"},
		"one label":       {Resolver: r, Domain: "localhost"},
		"bad bounce":      {Resolver: r, Domain: "example.com", BounceDomain: "-x-.example.com"},
		"source no addr":  {Resolver: r, Domain: "example.com", Sources: []Source{{Hostname: "mail.example.com"}}},
		"hostname crlf":   {Resolver: r, Domain: "example.com", Hostname: "mail.example.com\r\nX"},
		"key no selector": {Resolver: r, Domain: "example.com", Keys: []dkim.SigningKey{{Public: ed.Public()}}},
		"key no public":   {Resolver: r, Domain: "example.com", Keys: []dkim.SigningKey{{Selector: "s"}}},
		"tls":             {Resolver: r, Domain: "example.com", TLS: TLSPolicy(9)},
	}
	for name, cfg := range tests {
		rep, err := Check(context.Background(), cfg)
		if !errors.Is(err, ErrInvalidConfig) || rep != nil {
			t.Errorf("%s: %v, %v", name, rep, err)
		}
	}
}

func TestContextCanceled(t *testing.T) {
	cfg := cleanConfig(t)
	srv := mxtest.NewServer(cleanZone(t, cfg))
	defer srv.Close()
	cfg.Resolver = srv.Resolver()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Check(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func TestIDNDomain(t *testing.T) {
	cfg := cleanConfig(t)
	cfg.Domain = "bücher.example"
	cfg.BounceDomain = ""
	cfg.Keys = signingKeys(t, "xn--bcher-kva.example")
	cfg.Sources = []Source{{Addr: netip.MustParseAddr(src4), Hostname: "mail.example.com"}}
	z := cleanZone(t, cfg)
	z["xn--bcher-kva.example"] = mxtest.Domain{MX: []mx.MX{{Host: "mx.example.com", Pref: 10}}, TXT: []string{"v=spf1 ip4:" + src4 + " -all"}}
	z["_dmarc.xn--bcher-kva.example"] = mxtest.Domain{TXT: []string{"v=DMARC1; p=quarantine; rua=mailto:d@xn--bcher-kva.example"}}
	rep := run(t, cfg, z, nil)
	if !rep.OK() || rep.Domain != "xn--bcher-kva.example" {
		t.Fatalf("%s\n%s", rep.Domain, problems(rep))
	}
}
