package preflight

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
)

func TestParseSPF(t *testing.T) {
	valid := []string{
		"v=spf1",
		"v=spf1 -all",
		"V=SPF1 IP4:192.0.2.1 -ALL",
		"v=spf1  ip4:192.0.2.0/24   ~all  ",
		"v=spf1 a mx/24 a:x.example.com/24//64 mx//48 ptr ptr:example.com ip4:192.0.2.0/0 ip6:2001:db8::/32 ip6:::1 ?all",
		"v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} include:_spf.google.com ~all exp=explain._spf.%{d} foo=bar",
		"v=spf1 redirect=_spf.example.com",
		"v=spf1 include:%{d2}.trusted.example.net -all",
		"v=spf1 exists:%{i}.%{v}.%{h}.%{o}.%{s}.%{p}.%{D}.%{Ir}.x.example -all",
		"v=spf1 a:123-456.example a:example.com. -all",
	}
	for _, s := range valid {
		if _, err := parseSPF(s); err != nil {
			t.Errorf("parseSPF(%q): %v", s, err)
		}
	}
	invalid := []string{
		"v=spf10",
		"spf1 -all",
		"v=spf1 foo",
		"v=spf1 -",
		"v=spf1 all:x",
		"v=spf1 ip4:192.0.2",
		"v=spf1 ip4:192.0.2.300",
		"v=spf1 ip4:192.0.2.0/33",
		"v=spf1 ip4:192.0.2.0/024",
		"v=spf1 ip4:2001:db8::1",
		"v=spf1 ip6:192.0.2.1",
		"v=spf1 ip6:2001:db8::/129",
		"v=spf1 ip6:fe80::1%eth0",
		"v=spf1 a/33",
		"v=spf1 mx//129",
		"v=spf1 include",
		"v=spf1 include:",
		"v=spf1 include:localhost",
		"v=spf1 include:192.0.2.1",
		"v=spf1 include:example.-com",
		"v=spf1 exists:%{x}.example.com",
		"v=spf1 exists:%{c}.example.com",
		"v=spf1 exists:%{d0}.example.com",
		"v=spf1 exists:%{d.example.com",
		"v=spf1 exists:%a.example.com",
		"v=spf1 exists:example.com%",
		"v=spf1 exists:%{l!}.example.com",
		"v=spf1 redirect=a.example redirect=b.example",
		"v=spf1 exp=a.example exp=b.example",
		"v=spf1 redirect=",
		"v=spf1 foo=%{x}",
		"v=spf1 a:exa\tmple.com",
	}
	for _, s := range invalid {
		if _, err := parseSPF(s); err == nil {
			t.Errorf("parseSPF(%q): no error", s)
		}
	}
	rec, err := parseSPF("v=spf1 ~a:x.example/24//64 -mx redirect=r.example")
	if err != nil {
		t.Fatal(err)
	}
	a := rec.terms[0]
	if a.qual != '~' || a.mech != "a" || a.cidr4 != 24 || a.cidr6 != 64 || a.domain[0].lit != "x.example" ||
		rec.terms[1].qual != '-' || rec.terms[1].cidr4 != 32 || rec.redirect == nil || rec.hasAll {
		t.Errorf("%+v", rec)
	}
}

// TestMacros expands the examples of RFC 7208 §7.4.
func TestMacros(t *testing.T) {
	e := &spfEval{ip: netip.MustParseAddr("192.0.2.3"), local: "strong-bad", sender: "email.example.com", helo: "mx.example.org"}
	tests := map[string]string{
		"%{s}":                              "strong-bad@email.example.com",
		"%{o}":                              "email.example.com",
		"%{d}":                              "email.example.com",
		"%{d4}":                             "email.example.com",
		"%{d3}":                             "email.example.com",
		"%{d2}":                             "example.com",
		"%{d1}":                             "com",
		"%{dr}":                             "com.example.email",
		"%{d2r}":                            "example.email",
		"%{l}":                              "strong-bad",
		"%{l-}":                             "strong.bad",
		"%{lr}":                             "strong-bad",
		"%{lr-}":                            "bad.strong",
		"%{l1r-}":                           "strong",
		"%{ir}.%{v}._spf.%{d2}":             "3.2.0.192.in-addr._spf.example.com",
		"%{lr-}.lp._spf.%{d2}":              "bad.strong.lp._spf.example.com",
		"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}":   "bad.strong.lp.3.2.0.192.in-addr._spf.example.com",
		"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}":  "3.2.0.192.in-addr.strong.lp._spf.example.com",
		"%{d2}.trusted-domains.example.net": "example.com.trusted-domains.example.net",
		"%{h}.%{S}":                         "mx.example.org.strong-bad%40email.example.com",
		"%%%_%-x":                           "% %20x",
	}
	for in, want := range tests {
		parts, err := parseMacroString(in, false)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		got, res := e.expand(context.Background(), parts, "email.example.com", "test")
		if res != "" || got != want {
			t.Errorf("%s = %q (%s), want %q", in, got, res, want)
		}
	}
	e.ip = netip.MustParseAddr("2001:db8::cb01")
	parts, _ := parseMacroString("%{ir}.%{v}._spf.%{d2}", false)
	got, _ := e.expand(context.Background(), parts, "email.example.com", "test")
	if want := "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"; got != want {
		t.Errorf("IPv6 %%{ir}: %q, want %q", got, want)
	}
	if !e.usedLocal {
		t.Error("usedLocal not set")
	}
	// Too long after expansion: labels come off the left.
	e.local = strings.Repeat("a", 60) + "." + strings.Repeat("b", 60) + "." + strings.Repeat("c", 60) + "." + strings.Repeat("d", 60)
	got, res := e.target(context.Background(), &spfTerm{domain: mustMacros(t, "%{l}.%{o}")}, "x.example")
	if res != "" || len(got) > 253 || !strings.HasPrefix(got, "bbb") || !strings.HasSuffix(got, ".email.example.com") {
		t.Errorf("truncated to %q (%d)", got, len(got))
	}
}

func mustMacros(t *testing.T, s string) []macroPart {
	t.Helper()
	p, err := parseMacroString(s, false)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// spfZone holds the records of the evaluator tests.
func spfZone(t *testing.T) mxtest.Zone {
	z := mxtest.Zone{
		"chain.example":   {TXT: []string{"v=spf1 include:a.chain.example -all"}},
		"a.chain.example": {TXT: []string{"v=spf1 include:b.chain.example -all"}},
		"b.chain.example": {TXT: []string{"v=spf1 ip4:192.0.2.0/24 -all"}},

		"redirect.example":      {TXT: []string{"v=spf1 redirect=target.example"}},
		"redirect-all.example":  {TXT: []string{"v=spf1 -all redirect=target.example"}},
		"redirect-none.example": {TXT: []string{"v=spf1 redirect=nospf.example"}},
		"target.example":        {TXT: []string{"v=spf1 ip4:198.51.100.0/24 ~all"}},
		"nospf.example":         {TXT: []string{"hello"}},

		"v6.example":    {TXT: []string{"v=spf1 ip6:2001:db8::/32 -all"}},
		"v6-64.example": {TXT: []string{"v=spf1 ip6:2001:db8:0:1::/64 -all"}},

		"acidr.example":      {TXT: []string{"v=spf1 a:host.acidr.example/24//112 -all"}},
		"host.acidr.example": {A: []string{"192.0.2.1"}, AAAA: []string{"2001:db8::1"}},
		"aself.example":      {A: []string{"203.0.113.5"}, TXT: []string{"v=spf1 a -all"}},

		"mxm.example":     {MX: []mx.MX{{Host: "mx1.mxm.example", Pref: 10}}, TXT: []string{"v=spf1 mx -all"}},
		"mx1.mxm.example": {A: []string{"192.0.2.33"}},
		"mxnone.example":  {A: []string{"192.0.2.44"}, TXT: []string{"v=spf1 mx -all"}},
		"manymx.example":  {TXT: []string{"v=spf1 mx -all"}},

		"exists.example":                         {TXT: []string{"v=spf1 exists:%{ir}.%{v}.allow.exists.example -all"}},
		"1.2.0.192.in-addr.allow.exists.example": {A: []string{"127.0.0.2"}},
		"local.example":                          {TXT: []string{"v=spf1 exists:%{l}.users.local.example -all"}},
		"postmaster.users.local.example":         {A: []string{"127.0.0.2"}},
		"helo.example":                           {TXT: []string{"v=spf1 exists:%{h}.helo.example -all"}},
		"mail.example.com.helo.example":          {A: []string{"127.0.0.2"}},
		"under.example":                          {TXT: []string{"v=spf1 exists:%{i}._spf.under.example -all"}},

		"ptr.example":                       {TXT: []string{"v=spf1 ptr:ptr.example -all"}},
		"host.ptr.example":                  {A: []string{"192.0.2.9"}},
		"pmacro.example":                    {TXT: []string{"v=spf1 exists:%{p}.p.pmacro.example -all"}},
		"host.ptr.example.p.pmacro.example": {A: []string{"127.0.0.2"}},

		"two.example":     {TXT: []string{"v=spf1 -all", "v=spf1 +all"}},
		"badinc.example":  {TXT: []string{"v=spf1 include:bad.example -all"}},
		"bad.example":     {TXT: []string{"v=spf1 ip4:x ~all"}},
		"tempinc.example": {TXT: []string{"v=spf1 include:sf.example -all"}},
		"sf.example":      {Faults: mxtest.Faults{ServFail: true}},
		"plus.example":    {TXT: []string{"v=spf1 all"}},
		"none.example":    {TXT: []string{"not spf"}},
		"void2.example":   {TXT: []string{"v=spf1 a:nx1.example mx:nx2.example -all"}},
		"void3.example":   {TXT: []string{"v=spf1 a:nx1.example mx:nx2.example exists:nx3.example -all"}},
		"loop.example":    {TXT: []string{"v=spf1 include:loop.example -all"}},
		"neutral.example": {TXT: []string{"v=spf1 ?all"}},
		"ip4in6.example":  {TXT: []string{"v=spf1 ip6:::ffff:192.0.2.0/120 -all"}},
		"upper.example":   {TXT: []string{"v=spf1 IP4:192.0.2.1 -ALL"}},
	}
	var many []mx.MX
	for i := range 11 {
		many = append(many, mx.MX{Host: "mx" + twoDigits(i) + ".manymx.example", Pref: 10})
	}
	d := z["manymx.example"]
	d.MX = many
	z["manymx.example"] = d
	ptr, err := mxtest.ReverseName("192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	z[ptr] = mxtest.Domain{PTR: []string{"host.ptr.example"}}
	// limit<N>.example has N includes of records that query nothing.
	for _, n := range []int{10, 11} {
		rec := "v=spf1"
		for i := range n {
			name := "x" + twoDigits(i) + ".limit.example"
			z[name] = mxtest.Domain{TXT: []string{"v=spf1 ?all"}}
			rec += " include:" + name
		}
		z["limit"+twoDigits(n)+".example"] = mxtest.Domain{TXT: []string{rec + " -all"}}
	}
	return z
}

func TestSPFEval(t *testing.T) {
	srv := mxtest.NewServer(spfZone(t))
	defer srv.Close()
	tests := []struct {
		domain, ip string
		want       spfResult
		kind       string // errKind
		matched    string
		lookups    int // checked when > 0
	}{
		{"chain.example", "192.0.2.5", spfPass, "", "include:a.chain.example → include:b.chain.example → ip4:192.0.2.0/24", 2},
		{"chain.example", "198.51.100.1", spfFail, "", "-all", 2},
		{"redirect.example", "198.51.100.7", spfPass, "", "redirect=target.example → ip4:198.51.100.0/24", 1},
		{"redirect.example", "203.0.113.1", spfSoftFail, "", "redirect=target.example → ~all", 1},
		{"redirect-all.example", "198.51.100.7", spfFail, "", "-all", 0},
		{"redirect-none.example", "198.51.100.7", spfPermError, spfErrMissing, "", 0},
		{"v6.example", "2001:db8:ffff::1", spfPass, "", "ip6:2001:db8::/32", 0},
		{"v6.example", "2001:db9::1", spfFail, "", "-all", 0},
		{"v6.example", "192.0.2.1", spfFail, "", "-all", 0},
		{"v6-64.example", "2001:db8:0:1::99", spfPass, "", "", 0},
		{"v6-64.example", "2001:db8:0:2::1", spfFail, "", "", 0},
		{"ip4in6.example", "192.0.2.1", spfFail, "", "", 0},
		{"acidr.example", "192.0.2.200", spfPass, "", "a:host.acidr.example/24//112", 1},
		{"acidr.example", "192.0.3.1", spfFail, "", "", 0},
		{"acidr.example", "2001:db8::ff", spfPass, "", "", 0},
		{"acidr.example", "2001:db8::1:0", spfFail, "", "", 0},
		{"aself.example", "203.0.113.5", spfPass, "", "a", 1},
		{"mxm.example", "192.0.2.33", spfPass, "", "mx", 1},
		{"mxm.example", "192.0.2.34", spfFail, "", "", 0},
		{"mxnone.example", "192.0.2.44", spfFail, "", "", 0}, // no implicit MX in SPF
		{"manymx.example", "192.0.2.1", spfPermError, spfErrLookups, "", 0},
		{"exists.example", "192.0.2.1", spfPass, "", "exists:%{ir}.%{v}.allow.exists.example", 1},
		{"exists.example", "192.0.2.2", spfFail, "", "", 0},
		{"local.example", "192.0.2.2", spfPass, "", "", 0},
		{"helo.example", "192.0.2.2", spfPass, "", "", 0},
		{"under.example", "192.0.2.2", spfTempError, spfErrUnsupported, "", 0},
		{"ptr.example", "192.0.2.9", spfPass, "", "ptr:ptr.example", 1},
		{"ptr.example", "192.0.2.10", spfFail, "", "", 0},
		{"pmacro.example", "192.0.2.9", spfPass, "", "", 2},
		{"two.example", "192.0.2.1", spfPermError, spfErrMultiple, "", 0},
		{"badinc.example", "192.0.2.1", spfPermError, spfErrSyntax, "", 0},
		{"tempinc.example", "192.0.2.1", spfTempError, spfErrDNS, "", 0},
		{"plus.example", "203.0.113.1", spfPass, "", "all", 0},
		{"neutral.example", "203.0.113.1", spfNeutral, "", "?all", 0},
		{"none.example", "203.0.113.1", spfNone, "", "", 0},
		{"nx.example", "203.0.113.1", spfNone, "", "", 0},
		{"void2.example", "203.0.113.1", spfFail, "", "-all", 2},
		{"void3.example", "203.0.113.1", spfPermError, spfErrVoids, "", 0},
		{"limit10.example", "203.0.113.1", spfFail, "", "-all", 10},
		{"limit11.example", "203.0.113.1", spfPermError, spfErrLookups, "", 0},
		{"loop.example", "203.0.113.1", spfPermError, spfErrLookups, "", 0},
		{"upper.example", "192.0.2.1", spfPass, "", "IP4:192.0.2.1", 0},
	}
	for _, tt := range tests {
		e := &spfEval{r: srv.Resolver(), ip: netip.MustParseAddr(tt.ip), local: "postmaster", sender: tt.domain, helo: "mail.example.com"}
		got := e.checkHost(context.Background(), tt.domain)
		if got != tt.want || e.errKind != tt.kind || tt.matched != "" && e.matched != tt.matched || tt.lookups > 0 && e.lookups != tt.lookups {
			t.Errorf("%s for %s: %s %q %q (matched %q, %d lookups, %d voids); want %s %q matched %q, %d lookups",
				tt.domain, tt.ip, got, e.errKind, e.errText, e.matched, e.lookups, e.voids, tt.want, tt.kind, tt.matched, tt.lookups)
		}
	}
}

func TestSPFEvalFlags(t *testing.T) {
	srv := mxtest.NewServer(spfZone(t))
	defer srv.Close()
	eval := func(domain, ip string, probe bool) *spfEval {
		e := &spfEval{r: srv.Resolver(), ip: netip.MustParseAddr(ip), local: "postmaster", sender: domain, helo: "mail.example.com", probe: probe}
		e.checkHost(context.Background(), domain)
		return e
	}
	if e := eval("local.example", "192.0.2.2", false); !e.usedLocal || e.usedPTR {
		t.Errorf("local: %+v", e)
	}
	if e := eval("pmacro.example", "192.0.2.9", false); !e.usedPTR {
		t.Errorf("pmacro: %+v", e)
	}
	// The probe matches no listed address, reaches every term, and finds
	// an all that lets everyone in.
	if e := eval("chain.example", probeAddr.String(), true); e.result != spfFail || e.lookups != 2 {
		t.Errorf("probe chain: %+v", e)
	}
	if e := eval("exists.example", "192.0.2.1", true); e.result != spfFail {
		t.Errorf("probe exists: %+v", e)
	}
	if e := eval("plus.example", probeAddr.String(), true); e.result != spfPass || e.matched != "all" {
		t.Errorf("probe plus: %+v", e)
	}
	if e := eval("limit11.example", probeAddr.String(), true); e.result != spfPermError || e.errKind != spfErrLookups {
		t.Errorf("probe limit: %+v", e)
	}
}

func TestWithAddrs(t *testing.T) {
	a4, a6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	tests := map[string]string{
		"v=spf1 -all":                  "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 -all",
		"v=spf1 mx ~all exp=x.example": "v=spf1 mx ip4:192.0.2.1 ip6:2001:db8::1 ~all exp=x.example",
		"v=spf1 redirect=x.example":    "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 redirect=x.example",
		"v=spf1  a":                    "v=spf1 a ip4:192.0.2.1 ip6:2001:db8::1",
	}
	for in, want := range tests {
		if got := withAddrs(in, []netip.Addr{a4, a6, a4}); got != want {
			t.Errorf("withAddrs(%q) = %q, want %q", in, got, want)
		}
	}
}
