package bounce_test

import (
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/bounce"
)

// check compares a Classify result with the wanted category, permanence
// and suppression.
func check(t *testing.T, code int, enhanced, text string, cat bounce.Category, permanent, suppress bool) {
	t.Helper()
	got := bounce.Classify(code, enhanced, text)
	if got.Category != cat || got.Permanent != permanent || got.Suppress != suppress {
		t.Errorf("Classify(%d, %q, %q)\n\tgot  %v\n\twant %s %s%s", code, enhanced, short(text),
			got, cat, permanence(permanent), suppressWord(suppress))
	}
}

// The RFC 3463 / IANA registry codes alone, without a reply code or text,
// in both failure classes: what a DSN with a Status and no Diagnostic-Code
// says.
func TestEnhancedCodesAlone(t *testing.T) {
	codes := map[string]bounce.Category{
		"0.0": bounce.Other,
		"1.0": bounce.Other, "1.1": bounce.InvalidRecipient, "1.2": bounce.UnknownDomain,
		"1.3": bounce.InvalidRecipient, "1.4": bounce.Other, "1.5": bounce.Other,
		"1.6": bounce.InvalidRecipient, "1.7": bounce.AuthFailure, "1.8": bounce.AuthFailure,
		"1.9": bounce.Other, "1.10": bounce.UnknownDomain,
		"2.0": bounce.Other, "2.1": bounce.MailboxDisabled, "2.2": bounce.MailboxFull,
		"2.3": bounce.MessageTooLarge, "2.4": bounce.Other,
		"3.0": bounce.Other, "3.1": bounce.Other, "3.2": bounce.Other, "3.3": bounce.Other,
		"3.4": bounce.MessageTooLarge, "3.5": bounce.Other,
		"4.0": bounce.Routing, "4.1": bounce.Routing, "4.2": bounce.Routing, "4.3": bounce.Routing,
		"4.4": bounce.Routing, "4.5": bounce.RateLimited, "4.6": bounce.Routing, "4.7": bounce.Routing,
		"5.0": bounce.Other, "5.1": bounce.Other, "5.2": bounce.Other, "5.3": bounce.RateLimited,
		"5.4": bounce.Other, "5.5": bounce.Other, "5.6": bounce.Other,
		"6.0": bounce.Other, "6.1": bounce.Other, "6.2": bounce.Other, "6.3": bounce.Other,
		"6.4": bounce.Other, "6.5": bounce.Other, "6.6": bounce.Other, "6.7": bounce.Other,
		"6.8": bounce.Other, "6.9": bounce.Other, "6.10": bounce.Other,
		"7.0": bounce.PolicyBlock, "7.1": bounce.PolicyBlock, "7.2": bounce.PolicyBlock,
		"7.3": bounce.PolicyBlock, "7.4": bounce.PolicyBlock, "7.5": bounce.TLSRequired,
		"7.6": bounce.PolicyBlock, "7.7": bounce.PolicyBlock, "7.8": bounce.AuthFailure,
		"7.9": bounce.AuthFailure, "7.10": bounce.TLSRequired, "7.11": bounce.TLSRequired,
		"7.12": bounce.AuthFailure, "7.13": bounce.MailboxDisabled, "7.14": bounce.AuthFailure,
		"7.15": bounce.PolicyBlock, "7.16": bounce.MessageTooLarge, "7.17": bounce.Other,
		"7.18": bounce.Other, "7.19": bounce.Other, "7.20": bounce.AuthFailure,
		"7.21": bounce.AuthFailure, "7.22": bounce.AuthFailure, "7.23": bounce.AuthFailure,
		"7.24": bounce.AuthFailure, "7.25": bounce.AuthFailure, "7.26": bounce.AuthFailure,
		"7.27": bounce.AuthFailure, "7.28": bounce.RateLimited, "7.29": bounce.AuthFailure,
		"7.30": bounce.TLSRequired,
	}
	for sd, cat := range codes {
		for _, class := range []string{"4", "5"} {
			enhanced := class + "." + sd
			permanent := class == "5"
			suppress := permanent && (cat == bounce.InvalidRecipient || cat == bounce.UnknownDomain)
			check(t, 0, enhanced, "", cat, permanent, suppress)
		}
	}
}

// Reply codes alone, and with texts that say nothing.
func TestReplyCodesAlone(t *testing.T) {
	for _, tc := range []struct {
		code      int
		text      string
		cat       bounce.Category
		permanent bool
	}{
		{550, "", bounce.Other, true},
		{550, "Requested action not taken", bounce.Other, true},
		{554, "Transaction failed", bounce.Other, true},
		{551, "", bounce.Other, true},
		{553, "", bounce.Other, true},
		{552, "", bounce.MailboxFull, true},
		{556, "", bounce.UnknownDomain, true},
		{521, "", bounce.Routing, true},
		{530, "", bounce.AuthFailure, true},
		{535, "", bounce.AuthFailure, true},
		{421, "", bounce.Other, false},
		{421, "Service not available, closing transmission channel", bounce.Other, false},
		{450, "", bounce.Other, false},
		{451, "Requested action aborted: local error in processing", bounce.Other, false},
		{452, "", bounce.Other, false},
		{250, "", bounce.Other, false},
		{0, "", bounce.Other, false},
		{0, "something went wrong", bounce.Other, false},
		{999, "", bounce.Other, false},
		{-5, "", bounce.Other, false},
	} {
		suppress := tc.permanent && tc.cat == bounce.UnknownDomain
		check(t, tc.code, "", tc.text, tc.cat, tc.permanent, suppress)
	}
}

// Permanent follows the enhanced code's class, then the reply code's; the
// default is temporary.
func TestPermanence(t *testing.T) {
	for _, tc := range []struct {
		code      int
		enhanced  string
		text      string
		permanent bool
	}{
		{550, "5.1.1", "", true},
		{550, "4.1.1", "", false}, // the enhanced code's class wins
		{421, "5.7.32", "", true},
		{450, "", "", false},
		{550, "", "", true},
		{0, "", "550 5.1.1 user unknown", true},
		{0, "", "450 4.1.1 user unknown", false},
		{0, "", "smtp; 550 some text", true},
		{0, "", "", false},
		{0, "bogus", "", false},    // a malformed code counts as none
		{550, "5.1", "", true},     // so does a short one
		{0, "2.0.0", "ok", false},  // success is not permanent failure
		{0, "5.1.1.1", "", false},  // nor is an address
		{0, "05.1.1", "", false},   // nor a padded class
		{0, "5.1234.1", "", false}, // sub-codes have at most three digits
		{0, "", "host said: 5 1 1", false},
	} {
		if got := bounce.Classify(tc.code, tc.enhanced, tc.text); got.Permanent != tc.permanent {
			t.Errorf("Classify(%d, %q, %q).Permanent = %v, want %v", tc.code, tc.enhanced, tc.text, got.Permanent, tc.permanent)
		}
	}
}

// Asynchronous bounces: a DSN's Status and Diagnostic-Code, or a text
// bounce's words only.
func TestDSNDiagnostics(t *testing.T) {
	for _, tc := range []struct {
		enhanced  string
		text      string
		cat       bounce.Category
		permanent bool
		suppress  bool
	}{
		{"5.1.1", "smtp; 550-5.1.1 The email account that you tried to reach does not exist.", bounce.InvalidRecipient, true, true},
		{"", "smtp; 550-5.1.1 The email account that you tried to reach does not exist.", bounce.InvalidRecipient, true, true},
		{"", "smtp;550 5.2.2 The email account that you tried to reach is over quota.", bounce.MailboxFull, true, false},
		{"", "X-Postfix; Host or domain name not found. Name service error for name=nosuch.example type=A: Host not found", bounce.UnknownDomain, false, false},
		{"5.4.4", "X-Postfix; Host or domain name not found. Name service error for name=nosuch.example type=A: Host not found", bounce.UnknownDomain, true, true},
		{"4.4.1", "X-Postfix; connect to mx.example.com[192.0.2.1]:25: Connection refused", bounce.Routing, false, false},
		{"5.0.0", "Unknown user", bounce.InvalidRecipient, true, true}, // Exim's local failures
		{"5.0.0", "", bounce.Other, true, false},
		{"5.0.0", "smtp; 550 you are not allowed to send mail to <loretta@example.ca>", bounce.PolicyBlock, true, false},
		{"5.1.10", "domain accepts no mail (null MX, RFC 7505)", bounce.UnknownDomain, true, true},
		{"5.1.2", "domain does not exist (NXDOMAIN)", bounce.UnknownDomain, true, true},
		{"4.4.3", "MX lookup failed: i/o timeout", bounce.Routing, false, false},
		{"4.7.5", "no MX host matches the domain's MTA-STS policy", bounce.TLSRequired, false, false},
		// The reporting MTA said 5.1.1, the remote server 5.7.1: the
		// policy code is not overruled.
		{"5.1.1", "smtp;550 5.7.1 <service-quote-request@example.com>... Access denied", bounce.PolicyBlock, true, false},
		{"5.1.1", "smtp;550 5.7.1 <a@example.com>... No such user", bounce.Other, true, false},
		// Text bounces.
		{"", "<jane@example.com>: host mx.example.com[192.0.2.1] said: 550 5.1.1 <jane@example.com>: Recipient address rejected: User unknown in local recipient table (in reply to RCPT TO command)", bounce.InvalidRecipient, true, true},
		{"", "Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'", bounce.InvalidRecipient, true, true},
		{"", "Remote host said: 554 delivery error: dd This user doesn't have a yahoo.com account (x@yahoo.com) [-5] - mta1.mail.example.yahoo.com", bounce.InvalidRecipient, true, true},
		{"", "Sorry, no mailbox here by that name. (#5.1.1)", bounce.InvalidRecipient, true, true},
		{"", "I'm not going to try again; this message has been in the queue too long.", bounce.Other, false, false},
	} {
		check(t, 0, tc.enhanced, tc.text, tc.cat, tc.permanent, tc.suppress)
	}
}

// The guarantees of the classifier this package replaces, and those the
// package documentation makes.
func TestGuarantees(t *testing.T) {
	t.Run("address codes", func(t *testing.T) {
		for _, c := range []string{"5.1.1", "5.1.3", "5.1.6"} {
			check(t, 550, c, "", bounce.InvalidRecipient, true, true)
			check(t, 550, c, "gone", bounce.InvalidRecipient, true, true)
		}
		for _, c := range []string{"5.1.2", "5.1.10"} {
			check(t, 550, c, "", bounce.UnknownDomain, true, true)
			check(t, 0, c, "", bounce.UnknownDomain, true, true)
		}
	})
	t.Run("user unknown without an enhanced code", func(t *testing.T) {
		for _, code := range []int{550, 551, 553} {
			for _, text := range []string{
				"no such user", "No such mailbox", "User unknown", "unknown user: \"jane\"",
				"Recipient address unknown", "mailbox not found", "user does not exist",
				"Invalid recipient", "<jane@example.com>: Recipient address rejected: User unknown in virtual alias table",
				"Requested action not taken: mailbox unavailable", "mailbox has been deleted",
			} {
				check(t, code, "", text, bounce.InvalidRecipient, true, true)
			}
		}
	})
	t.Run("a policy code never suppresses", func(t *testing.T) {
		for _, c := range []string{"5.7.0", "5.7.1", "5.7.13", "5.7.17", "5.7.18", "5.7.26", "5.7.504", "5.7.505", "5.7.999"} {
			for _, text := range []string{"", "No such user!", "User unknown", "mailbox not found", "Recipient address rejected: Access denied", "domain not found", "Requested action not taken: mailbox name not allowed", "mailbox unavailable"} {
				if got := bounce.Classify(550, c, text); got.Suppress || got.Category == bounce.InvalidRecipient || got.Category == bounce.UnknownDomain {
					t.Errorf("Classify(550, %q, %q) = %v", c, text, got)
				}
				if got := bounce.Classify(0, "", "550 "+c+" "+text); got.Suppress {
					t.Errorf("Classify(0, \"\", %q) = %v", "550 "+c+" "+text, got)
				}
			}
		}
	})
	t.Run("texts about the sender never suppress", func(t *testing.T) {
		for _, text := range []string{
			"blocked for spam", "user unknown, message looks like spam", "SPAM", "antispam: user unknown",
			"Blocked", "unblock request: no such user", "blocklisted", "listed on a block list",
			"blacklisted", "reputation", "poor sender reputation", "policy", "rejected for policy reasons",
			"mailpolicy violation", "rate limited", "rate limit exceeded", "ratelimit", "throttled",
			"SPF fail", "DKIM signature missing", "DMARC policy reject", "dmarc",
			"Client host [192.0.2.1] blocked using zen.spamhaus.org",
		} {
			for _, c := range []string{"5.1.1", "5.1.2", "5.1.10", "5.0.0", ""} {
				for _, code := range []int{550, 553, 554} {
					if got := bounce.Classify(code, c, text); got.Suppress {
						t.Errorf("Classify(%d, %q, %q) = %v", code, c, text, got)
					}
				}
			}
		}
	})
	t.Run("temporary never suppresses", func(t *testing.T) {
		for _, c := range []string{"4.1.1", "4.1.2", "4.1.10", "4.0.0", "4.1.6"} {
			for _, text := range []string{"", "user unknown", "no such domain", "mailbox busy"} {
				if got := bounce.Classify(550, c, text); got.Suppress || got.Permanent {
					t.Errorf("Classify(550, %q, %q) = %v", c, text, got)
				}
			}
		}
		for _, text := range []string{"user unknown", "Requested action not taken: mailbox unavailable", "domain not found"} {
			for _, code := range []int{0, 421, 450, 451} {
				if got := bounce.Classify(code, "", text); got.Suppress {
					t.Errorf("Classify(%d, \"\", %q) = %v", code, text, got)
				}
			}
		}
	})
	// The cases the relay package's suppression test feeds.
	t.Run("relay", func(t *testing.T) {
		check(t, 550, "5.1.1", "no such user", bounce.InvalidRecipient, true, true)
		check(t, 551, "5.1.6", "mailbox moved", bounce.InvalidRecipient, true, true)
		check(t, 550, "", "Recipient address unknown", bounce.InvalidRecipient, true, true)
		check(t, 550, "5.7.1", "blocked by policy", bounce.PolicyBlock, true, false)
		check(t, 550, "", "message looks like spam, user unknown to our filters", bounce.ContentBlock, true, false)
		check(t, 552, "5.2.2", "mailbox full", bounce.MailboxFull, true, false)
		check(t, 450, "4.1.1", "mailbox busy", bounce.RateLimited, false, false)
	})
}

// Texts whose order of rules is the point: each pair says which reading
// must win.
func TestRuleOrder(t *testing.T) {
	for _, tc := range []struct {
		code     int
		enhanced string
		text     string
		cat      bounce.Category
	}{
		{550, "5.1.1", "blocked for spam", bounce.PolicyBlock},       // sender words before the address code
		{552, "5.1.1", "Recipient overquota", bounce.MailboxFull},    // the mailbox's state before the address code
		{550, "5.2.1", "Addressee unknown", bounce.InvalidRecipient}, // an address text before X.2.1
		{550, "5.2.1", "The email account that you tried to reach is disabled", bounce.MailboxDisabled},
		{550, "5.1.10", "RESOLVER.ADR.RecipientNotFound", bounce.InvalidRecipient},               // Exchange's X.1.10
		{550, "5.1.10", "Recipient address has null MX", bounce.UnknownDomain},                   // RFC 7505's X.1.10
		{421, "4.7.28", "rate limited because DKIM does not pass", bounce.AuthFailure},           // authentication before rate
		{451, "4.7.650", "rate limited due to IP reputation", bounce.RateLimited},                // rate before reputation
		{550, "", "unauthenticated SMTP email ... Spamhaus maintains lists", bounce.PolicyBlock}, // blocklists before authentication
		{554, "5.4.6", "too many hops", bounce.Routing},                                          // routing before rate
		{452, "4.5.3", "Domain policy size per transaction exceeded", bounce.RateLimited},        // X.5.3 before words
		{523, "5.7.10", "SMTP protocol violation, no commands allowed to pipeline after STARTTLS", bounce.Other},
		{550, "5.2.1", "This mailbox has been blocked due to inactivity", bounce.MailboxDisabled},
		{450, "4.1.8", "Sender address rejected: Domain not found", bounce.AuthFailure}, // the sender's domain is not the recipient's
		{0, "", "delivery temporarily suspended: connect to mx.example.com[192.0.2.1]:25: Connection refused", bounce.Routing},
		{0, "4.4.3", "Host or domain name not found. Name service error for name=example.com type=MX: Host not found, try again", bounce.Routing},
		{550, "", "Message contained unsafe content (Heuristics.Phishing.Email.SpoofedDomain)", bounce.ContentBlock},
		{554, "", "rejecting banned content", bounce.ContentBlock},
		{550, "", "Access denied, banned sender", bounce.PolicyBlock},
	} {
		if got := bounce.Classify(tc.code, tc.enhanced, tc.text); got.Category != tc.cat {
			t.Errorf("Classify(%d, %q, %q) = %v, want %v", tc.code, tc.enhanced, tc.text, got, tc.cat)
		}
	}
}

// Texts are matched on words, whatever their case, punctuation and line
// breaks.
func TestTextNormalisation(t *testing.T) {
	for _, text := range []string{
		"USER UNKNOWN",
		"user\tunknown",
		"user\r\n unknown",
		"user-unknown",
		"<jane@example.com>:user unknown.",
		"user\r\n550-5.1.1 unknown",  // a phrase folded across reply lines
		"user 550 5.1.1 unknown",     // and across a folded DSN line
		"mailbox doesn\u2019t exist", // a typographic apostrophe
		"mailbox doesn't exist",
		"550 5.1.1 The email account that you tried to reach does\n    not exist.",
	} {
		check(t, 550, "", text, bounce.InvalidRecipient, true, true)
	}
	for _, text := range []string{"users unknown to us", "superuser unknownish", "unknown", ""} {
		if got := bounce.Classify(550, "", text); got.Category == bounce.InvalidRecipient {
			t.Errorf("Classify(550, \"\", %q) = %v: phrases match whole words", text, got)
		}
	}
	// Only the start of a very long text is read.
	long := strings.Repeat("lorem ipsum ", 2000) + "user unknown"
	check(t, 550, "", long, bounce.Other, true, false)
}

func TestClassString(t *testing.T) {
	for _, tc := range []struct {
		c    bounce.Class
		want string
	}{
		{bounce.Classify(550, "5.1.1", ""), "invalid-recipient permanent suppress rule=bad-mailbox-status"},
		{bounce.Classify(421, "4.7.28", ""), "rate-limited temporary rule=mail-flood-status"},
		{bounce.Class{}, "other temporary"},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.c, got, tc.want)
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	for _, bc := range []struct {
		name           string
		code           int
		enhanced, text string
	}{
		{"postfix-user-unknown", 550, "5.1.1", "<jane@example.com>: Recipient address rejected: User unknown in virtual mailbox table"},
		{"gmail-dsn", 0, "5.1.1", "smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please try\n550-5.1.1 double-checking the recipient's email address for typos or\n550 5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser a1si123 - gsmtp"},
		{"gmail-rate", 421, "4.7.28", "[192.0.2.1] Gmail has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. Please visit https://support.google.com/mail/?p=UnsolicitedRateLimitError to review our Bulk Email Senders Guidelines. a1si123 - gsmtp"},
		{"code-only", 550, "5.7.26", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.text)))
			for b.Loop() {
				bounce.Classify(bc.code, bc.enhanced, bc.text)
			}
		})
	}
}

// The sender's address is not the recipient's.
func TestSenderAddressNeverSuppresses(t *testing.T) {
	for _, text := range []string{
		"Sender address rejected: Domain not found",
		"The domain of the sender address does not exist",
		"Domain of sender address example.com does not exist",
		"Sender domain does not exist",
		"sender address does not exist",
		"Sender verify failed",
		"unknown sender",
		"Sender address rejected: User unknown in local recipient table",
	} {
		for _, c := range []string{"", "5.0.0", "5.1.8", "5.7.1"} {
			if got := bounce.Classify(550, c, text); got.Suppress {
				t.Errorf("Classify(550, %q, %q) = %v", c, text, got)
			}
		}
	}
}
