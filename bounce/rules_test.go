package bounce

import "testing"

func TestCompileErrors(t *testing.T) {
	for _, rs := range [][]rule{
		{{name: "", cat: Other}},
		{{name: "a"}, {name: "a"}},
		{{name: "a", cat: numCategories}},
		{{name: "a", status: []string{"5.1.1"}}},
		{{name: "a", status: []string{"X.1"}}},
		{{name: "a", status: []string{"X.7.27-20"}}},
		{{name: "a", status: []string{"X.y.1"}}},
		{{name: "a", text: []string{"a*b"}}},
		make([]rule, maxRules+1),
	} {
		if _, _, err := compile(rs); err == nil {
			t.Errorf("compile(%+v): no error", rs)
		}
	}
}

// Every rule of the table decides for at least the example given here,
// which also documents what each rule is for.
func TestEveryRuleIsReachable(t *testing.T) {
	examples := map[string][3]string{ // rule: code, enhanced, text
		"auth-status":                  {"550", "5.7.26", ""},
		"too-many-recipients-status":   {"452", "4.5.3", ""},
		"too-big-status":               {"552", "5.3.4", ""},
		"greylisted":                   {"450", "4.2.0", "Recipient address rejected: Greylisted"},
		"protocol":                     {"503", "5.5.1", "Bad sequence of commands"},
		"routing":                      {"554", "5.7.1", "Relay access denied"},
		"tls":                          {"530", "5.7.0", "Must issue a STARTTLS command first"},
		"blocklist":                    {"554", "5.7.1", "Client host blocked using zen.spamhaus.org"},
		"auth":                         {"550", "5.7.1", "DMARC policy"},
		"rate-limit":                   {"421", "4.7.0", "rate limited"},
		"reputation":                   {"550", "5.7.1", "poor reputation"},
		"content":                      {"554", "5.7.1", "virus found"},
		"mailbox-full":                 {"552", "5.1.1", "over quota"},
		"mailbox-disabled":             {"550", "", "account disabled"},
		"too-large":                    {"552", "", "message too large"},
		"spam-block-policy":            {"550", "5.1.1", "blocked"},
		"exchange-dbeb":                {"550", "5.4.1", "Recipient address rejected: Access denied"},
		"mailbox-name-not-allowed":     {"553", "", "mailbox name not allowed"},
		"policy":                       {"550", "", "access denied"},
		"policy-status-unknown-user":   {"550", "5.7.1", "no such user"},
		"tls-status":                   {"530", "5.7.11", ""},
		"smtp-auth-status":             {"535", "5.7.8", ""},
		"account-disabled-status":      {"525", "5.7.13", ""},
		"rrvs-status":                  {"550", "5.7.17", ""},
		"too-big-for-priority-status":  {"552", "5.7.16", ""},
		"mail-flood-status":            {"421", "4.7.28", ""},
		"policy-status":                {"550", "5.7.1", ""},
		"exchange-recipient-not-found": {"550", "5.1.10", "RESOLVER.ADR.RecipientNotFound"},
		"bad-mailbox-status":           {"550", "5.1.1", ""},
		"bad-domain-status":            {"550", "5.1.2", ""},
		"bad-sender-status":            {"553", "5.1.8", ""},
		"unknown-domain":               {"550", "", "domain not found"},
		"mailbox-unavailable":          {"550", "", "mailbox unavailable"},
		"unknown-user":                 {"550", "", "user unknown"},
		"mailbox-disabled-status":      {"550", "5.2.1", ""},
		"mailbox-full-status":          {"552", "5.2.2", ""},
		"too-long-status":              {"552", "5.2.3", ""},
		"congestion-status":            {"451", "4.4.5", ""},
		"routing-status":               {"451", "4.4.1", ""},
		"protocol-status":              {"501", "5.5.2", ""},
		"storage-code":                 {"552", "", ""},
		"null-mx-code":                 {"556", "", ""},
		"no-mail-code":                 {"521", "", ""},
		"smtp-auth-code":               {"535", "", ""},
	}
	table, _ := compiled()
	for _, r := range table {
		ex, ok := examples[r.name]
		if !ok {
			t.Errorf("rule %q has no example", r.name)
			continue
		}
		code := 0
		for _, c := range ex[0] {
			code = code*10 + int(c-'0')
		}
		if got := Classify(code, ex[1], ex[2]); got.Rule != r.name || got.Category != r.cat {
			t.Errorf("Classify(%d, %q, %q) = %v, want rule %s (%v)", code, ex[1], ex[2], got, r.name, r.cat)
		}
		delete(examples, r.name)
	}
	for name := range examples {
		t.Errorf("example for a rule %q that the table lacks", name)
	}
}

// The table's order keeps the guarantees of the package documentation: no
// rule that can suppress comes before the words of spam, blocks and
// policy, and none before the catch-all for X.7.x codes accepts an X.7.x
// code.
func TestTableKeepsGuarantees(t *testing.T) {
	table, _ := compiled()
	words, policyCodes := -1, -1
	for i, r := range table {
		switch r.name {
		case "spam-block-policy":
			words = i
		case "policy-status":
			policyCodes = i
		}
	}
	if words < 0 || policyCodes < 0 {
		t.Fatal("the table lacks spam-block-policy or policy-status")
	}
	for i, r := range table {
		if r.cat != InvalidRecipient && r.cat != UnknownDomain {
			continue
		}
		if i < words {
			t.Errorf("rule %q can suppress but comes before %q", r.name, "spam-block-policy")
		}
		if i > policyCodes {
			continue
		}
		if len(r.pats) == 0 {
			t.Errorf("rule %q can suppress, comes before %q and takes any status", r.name, "policy-status")
		}
		for _, p := range r.pats {
			if !p.none && p.subject == 7 {
				t.Errorf("rule %q can suppress, comes before %q and takes X.7", r.name, "policy-status")
			}
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	for b.Loop() {
		if _, _, err := compile(rules); err != nil {
			b.Fatal(err)
		}
	}
}
