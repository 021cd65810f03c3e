package preflight

import (
	"testing"

	"github.com/mxrelay/mxrelay/dkim"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
)

// mistake is a setup with something wrong: the config and zone are the
// clean ones, changed.
type mistake struct {
	name string
	cfg  func(c *Config)
	zone func(z mxtest.Zone)
	srv  func(s *mxtest.Server)
	// want holds every check expected at Warning or Error (no other may
	// appear) and Info checks that must appear.
	want map[string]Severity
}

func TestMistakes(t *testing.T) {
	ed, _, weakKey, other := testKeys(t)
	spfFrom := func(rec string) func(z mxtest.Zone) {
		return func(z mxtest.Zone) { setTXT(z, "example.com", "google-site-verification=abc", rec) }
	}
	dkimAt := func(txt ...string) func(z mxtest.Zone) {
		return func(z mxtest.Zone) { setTXT(z, "ed._domainkey.example.com", txt...) }
	}
	edRecord, _ := dkim.TXTRecord(ed.Public())
	otherRecord, _ := dkim.TXTRecord(other.Public())
	dmarcRec := func(txt ...string) func(z mxtest.Zone) {
		return func(z mxtest.Zone) { setTXT(z, "_dmarc.example.com", txt...) }
	}
	ehlo := func(name string) func(c *Config) { return func(c *Config) { c.Sources[0].Hostname = name } }
	// A second organization's domain with its own SPF and MX, as an ESP's.
	espDomain := func(z mxtest.Zone) {
		z["bounce.example.net"] = mxtest.Domain{
			MX:  []mx.MX{{Host: "mx.example.com", Pref: 10}},
			TXT: []string{"v=spf1 ip4:" + src4 + " ip6:" + src6 + " -all"},
		}
	}
	keysAt := func(domain string) func(c *Config) {
		return func(c *Config) {
			for i := range c.Keys {
				c.Keys[i].Domain = domain
			}
		}
	}

	tests := []mistake{
		// SPF
		{name: "spf missing on the From domain", zone: func(z mxtest.Zone) { setTXT(z, "example.com", "google-site-verification=abc") },
			want: map[string]Severity{"spf.missing": Warning}},
		{name: "spf missing on the From and envelope domain",
			cfg:  func(c *Config) { c.BounceDomain = "" },
			zone: func(z mxtest.Zone) { setTXT(z, "example.com") },
			want: map[string]Severity{"spf.missing": Error, "bulk.authentication": Error, "dmarc.spf-unaligned": Info}},
		{name: "spf multiple on the envelope domain",
			zone: func(z mxtest.Zone) {
				setTXT(z, "bounce.example.com", "v=spf1 include:_spf.example.com -all", "v=spf1 ip4:"+src4+" -all")
			},
			want: map[string]Severity{"spf.multiple": Error, "bulk.authentication": Error, "dmarc.spf-unaligned": Info}},
		{name: "spf syntax", zone: spfFrom("v=spf1 ip4:192.0.2.300 ~all"),
			want: map[string]Severity{"spf.syntax": Error}},
		{name: "spf +all", zone: spfFrom("v=spf1 +all"),
			want: map[string]Severity{"spf.all-pass": Error}},
		{name: "spf include ending in +all", zone: func(z mxtest.Zone) {
			setTXT(z, "example.com", "v=spf1 include:open.example.com -all")
			z["open.example.com"] = mxtest.Domain{TXT: []string{"v=spf1 all"}}
		}, want: map[string]Severity{"spf.all-pass": Error}},
		{name: "spf ?all", zone: spfFrom("v=spf1 ip4:" + src4 + " ip6:" + src6 + " ?all"),
			want: map[string]Severity{"spf.all-neutral": Warning}},
		{name: "spf without all", zone: spfFrom("v=spf1 ip4:" + src4 + " ip6:" + src6),
			want: map[string]Severity{"spf.all-missing": Info}},
		{name: "spf source not authorised on the envelope domain",
			zone: func(z mxtest.Zone) { setTXT(z, "_spf.example.com", "v=spf1 ip4:198.51.100.0/24 -all") },
			want: map[string]Severity{"spf.not-authorized": Error, "bulk.authentication": Error, "dmarc.spf-unaligned": Info}},
		{name: "spf source not authorised on the From domain only", zone: spfFrom("v=spf1 mx -all"),
			want: map[string]Severity{"spf.not-authorized": Warning}},
		{name: "spf lookup limit", zone: func(z mxtest.Zone) {
			for i := 1; i <= 11; i++ {
				next := "include:l" + twoDigits(i+1) + ".example.com"
				if i == 11 {
					next = "ip4:" + src4 + " ip6:" + src6
				}
				z["l"+twoDigits(i)+".example.com"] = mxtest.Domain{TXT: []string{"v=spf1 " + next + " -all"}}
			}
			setTXT(z, "example.com", "v=spf1 include:l"+twoDigits(1)+".example.com -all")
		}, want: map[string]Severity{"spf.lookup-limit": Error}},
		{name: "spf void limit", zone: spfFrom("v=spf1 a:nx1.example.com a:nx2.example.com a:nx3.example.com ip4:" + src4 + " ip6:" + src6 + " ~all"),
			want: map[string]Severity{"spf.void-limit": Error}},
		{name: "spf void limit past the sources", zone: spfFrom("v=spf1 ip4:" + src4 + " ip6:" + src6 + " a:nx1.example.com a:nx2.example.com a:nx3.example.com ~all"),
			want: map[string]Severity{"spf.void-limit": Warning}},
		{name: "spf include of a domain without spf", zone: spfFrom("v=spf1 include:nospf.example.net ip4:" + src4 + " ip6:" + src6 + " ~all"),
			want: map[string]Severity{"spf.include-missing": Error}},
		{name: "spf ptr", zone: spfFrom("v=spf1 ptr -all"),
			want: map[string]Severity{"spf.ptr": Warning}},
		{name: "spf servfail", zone: func(z mxtest.Zone) {
			d := z["bounce.example.com"]
			d.Faults = mxtest.Faults{ServFail: true, Types: []string{"TXT"}}
			z["bounce.example.com"] = d
		}, want: map[string]Severity{"spf.unchecked": Warning}},

		// DKIM
		{name: "dkim missing", zone: func(z mxtest.Zone) { delete(z, "ed._domainkey.example.com") },
			want: map[string]Severity{"dkim.missing": Error}},
		{name: "dkim other key", zone: dkimAt(otherRecord), want: map[string]Severity{"dkim.mismatch": Error}},
		{name: "dkim rsa record for an ed25519 key", zone: func(z mxtest.Zone) {
			z["ed._domainkey.example.com"] = z["rsa._domainkey.example.com"]
		}, want: map[string]Severity{"dkim.mismatch": Error}},
		{name: "dkim revoked", zone: dkimAt("v=DKIM1; k=ed25519; p="), want: map[string]Severity{"dkim.revoked": Error}},
		{name: "dkim syntax", zone: dkimAt("v=DKIM1; k=ed25519; p=!!!"), want: map[string]Severity{"dkim.syntax": Error}},
		{name: "dkim unknown key type", zone: dkimAt("v=DKIM1; k=dsa; p=AAAA"), want: map[string]Severity{"dkim.syntax": Error}},
		{name: "dkim multiple", zone: dkimAt(edRecord, otherRecord), want: map[string]Severity{"dkim.multiple": Error}},
		{name: "dkim testing", zone: dkimAt(edRecord + "; t=y"), want: map[string]Severity{"dkim.testing": Warning}},
		{name: "dkim sha1 only", zone: dkimAt(edRecord + "; h=sha1"), want: map[string]Severity{"dkim.restricted": Error}},
		{name: "dkim unsigned", cfg: func(c *Config) { c.Keys = nil },
			want: map[string]Severity{"dkim.unsigned": Error, "bulk.authentication": Error}},
		{name: "dkim weak rsa key", cfg: func(c *Config) {
			c.Keys = append(c.Keys, dkim.SigningKey{Domain: "example.com", Selector: "old", Public: weakKey.Public()})
		}, want: map[string]Severity{"dkim.weak-key": Warning}},
		{name: "dkim servfail", zone: func(z mxtest.Zone) {
			d := z["ed._domainkey.example.com"]
			d.ServFail = true
			z["ed._domainkey.example.com"] = d
		}, want: map[string]Severity{"dkim.unchecked": Warning}},

		// DMARC
		{name: "dmarc missing, list mail", zone: func(z mxtest.Zone) { delete(z, "_dmarc.example.com") },
			want: map[string]Severity{"dmarc.missing": Error, "bulk.dmarc": Error}},
		{name: "dmarc missing", cfg: func(c *Config) { c.ListMail = false }, zone: func(z mxtest.Zone) { delete(z, "_dmarc.example.com") },
			want: map[string]Severity{"dmarc.missing": Warning}},
		{name: "dmarc syntax", zone: dmarcRec("v=DMARC1; p=maybe"), want: map[string]Severity{"dmarc.syntax": Error, "bulk.dmarc": Error}},
		{name: "dmarc without p", zone: dmarcRec("v=DMARC1; rua=mailto:d@example.com"), want: map[string]Severity{"dmarc.syntax": Error, "bulk.dmarc": Error}},
		{name: "dmarc multiple", zone: dmarcRec("v=DMARC1; p=none", "v=DMARC1; p=reject"),
			want: map[string]Severity{"dmarc.multiple": Error, "bulk.dmarc": Error}},
		{name: "dmarc p=none", zone: dmarcRec("v=DMARC1; p=none; pct=50"),
			want: map[string]Severity{"dmarc.policy-none": Info, "dmarc.pct": Info, "dmarc.no-rua": Info}},
		{name: "dmarc strict alignment fails",
			cfg:  keysAt("dkim.example.com"),
			zone: dmarcRec("v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:dmarc@example.com"),
			want: map[string]Severity{"dmarc.unaligned": Error, "bulk.alignment": Error}},
		{name: "dmarc nothing aligned",
			cfg:  func(c *Config) { keysAt("example.net")(c); c.BounceDomain = "bounce.example.net" },
			zone: espDomain,
			want: map[string]Severity{"dmarc.unaligned": Error, "bulk.alignment": Error}},
		{name: "dmarc aligned key does not verify, envelope elsewhere",
			cfg: func(c *Config) { c.BounceDomain = "bounce.example.net" },
			zone: func(z mxtest.Zone) {
				espDomain(z)
				delete(z, "ed._domainkey.example.com")
				setTXT(z, "rsa._domainkey.example.com", "v=DKIM1; p=")
			},
			want: map[string]Severity{"dkim.missing": Error, "dkim.revoked": Error, "dmarc.unaligned": Error,
				"bulk.authentication": Error, "bulk.alignment": Error}},
		{name: "dmarc dkim unaligned", cfg: keysAt("example.net"),
			want: map[string]Severity{"dmarc.dkim-unaligned": Warning}},
		{name: "dmarc rua elsewhere, unauthorised", zone: dmarcRec("v=DMARC1; p=reject; rua=mailto:reports@dmarc.example.net"),
			want: map[string]Severity{"dmarc.rua-unauthorized": Warning}},
		{name: "dmarc rua elsewhere, authorised", zone: func(z mxtest.Zone) {
			dmarcRec("v=DMARC1; p=reject; rua=mailto:reports@dmarc.example.net!10m")(z)
			z["example.com._report._dmarc.dmarc.example.net"] = mxtest.Domain{TXT: []string{"v=DMARC1"}}
		}, want: map[string]Severity{}},

		// Reverse DNS and EHLO
		{name: "rdns missing", zone: func(z mxtest.Zone) { delete(z, rev(t, src4)) }, want: map[string]Severity{"rdns.missing": Error}},
		{name: "rdns unconfirmed", zone: func(z mxtest.Zone) { z[rev(t, src6)] = mxtest.Domain{PTR: []string{"host.example.net"}} },
			want: map[string]Severity{"rdns.unconfirmed": Error}},
		{name: "rdns servfail", zone: func(z mxtest.Zone) { z[rev(t, src6)] = mxtest.Domain{Faults: mxtest.Faults{ServFail: true}} },
			want: map[string]Severity{"rdns.unchecked": Warning}},
		{name: "ehlo mismatch", cfg: ehlo("smtp.example.com"), want: map[string]Severity{"rdns.ehlo-mismatch": Warning}},
		{name: "ehlo bare ip", cfg: ehlo(src4), want: map[string]Severity{"rdns.ehlo-ip": Error}},
		{name: "ehlo address literal", cfg: ehlo("[" + src4 + "]"), want: map[string]Severity{"rdns.ehlo-literal": Warning}},
		{name: "ehlo not fqdn", cfg: ehlo("localhost"), want: map[string]Severity{"rdns.ehlo-fqdn": Error}},
		{name: "ehlo unknown", cfg: func(c *Config) { c.Hostname, c.Sources[0].Hostname = "", "" },
			want: map[string]Severity{"rdns.ehlo-missing": Info}},

		// Replies and bounces
		{name: "bounce domain without mx", zone: func(z mxtest.Zone) {
			d := z["bounce.example.com"]
			d.MX = nil
			z["bounce.example.com"] = d
		}, want: map[string]Severity{"mx.missing": Error}},
		{name: "null mx on the From domain", zone: func(z mxtest.Zone) {
			d := z["example.com"]
			d.MX = []mx.MX{{Host: ".", Pref: 0}}
			z["example.com"] = d
		}, want: map[string]Severity{"mx.null": Warning}},
		{name: "null mx on the envelope domain", zone: func(z mxtest.Zone) {
			d := z["bounce.example.com"]
			d.MX = []mx.MX{{Host: ".", Pref: 0}}
			z["bounce.example.com"] = d
		}, want: map[string]Severity{"mx.null": Error}},
		{name: "mx to an ip literal", zone: func(z mxtest.Zone) {
			d := z["example.com"]
			d.MX = []mx.MX{{Host: "192.0.2.10", Pref: 10}}
			z["example.com"] = d
		}, want: map[string]Severity{"mx.unusable": Error}},

		// Bulk-sender rules
		{name: "bulk without tls", cfg: func(c *Config) { c.TLS = TLSNone }, want: map[string]Severity{"bulk.tls": Error}},
		{name: "bulk without one-click unsubscribe", cfg: func(c *Config) { c.ListUnsubscribe = false },
			want: map[string]Severity{"bulk.unsubscribe": Error}},
		{name: "not list mail", cfg: func(c *Config) { c.ListMail, c.ListUnsubscribe, c.TLS = false, false, TLSNone },
			want: map[string]Severity{}},

		// Everything at once
		{name: "dns down", srv: func(s *mxtest.Server) { s.SetFaults(mxtest.Faults{ServFail: true}) },
			want: map[string]Severity{"spf.unchecked": Warning, "dkim.unchecked": Warning, "dmarc.unchecked": Warning,
				"rdns.unchecked": Warning, "mx.unchecked": Warning}},
		{name: "no sources", cfg: func(c *Config) { c.Sources = nil }, want: map[string]Severity{"config.no-sources": Info}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := cleanConfig(t)
			if tt.cfg != nil {
				tt.cfg(cfg)
			}
			z := cleanZone(t, cfg)
			if tt.zone != nil {
				tt.zone(z)
			}
			rep := run(t, cfg, z, tt.srv)
			got := checks(rep)
			for check, sev := range tt.want {
				if s, ok := got[check]; !ok || s != sev {
					t.Errorf("want %s at %v, got %v (present %v)", check, sev, s, ok)
				}
			}
			for check, sev := range got {
				if _, ok := tt.want[check]; !ok && sev >= Warning {
					t.Errorf("unexpected %s at %v", check, sev)
				}
			}
			if t.Failed() {
				t.Logf("findings:\n%s", problems(rep))
			}
			for _, f := range rep.Findings {
				if f.Severity > OK && (f.Fix == "" && f.Severity >= Warning || f.Source == "" || f.Found == "") {
					t.Errorf("incomplete finding %+v", f)
				}
			}
		})
	}
}

// twoDigits formats 0 to 99 as two digits.
func twoDigits(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }
