package relay

import (
	"errors"
	"testing"

	"github.com/mxrelay/mxrelay/relay/internal/smtpclient"
)

// Replies as the providers send them (addresses changed to documentation
// ones), and the default rule each must set off.
var providerReplies = []struct {
	host string
	err  *smtpclient.Error
	rule string // "" → none
}{
	{"mta5.am0.yahoodns.net", &smtpclient.Error{Code: 421, Enhanced: "4.7.0", Message: "[TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes"}, "yahoo-tss04"},
	{"mta6.am0.yahoodns.net", &smtpclient.Error{Code: 421, Enhanced: "4.7.0", Message: "[TS01] Messages from 192.0.2.1 temporarily deferred due to user complaints - 4.16.55.1"}, "yahoo-temporarily-deferred"},
	{"mta7.am0.yahoodns.net", &smtpclient.Error{Code: 421, Enhanced: "4.7.0", Message: "[TS02] Messages from 192.0.2.1 temporarily deferred due to excessive volume"}, "yahoo-temporarily-deferred"},
	{"mta5.am0.yahoodns.net", &smtpclient.Error{Code: 553, Enhanced: "5.7.1", Message: "[TS03] All messages from 192.0.2.1 will be permanently deferred; Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes"}, "yahoo-permanently-deferred"},
	{"mta5.am0.yahoodns.net", &smtpclient.Error{Code: 421, Enhanced: "4.7.0", Message: "[TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes"}, "yahoo-permanently-deferred"},
	{"gmail-smtp-in.l.google.com", &smtpclient.Error{Code: 421, Enhanced: "4.7.28", Message: "[192.0.2.1 15] Gmail has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited."}, "gmail-rate-limited"},
	{"gmail-smtp-in.l.google.com", &smtpclient.Error{Code: 421, Enhanced: "4.7.0", Message: "Try again later, closing connection. (EHLO) d75a77b69052e-4a1c3b0b3basi1234qtb.123 - gsmtp"}, "gmail-try-again-later"},
	{"gmail-smtp-in.l.google.com", &smtpclient.Error{Code: 550, Enhanced: "5.1.1", Message: "The email account that you tried to reach does not exist."}, ""},
	{"gmail-smtp-in.l.google.com", &smtpclient.Error{Code: 450, Enhanced: "4.2.1", Message: "The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered."}, ""},
	{"example-com.mail.protection.outlook.com", &smtpclient.Error{Code: 550, Enhanced: "5.7.1", Message: "Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors."}, "microsoft-blocked"},
	{"outlook-com.olc.protection.outlook.com", &smtpclient.Error{Code: 451, Enhanced: "4.7.650", Message: "The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation. For e-mail delivery information, see https://postmaster.live.com (S775) [Name=Protocol Filter Agent]"}, "microsoft-ip-reputation"},
	{"outlook-com.olc.protection.outlook.com", &smtpclient.Error{Code: 451, Enhanced: "4.7.500", Message: "Server busy. Please try again later from [192.0.2.1]. (S77714) [BN8NAM12FT053.eop-nam12.prod.protection.outlook.com]"}, "microsoft-server-busy"},
	{"mx1.comcast.net", &smtpclient.Error{Code: 421, Message: "resimta-po-01v.sys.comcast.net resimta-po-01v.sys.comcast.net 192.0.2.1 Rate limited RL000001 Try again later"}, "comcast-rate-limited"},
	{"mx.example.com", &smtpclient.Error{Code: 421, Enhanced: "4.3.2", Message: "Service not available, closing transmission channel"}, ""},
	{"mx.example.com", &smtpclient.Error{Code: 250, Message: "[TSS04] ok"}, ""}, // not a failure
}

func TestDefaultBackoffRules(t *testing.T) {
	d := &Direct{}
	if err := d.Validate(); err != nil {
		t.Fatalf("the default rules do not compile: %v", err)
	}
	for _, tt := range providerReplies {
		got := ""
		if r := d.ruleFor(tt.host, tt.err); r != nil {
			got = r.Name
		}
		if got != tt.rule {
			t.Errorf("%s: %q set off rule %q, want %q", tt.host, replyLine(tt.err), got, tt.rule)
		}
	}
	for _, r := range DefaultBackoffRules() {
		if r.Source == "" {
			t.Errorf("rule %s names no source", r.Name)
		}
	}
}

func TestBackoffRulesOverride(t *testing.T) {
	tss04 := providerReplies[0]
	// No rules at all.
	d := &Direct{BackoffRules: []BackoffRule{}}
	if r := d.ruleFor(tss04.host, tss04.err); r != nil {
		t.Errorf("with no rules, %s matched", r.Name)
	}
	// A rule of one's own first, limited to some hosts.
	own := BackoffRule{Name: "mine", Match: `TSS04`, Hosts: "*.yahoodns.net", Slow: 5}
	d = &Direct{BackoffRules: append([]BackoffRule{own}, DefaultBackoffRules()...)}
	if r := d.ruleFor(tss04.host, tss04.err); r == nil || r.Name != "mine" || r.For.Hours() != 1 {
		t.Errorf("own rule: got %+v", r)
	}
	if r := d.ruleFor("mx.elsewhere.example", tss04.err); r == nil || r.Name != "yahoo-tss04" {
		t.Errorf("own rule outside its hosts: got %+v, want the default", r)
	}
}

func TestBackoffRulesInvalid(t *testing.T) {
	for name, rules := range map[string][]BackoffRule{
		"no name":      {{Match: "x", Slow: 1}},
		"no match":     {{Name: "a", Slow: 1}},
		"no action":    {{Name: "a", Match: "x"}},
		"bad regexp":   {{Name: "a", Match: "(", Slow: 1}},
		"slow+suspend": {{Name: "a", Match: "x", Slow: 1, Suspend: true}},
		"negative":     {{Name: "a", Match: "x", Slow: -1}},
		"duplicate":    {{Name: "a", Match: "x", Slow: 1}, {Name: "a", Match: "y", Bounce: true}},
	} {
		d := &Direct{BackoffRules: rules}
		if err := d.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate = %v, want ErrInvalidConfig", name, err)
		}
	}
}
