package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixture is what one file under testdata/ must parse to. Zero fields are
// checked too: a fixture that should have no Original says so by leaving
// origID empty and noOriginal true.
type fixture struct {
	kind         Kind
	from         string
	subject      string
	messageID    string
	returnPath   string
	nullSender   bool
	reportingMTA string
	envid        string // OriginalEnvelopeID
	arrival      string // RFC 3339, "" for zero
	rcpts        []Recipient
	feedback     *FeedbackReport
	reason       string
	text         string // a substring Text must contain
	origID       string // Original.MessageID; "" means Original must be nil
	origFrom     string
	origTo       string
	origSubject  string
	origHeader   map[string]string // further Original header fields
	header       map[string]string // fields of the report's own header
}

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

var fixtures = map[string]fixture{
	// RFC 3464 §9 examples.
	"rfc3464-simple.eml": {
		kind: DSN, from: "MAILER-DAEMON@cs.utk.edu", subject: "Returned mail: Cannot send message for 5 days",
		messageID: "199407072116.RAA14128@CS.UTK.EDU", reportingMTA: "cs.utk.edu",
		rcpts: []Recipient{{
			FinalRecipient: "louisl@larry.slip.umd.edu", OriginalRecipient: "louisl@larry.slip.umd.edu",
			Action: "failed", Status: "4.0.0", Code: 426, DiagnosticType: "smtp", DiagnosticCode: "426 connection timed out",
			LastAttemptDate: date("1994-07-07T17:15:49-04:00"),
		}},
		text: "The original message was received at Sat, 2 Jul 1994",
		// "[original message goes here]" holds no header field.
	},
	"rfc3464-multi.eml": {
		kind: DSN, from: "MAILER-DAEMON@cs.utk.edu", subject: "Returned mail: User unknown", reportingMTA: "cs.utk.edu",
		rcpts: []Recipient{
			{FinalRecipient: "arathib@vnet.ibm.com", OriginalRecipient: "arathib@vnet.ibm.com", Action: "failed", Status: "5.0.0",
				Code: 550, DiagnosticType: "smtp", DiagnosticCode: "550 'arathib@vnet.IBM.COM' is not a registered gateway user", RemoteMTA: "vnet.ibm.com"},
			{FinalRecipient: "johnh@hpnjld.njd.hp.com", OriginalRecipient: "johnh@hpnjld.njd.hp.com", Action: "delayed", Status: "4.0.0"},
			{FinalRecipient: "wsnell@sdcc13.ucsd.edu", OriginalRecipient: "wsnell@sdcc13.ucsd.edu", Action: "failed", Status: "5.0.0",
				Code: 550, DiagnosticType: "smtp", DiagnosticCode: "550 user unknown", RemoteMTA: "sdcc13.ucsd.edu"},
		},
		text: "<wsnell@sdcc13.ucsd.edu> (unrecoverable error)",
	},
	"rfc3464-gateway.eml": {
		kind: DSN, from: "AMMGR@corp.timeplex.com", subject: "Status of: Re: Battery current sense",
		messageID: "01HEGJ0WNBY28Y95LN@mr.timeplex.com", reportingMTA: "SYS30",
		rcpts: []Recipient{{FinalRecipient: "nair_s", Action: "failed", Status: "5.0.0"}},
		text:  "Invalid address - nair_s",
	},
	"rfc3464-delayed.eml": {
		kind: DSN, from: "postmaster@nsfnet-relay.ac.uk", subject: `WARNING: message delayed at "nsfnet-relay.ac.uk"`,
		messageID: "199407092338.TAA23293@CS.UTK.EDU", reportingMTA: "sun2.nsfnet-relay.ac.uk",
		rcpts: []Recipient{{FinalRecipient: "thomas@de-montfort.ac.uk", Action: "delayed", Status: "4.0.0"}},
		text:  "despite repeated delivery attempts over the past 24 hours",
	},

	// RFC 5965 Appendix B.
	"rfc5965-simple.eml": {
		kind: Feedback, from: "abusedesk@example.com", subject: "FW: Earn money",
		feedback: &FeedbackReport{FeedbackType: "abuse", UserAgent: "SomeGenerator/1.0", Version: "1"},
		text:     "This is an email abuse report",
		origID:   "8787KJKJ3K4J3K4J3K4J3.mail@example.net", origFrom: "somespammer@example.net",
		origTo: "Undisclosed Recipients", origSubject: "Earn money",
	},
	"rfc5965-extended.eml": {
		kind: Feedback, from: "abusedesk@example.com", subject: "FW: Earn money", reportingMTA: "mail.example.com",
		feedback: &FeedbackReport{
			FeedbackType: "abuse", UserAgent: "SomeGenerator/1.0", Version: "1",
			OriginalMailFrom: "somespammer@example.net", OriginalRcptTo: []string{"user@example.com"},
			ArrivalDate: date("2005-03-08T14:00:00-04:00"), SourceIP: "192.0.2.1",
			ReportedDomain:        []string{"example.net"},
			ReportedURI:           []string{"http://example.net/earn_money.html", "mailto:user@example.com"},
			AuthenticationResults: "mail.example.com; spf=fail smtp.mail=somespammer@example.com",
		},
		text:   "192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT",
		origID: "8787KJKJ3K4J3K4J3K4J3.mail@example.net", origFrom: "somespammer@example.net",
		origTo: "Undisclosed Recipients", origSubject: "Earn money",
	},

	// MTA shapes.
	"postfix-failed.eml":    postfixFailed,
	"postfix-failed-lf.eml": postfixFailed,
	"postfix-delayed.eml": {
		kind: DSN, from: "MAILER-DAEMON@mail.example.net", subject: "Delayed Mail (still being retried)",
		messageID: "20231114220212.4SVQ9k2Hb4z9sXm@mail.example.net", nullSender: true,
		reportingMTA: "mail.example.net", arrival: "2023-11-14T18:02:11Z",
		rcpts: []Recipient{{
			FinalRecipient: "user@slow.example.org", OriginalRecipient: "user@slow.example.org",
			Action: "delayed", Status: "4.4.1", DiagnosticType: "x-postfix",
			DiagnosticCode: "connect to mx.slow.example.org[203.0.113.9]:25: Connection timed out",
			WillRetryUntil: date("2023-11-19T18:02:11Z"),
		}},
		text:   "THIS IS A WARNING ONLY",
		origID: "order-1041@shop.example.com", origFrom: "orders@shop.example.com",
		origTo: "user@slow.example.org", origSubject: "Order 1041 confirmed",
	},
	"exim-dsn.eml": {
		kind: DSN, from: "Mailer-Daemon@mx.example.org", subject: "Mail delivery failed: returning message to sender",
		messageID: "E1r31Ab-000Y5c-2Q@mx.example.org", nullSender: true, reportingMTA: "mx.example.org",
		rcpts: []Recipient{{FinalRecipient: "nobody@mx.example.org", Action: "failed", Status: "5.0.0"}},
		// The reason is only in the text (and X-Failed-Recipients names the address).
		text:   "  nobody@mx.example.org\n    Unknown user",
		header: map[string]string{"X-Failed-Recipients": "nobody@mx.example.org"},
		origID: "welcome-42.c0ffee@shop.example.com", origFrom: "welcome@shop.example.com",
		origTo: "nobody@mx.example.org", origSubject: "Welcome to Example Shop",
	},
	"exim-text-bounce.eml": {
		kind: Bounce, from: "Mailer-Daemon@mail.example.org", subject: "Mail delivery failed: returning message to sender",
		messageID: "E1r32Xy-0004Qm-Hs@mail.example.org", nullSender: true,
		rcpts: []Recipient{
			{FinalRecipient: "jdoe@example.org", Action: "failed", Status: "5.1.1", Code: 550,
				DiagnosticCode: "SMTP error from remote mail server after RCPT TO:<jdoe@example.org>: host mx.example.org [192.0.2.40]: 550 5.1.1 <jdoe@example.org>: Recipient address rejected: User unknown in local recipient table"},
			{FinalRecipient: "mgr@example.org", Action: "failed", Status: "5.2.2", Code: 552,
				DiagnosticCode: "SMTP error from remote mail server after RCPT TO:<mgr@example.org>: host mx.example.org [192.0.2.40]: 552 5.2.2 <mgr@example.org>: Mailbox full"},
		},
		text:   "This is a permanent error",
		origID: "order-1042@shop.example.com", origFrom: "orders@shop.example.com",
		origTo: "jdoe@example.org, mgr@example.org", origSubject: "Order 1042 shipped",
		origHeader: map[string]string{"X-Order": "1042"},
	},
	"exim-text-warning.eml": {
		kind: Bounce, from: "Mailer-Daemon@mail.example.org", subject: "Warning: message 1r33Qa-0005Aa-Uu delayed 24 hours",
		messageID: "E1r33Zz-0006Bb-Kk@mail.example.org", nullSender: true,
		rcpts: []Recipient{{FinalRecipient: "buyer@slow.example.net", Action: "delayed", Status: "4.3.0", Code: 451,
			DiagnosticCode: "host mx.slow.example.net [203.0.113.20]: 451 4.3.0 Temporary lookup failure Delay reason: SMTP error from remote mail server after RCPT TO:<buyer@slow.example.net>"}},
		text: "Delivery attempts will continue",
	},
	"qmail-qsbmf.eml": {
		kind: Bounce, from: "MAILER-DAEMON@mx.example.net", subject: "failure notice", nullSender: true,
		rcpts: []Recipient{
			{FinalRecipient: "ghost@example.net", Action: "failed", Status: "5.1.1",
				DiagnosticCode: "Sorry, no mailbox here by that name. (#5.1.1)"},
			{FinalRecipient: "full@remote.example.org", Action: "failed", Status: "5.2.2", Code: 552,
				DiagnosticCode: "192.0.2.77 does not like recipient. Remote host said: 552 5.2.2 <full@remote.example.org>: mailbox is full Giving up on 192.0.2.77."},
		},
		text:   "Hi. This is the qmail-send program at mx.example.net.",
		origID: "digest-46@shop.example.com", origFrom: "news@shop.example.com",
		origTo: "ghost@example.net, full@remote.example.org", origSubject: "Weekly digest",
	},
	"exchange-ndr.eml": {
		kind: DSN, from: "MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.example", subject: "Undeliverable: Your receipt",
		messageID:    "a1b2c3d4-0000-4000-8000-0000000000ndr@AM0PR01MB1234.eurprd01.prod.exchangelabs.com",
		reportingMTA: "AM0PR01MB1234.eurprd01.prod.exchangelabs.com", arrival: "2023-11-14T21:40:01Z",
		rcpts: []Recipient{{
			FinalRecipient: "nobody@contoso.example", OriginalRecipient: "nobody@contoso.example",
			Action: "failed", Status: "5.1.10", Code: 550, DiagnosticType: "smtp",
			DiagnosticCode: "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
		}},
		// Quoted-printable with soft line breaks, decoded.
		text:   "Try one or more of the following:",
		origID: "receipt-77@shop.example.com", origFrom: "receipts@shop.example.com",
		origTo: "nobody@contoso.example", origSubject: "Your receipt",
	},
	"exchange-text-ndr.eml": {
		kind: Bounce, from: "postmaster@corp.example.org", subject: "Undeliverable: Meeting notes",
		messageID: "ndr-0001@corp.example.org",
		rcpts: []Recipient{{FinalRecipient: "j.doe@corp.example.org", Action: "failed", Status: "5.1.1", Code: 550,
			DiagnosticCode: "The e-mail account does not exist at the organization this message was sent to. Check the e-mail address, or contact the recipient directly to find out the correct address. <mail.corp.example.org #5.1.1 smtp;550 5.1.1 User unknown>"}},
		text:   "Your message did not reach some or all of the intended recipients.",
		origID: "notes-5@shop.example.com", origFrom: "events@shop.example.com",
		origTo: "j.doe@corp.example.org", origSubject: "Meeting notes",
	},
	"lotus-notes-ndr.eml": {
		kind: Bounce, from: "Postmaster@notes.example.org",
		subject:   "DELIVERY FAILURE: User j.smith (j.smith@notes.example.org) not listed in Domino Directory",
		messageID: "OF12AB34CD.5E6F7081-ONC1258A6E.0031A2B3@notes.example.org",
		rcpts: []Recipient{{FinalRecipient: "j.smith@notes.example.org", Action: "failed",
			DiagnosticCode: "User j.smith (j.smith@notes.example.org) not listed in Domino Directory"}},
		text:   "was not delivered to:",
		origID: "catalogue-spring@shop.example.com", origFrom: "catalogue@shop.example.com",
		origTo: "j.smith@notes.example.org", origSubject: "Spring catalogue",
	},
	"gmail-dsn.eml": {
		kind: DSN, from: "mailer-daemon@googlemail.com", subject: "Delivery Status Notification (Failure)",
		messageID: "6553e8a2.050a0220.1234.abcd.GMR@mx.google.com", nullSender: true,
		reportingMTA: "googlemail.com", arrival: "2023-11-14T13:40:01-08:00",
		rcpts: []Recipient{{
			FinalRecipient: "nosuchuser@gmail.com", Action: "failed", Status: "5.1.1", Code: 550, DiagnosticType: "smtp",
			DiagnosticCode:  "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser a1-20020a056a000000b006c0000000000si1234567pfb.123 - gsmtp",
			RemoteMTA:       "gmail-smtp-in.l.google.com",
			LastAttemptDate: date("2023-11-14T13:40:02-08:00"),
		}},
		text:   "The email account that you tried to reach does not exist",
		origID: "offer-2023-11.4d4d@shop.example.com", origFrom: "news@shop.example.com",
		origTo: "nosuchuser@gmail.com", origSubject: "Your November offers",
		origHeader: map[string]string{"X-Campaign": "november-offers"},
	},
	"sloppy-dsn-lf.eml": {
		kind: DSN, from: "MAILER-DAEMON@mta.legacy.example", subject: "Returned mail: see transcript for details",
		messageID: "sloppy-1@mta.legacy.example", nullSender: true,
		reportingMTA: "mta.legacy.example", arrival: "2023-11-16T09:14:58Z",
		rcpts: []Recipient{
			{FinalRecipient: "One@example.org", Action: "failed", Status: "5.1.1", Code: 550, DiagnosticType: "smtp",
				DiagnosticCode: "550 5.1.1 <One@Example.ORG>... User unknown", LastAttemptDate: date("2023-11-16T09:15:00+01:00")},
			{FinalRecipient: "two@example.org", Action: "delayed", Status: "4.2.2", RemoteMTA: "mx.example.org",
				WillRetryUntil: date("2023-11-18T09:15:00+01:00")},
			{FinalRecipient: "three@example.org", Action: "failed", Status: "5.2.2", Code: 552,
				DiagnosticCode: "552 5.2.2 Mailbox full"},
		},
		text:   "permanent fatal errors",
		origID: "sloppy-orig@shop.example.com", origFrom: "shop@shop.example.com", origSubject: "Grüße aus dem Shop",
	},
	"dsn-no-recipients.eml": {
		kind: DSN, from: "MAILER-DAEMON@mx.example.net", subject: "Undelivered Mail Returned to Sender",
		messageID: "20231115110000.AB12CD34@mx.example.net", nullSender: true,
		reportingMTA: "mx.example.net", arrival: "2023-11-15T10:59:59Z",
		text: "Your message could not be delivered.",
	},

	// Captured from the real MTAs that relay/interop runs (see
	// testdata/README.md).
	"postfix-real-failed.eml": {
		kind: DSN, from: "MAILER-DAEMON@mx.postfix.test", subject: "Undelivered Mail Returned to Sender",
		messageID: "20261203132807.BCC73986EDA@mx.postfix.test", reportingMTA: "mx.postfix.test",
		envid: "baemo3qlkcgpvfkfeocikwaijkmjp36y4556qppa5ohozzwcaya", arrival: "2026-12-03T13:28:07Z",
		rcpts: []Recipient{{FinalRecipient: "unknown@example.com", OriginalRecipient: "unknown@example.com",
			Action: "failed", Status: "5.1.1", DiagnosticType: "x-postfix", DiagnosticCode: `unknown user: "unknown@example.com"`}},
		text:   `<unknown@example.com>: unknown user: "unknown@example.com"`,
		origID: "postfix-late.interop@example.org", origFrom: "zoe@example.org",
		origTo: "unknown@example.com, gone@relayed.example.com, known@example.com", origSubject: "late bounce: postfix-late",
		origHeader: map[string]string{"X-Interop-Case": "postfix-late"},
	},
	"postfix-real-delayed.eml": {
		kind: DSN, from: "MAILER-DAEMON@mx.postfix.test", subject: "Delayed Mail (still being retried)",
		messageID: "20261203132811.B2C1B98416C@mx.postfix.test", reportingMTA: "mx.postfix.test",
		envid: "bakzqfke3qhsrovhihicxp733sthq33shjwna7clrpkkipbesuy", arrival: "2026-12-03T13:28:11Z",
		rcpts: []Recipient{{FinalRecipient: "slow@slow.example.net", OriginalRecipient: "slow@slow.example.net",
			Action: "delayed", Status: "4.4.1", DiagnosticType: "x-postfix",
			DiagnosticCode: "connect to 127.0.0.1[127.0.0.1]:46137: Connection refused",
			WillRetryUntil: date("2026-12-08T13:28:11Z")}},
		text:   "THIS IS A WARNING ONLY",
		origID: "postfix-delay.interop@example.org", origFrom: "zoe@example.org",
		origTo: "slow@slow.example.net", origSubject: "late bounce: postfix-delay",
	},
	"exim-real-failed.eml": {
		kind: DSN, from: "Mailer-Daemon@mx.exim.test", subject: "Mail delivery failed: returning message to sender",
		messageID: "E1xZ6r8-00000A-0Z@mx.exim.test", reportingMTA: "mx.exim.test",
		rcpts:  []Recipient{{FinalRecipient: "unknown@example.com", Action: "failed", Status: "5.0.0"}},
		text:   "  unknown@example.com\n    Unknown user",
		origID: "exim-late-default.interop@example.org", origFrom: "zoe@example.org",
		origTo: "unknown@example.com, known@example.com", origSubject: "late bounce: exim-late-default",
	},

	// Provider feedback reports.
	"yahoo-arf.eml": {
		kind: Feedback, from: "feedback@arf.mail.yahoo.com", subject: "FW: Your November offers",
		messageID: "1700002862000.123456.arf@arf.mail.yahoo.com", returnPath: "feedback@arf.mail.yahoo.com",
		feedback: &FeedbackReport{
			FeedbackType: "abuse", UserAgent: "Yahoo!-Mail-Feedback/2.0", Version: "0.1",
			OriginalMailFrom: "bounces+8e8e@relay.example.com", OriginalRcptTo: []string{"subscriber@yahoo.example"},
			ArrivalDate: date("2023-11-14T22:58:40Z"), ReportedDomain: []string{"shop.example.com"},
			AuthenticationResults: "mta4012.mail.gq1.yahoo.example  header.from=shop.example.com; domainkeys=neutral (no sig);  from=shop.example.com; dkim=pass (ok)",
		},
		text:   "This is an email abuse report",
		origID: "offer-2023-11.9b9b@shop.example.com", origFrom: "news@shop.example.com",
		origTo: "subscriber@yahoo.example", origSubject: "Your November offers",
		origHeader: map[string]string{"X-Campaign": "november-offers", "List-Unsubscribe": "<https://relay.example.com/u/9b9b>"},
	},
	"aol-arf-lf.eml": {
		kind: Feedback, from: "scomp@aol.net", subject: "Email Feedback Report for IP 198.51.100.7",
		messageID: "202311142312.abcd1234@aol.net", returnPath: "scomp@aol.net",
		feedback: &FeedbackReport{
			FeedbackType: "abuse", UserAgent: "AOL SComp", Version: "0.1",
			ArrivalDate: date("2023-11-14T18:10:02-05:00"), SourceIP: "198.51.100.7",
			ReportedDomain: []string{"shop.example.com"},
		},
		text:   "received from IP 198.51.100.7",
		origID: "offer-2023-11.aol1@shop.example.com", origFrom: "news@shop.example.com",
		origTo: "redacted@aol.example", origSubject: "Your November offers",
	},
	"microsoft-jmrp.eml": {
		kind: Feedback, from: "staff@hotmail.com", subject: "complaint about message from 198.51.100.7",
		messageID: "jmrp-2b3c4d@hotmail.com", returnPath: "staff@hotmail.com",
		feedback: &FeedbackReport{FeedbackType: "abuse", OriginalRcptTo: []string{"complainer@hotmail.example"}},
		text:     "This is an email abuse report",
		origID:   "offer-2023-11.ms1@shop.example.com", origFrom: "news@shop.example.com",
		origTo: "complainer@hotmail.example", origSubject: "Your November offers",
		origHeader: map[string]string{"X-Sid-Pra": "news@shop.example.com"},
	},

	// Auto-replies.
	"autoreply-vacation-en.eml": {
		kind: AutoReply, from: "alice@customer.example", subject: "Auto: Your November offers",
		messageID: "dovecot-sieve-1700031600-1@mail.customer.example", nullSender: true,
		reason: "Auto-Submitted: auto-replied", text: "I am on vacation until 27 November",
	},
	"autoreply-vacation-de.eml": {
		kind: AutoReply, from: "bernd@kunde.example", subject: "Abwesenheitsnotiz: Ihre Bestellung für März",
		messageID: "AM9PR0000.abwesend@kunde.example", returnPath: "bernd@kunde.example",
		reason: "Subject: abwesenheitsnotiz", text: "Ich bin bis zum 20. November nicht im Büro und habe",
	},
	"autoreply-outlook.eml": {
		kind: AutoReply, from: "carol@client.example", subject: "Automatic reply: Your November offers",
		messageID: "DB9PR01MB0001.autoreply@client.example",
		reason:    "Subject: automatic reply", text: "I am out of the office until Monday 20 November",
	},
	"autoreply-precedence.eml": {
		kind: AutoReply, from: "support@vendor.example", subject: "Re: Your November offers",
		messageID: "ack-5150@helpdesk.vendor.example",
		reason:    "Precedence: auto_reply", text: "your message has been received",
	},
	"autoreply-bulk-away.eml": {
		kind: AutoReply, from: "dave@unix.example", subject: "away from my mail",
		messageID: "20231115130000.vacation.4711@unix.example",
		reason:    "Precedence: bulk, Subject: away", text: "I will not be reading my mail for a while.",
	},
	"autoreply-noreply-sender.eml": {
		kind: AutoReply, from: "noreply@helpdesk.example", subject: "[Ticket #4521] We received your request",
		messageID: "ticket-4521@helpdesk.example",
		reason:    "From: noreply@helpdesk.example", text: "we have received your request & opened ticket #4521.\n\nThis mailbox",
	},

	// Neither.
	"human-reply.eml": {
		kind: Unknown, from: "erin@buyer.example", subject: "Re: Out of office tomorrow?",
		messageID: "CAHuman123@mail.buyer.example", returnPath: "erin@buyer.example",
		text: "will your shop be open tomorrow?",
	},
	"newsletter-bulk.eml": {
		kind: Unknown, from: "news@partner.example", subject: "Weekly digest #46: holiday opening hours, auto reply tips", messageID: "digest-46@partner.example",
		text: "This week: new products",
	},
	"unknown-charset.eml": {
		kind: Unknown, from: "francois@client.example", subject: "Commande", messageID: "commande-1@client.example",
		text: "Bonjour, je voudrais un caf\uFFFD.",
	},
}

var postfixFailed = fixture{
	kind: DSN, from: "MAILER-DAEMON@mail.example.net", subject: "Undelivered Mail Returned to Sender",
	messageID: "20231114221321.4SVQ1R0Z3Nz9sWl@mail.example.net", nullSender: true,
	reportingMTA: "mail.example.net", arrival: "2023-11-14T22:13:20Z",
	rcpts: []Recipient{{
		FinalRecipient: "nosuchuser@example.org", OriginalRecipient: "nosuchuser@example.org",
		Action: "failed", Status: "5.1.1", Code: 550, DiagnosticType: "smtp",
		DiagnosticCode: "550 5.1.1 <nosuchuser@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
		RemoteMTA:      "mx1.example.org",
	}},
	text:   "This is the mail system at host mail.example.net.",
	origID: "offer-2023-11.7f3a@shop.example.com", origFrom: "news@shop.example.com",
	origTo: "nosuchuser@example.org", origSubject: "Your November offers",
	origHeader: map[string]string{
		"X-Campaign":       "november-offers",
		"List-Unsubscribe": "<https://relay.example.com/u/7f3a>, <mailto:unsubscribe+7f3a@relay.example.com>",
	},
}

func TestFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, path := range files {
		name := filepath.Base(path)
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			want, ok := fixtures[name]
			if !ok {
				t.Fatalf("no expectations for %s: add it to fixtures", name)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := Parse(f)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkFixture(t, got, want)
		})
	}
	for name := range fixtures {
		if !seen[name] {
			t.Errorf("fixture %s has expectations but no file", name)
		}
	}
}

func checkFixture(t *testing.T, got *Report, want fixture) {
	t.Helper()
	eq := func(field string, g, w any) {
		t.Helper()
		if g != w {
			t.Errorf("%s = %q, want %q", field, g, w)
		}
	}
	eq("Kind", got.Kind.String(), want.kind.String())
	eq("From", got.From, want.from)
	eq("Subject", got.Subject, want.subject)
	eq("MessageID", got.MessageID, want.messageID)
	eq("ReturnPath", got.ReturnPath, want.returnPath)
	eq("NullSender", got.NullSender, want.nullSender)
	eq("ReportingMTA", got.ReportingMTA, want.reportingMTA)
	eq("OriginalEnvelopeID", got.OriginalEnvelopeID, want.envid)
	eq("AutoReplyReason", got.AutoReplyReason, want.reason)
	if want.arrival == "" {
		if !got.ArrivalDate.IsZero() {
			t.Errorf("ArrivalDate = %v, want zero", got.ArrivalDate)
		}
	} else if !got.ArrivalDate.Equal(date(want.arrival)) {
		t.Errorf("ArrivalDate = %v, want %s", got.ArrivalDate, want.arrival)
	}
	for k, v := range want.header {
		eq("Header "+k, got.Header.Get(k), v)
	}
	if !strings.Contains(got.Text, want.text) {
		t.Errorf("Text does not contain %q:\n%s", want.text, got.Text)
	}
	if len(got.Recipients) != len(want.rcpts) {
		t.Errorf("%d recipients, want %d: %+v", len(got.Recipients), len(want.rcpts), got.Recipients)
	} else {
		for i := range want.rcpts {
			if d := diffRecipient(got.Recipients[i], want.rcpts[i]); d != "" {
				t.Errorf("recipient %d: %s", i, d)
			}
		}
	}
	if d := diffFeedback(got.Feedback, want.feedback); d != "" {
		t.Errorf("Feedback: %s", d)
	}
	if want.origID == "" {
		if got.Original != nil {
			t.Errorf("Original = %+v, want nil", got.Original)
		}
		return
	}
	if got.Original == nil {
		t.Fatalf("Original = nil, want Message-ID %q", want.origID)
	}
	o := got.Original
	eq("Original.MessageID", o.MessageID, want.origID)
	eq("Original.From", o.From, want.origFrom)
	eq("Original.To", o.To, want.origTo)
	eq("Original.Subject", o.Subject, want.origSubject)
	for k, v := range want.origHeader {
		eq("Original.Header "+k, o.Header.Get(k), v)
	}
}

func diffRecipient(g, w Recipient) string {
	var d []string
	str := func(name, a, b string) {
		if a != b {
			d = append(d, name+" = "+quote(a)+", want "+quote(b))
		}
	}
	str("FinalRecipient", g.FinalRecipient, w.FinalRecipient)
	str("OriginalRecipient", g.OriginalRecipient, w.OriginalRecipient)
	str("Action", g.Action, w.Action)
	str("Status", g.Status, w.Status)
	str("DiagnosticType", g.DiagnosticType, w.DiagnosticType)
	str("DiagnosticCode", g.DiagnosticCode, w.DiagnosticCode)
	str("RemoteMTA", g.RemoteMTA, w.RemoteMTA)
	if g.Code != w.Code {
		d = append(d, "Code = "+itoa(g.Code)+", want "+itoa(w.Code))
	}
	if !g.LastAttemptDate.Equal(w.LastAttemptDate) {
		d = append(d, "LastAttemptDate = "+g.LastAttemptDate.String()+", want "+w.LastAttemptDate.String())
	}
	if !g.WillRetryUntil.Equal(w.WillRetryUntil) {
		d = append(d, "WillRetryUntil = "+g.WillRetryUntil.String()+", want "+w.WillRetryUntil.String())
	}
	return strings.Join(d, "; ")
}

func diffFeedback(g, w *FeedbackReport) string {
	if g == nil || w == nil {
		if g != w {
			return "got " + ptrState(g != nil) + ", want " + ptrState(w != nil)
		}
		return ""
	}
	var d []string
	str := func(name, a, b string) {
		if a != b {
			d = append(d, name+" = "+quote(a)+", want "+quote(b))
		}
	}
	str("FeedbackType", g.FeedbackType, w.FeedbackType)
	str("UserAgent", g.UserAgent, w.UserAgent)
	str("Version", g.Version, w.Version)
	str("OriginalMailFrom", g.OriginalMailFrom, w.OriginalMailFrom)
	str("OriginalRcptTo", strings.Join(g.OriginalRcptTo, ","), strings.Join(w.OriginalRcptTo, ","))
	str("SourceIP", g.SourceIP, w.SourceIP)
	str("ReportedDomain", strings.Join(g.ReportedDomain, ","), strings.Join(w.ReportedDomain, ","))
	str("ReportedURI", strings.Join(g.ReportedURI, ","), strings.Join(w.ReportedURI, ","))
	str("AuthenticationResults", g.AuthenticationResults, w.AuthenticationResults)
	if g.Incidents != w.Incidents {
		d = append(d, "Incidents = "+itoa(g.Incidents)+", want "+itoa(w.Incidents))
	}
	if !g.ArrivalDate.Equal(w.ArrivalDate) {
		d = append(d, "ArrivalDate = "+g.ArrivalDate.String()+", want "+w.ArrivalDate.String())
	}
	return strings.Join(d, "; ")
}

func ptrState(set bool) string {
	if set {
		return "a report"
	}
	return "nil"
}
