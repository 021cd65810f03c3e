package report

import (
	"strings"
	"testing"
	"time"
)

func TestFindStatus(t *testing.T) {
	for in, want := range map[string]string{
		"5.1.1":                          "5.1.1",
		"5.1.10":                         "5.1.10",
		"5.01.001 (bad mailbox)":         "5.1.1",
		"4.0.0 (hpnjld: lookup failure)": "4.0.0",
		"  2.0.0":                        "2.0.0",
		"550 5.7.1 <a@b>: relay denied":  "5.7.1",
		"(#5.1.1)":                       "5.1.1",
		"550-5.1.1 The email":            "5.1.1",
		"host 192.0.2.1 said":            "",
		"4.4.1.2":                        "",
		"v2.0.1":                         "",
		"3.1.1":                          "",
		"5.1":                            "",
		"5.1.1000":                       "",
		"":                               "",
		"5.":                             "",
		"5.1.":                           "",
	} {
		if got := findStatus(in); got != want {
			t.Errorf("findStatus(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFindCode(t *testing.T) {
	for in, want := range map[string]int{
		"550 5.1.1 user unknown":                       550,
		"550-5.1.1 The email account":                  550,
		"host x [192.0.2.40]: 552 5.2.2 full":          552,
		"smtp;550 5.1.1":                               550,
		"Remote Server returned '550 5.1.10 RESOLVER'": 550,
		"connect to mx[203.0.113.9]:25: timed out":     0,
		"on 15/11/2023 09:12":                          0,
		"421":                                          421,
		"699 nope":                                     0,
		"560 nope":                                     0,
		"1550 nope":                                    0,
		"Tue, 14 Nov 2023 22:13:20 +0000 (UTC) nothing": 0,
	} {
		if got := findCode(in); got != want {
			t.Errorf("findCode(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestAddresses(t *testing.T) {
	for in, want := range map[string]string{
		`"Mail Delivery System" <MAILER-DAEMON@Example.NET>`: "MAILER-DAEMON@example.net",
		`MAILER-DAEMON@Example.NET (Mail Delivery System)`:   "MAILER-DAEMON@example.net",
		`<>`:                                  "",
		`< >`:                                 "",
		``:                                    "",
		`MAILER-DAEMON`:                       "MAILER-DAEMON",
		`"a <x@y>" <real@b.c>`:                "real@b.c",
		`user @ Example.com`:                  "user@example.com",
		`mailto:list@Example.ORG`:             "list@example.org",
		`=?utf-8?q?J=C3=B6rg?= <j@x.example>`: "j@x.example",
	} {
		if got := addrSpec(in); got != want {
			t.Errorf("addrSpec(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"rfc822;<a@B.example>":         "a@b.example",
		"rfc822; a@b.example":          "a@b.example",
		"RFC822;a@b.example  ":         "a@b.example",
		"a@b.example":                  "a@b.example",
		"<a@b.example>":                "a@b.example",
		"unknown; nair_s":              "nair_s",
		`utf-8; j\x{00F6}rg@b.example`: "jörg@b.example",
		"x400; /G=Jo/S=Doe/":           "/G=Jo/S=Doe/",
	} {
		if got := recipientAddr(in); got != want {
			t.Errorf("recipientAddr(%q) = %q, want %q", in, got, want)
		}
	}
	if got := strings.Join(addrList(`a@x.example, "Doe, J" <j@Y.example>, (c) b@z.example`), "|"); got != "a@x.example|j@y.example|b@z.example" {
		t.Errorf("addrList = %q", got)
	}
	for in, want := range map[string]string{
		"dns; mx.example.org":                       "mx.example.org",
		"mx.example.org":                            "mx.example.org",
		"dns;host.example. (192.0.2.1, the server)": "host.example",
		"smtp; relay.example.net":                   "relay.example.net",
	} {
		if got := mtaName(in); got != want {
			t.Errorf("mtaName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"<a@b>":            "a@b",
		" <a@b> (comment)": "a@b",
		"a@b":              "a@b",
		"<a@b> <c@d>":      "a@b",
		"":                 "",
	} {
		if got := msgID(in); got != want {
			t.Errorf("msgID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseDate(t *testing.T) {
	want := time.Date(2023, 11, 16, 8, 15, 0, 0, time.UTC)
	for _, in := range []string{
		"Thu, 16 Nov 2023 09:15:00 +0100",
		"Thu, 16 Nov 2023 09:15:00 +0100 (CET)",
		"Thursday, 16 Nov 2023 09:15:00 +0100",
		"thu,16 Nov 2023 09:15:00 +0100",
		"16 Nov 2023 09:15:00 +0100",
		"16 Nov 2023 09:15 +0100",
		"16 Nov 23 09:15:00 +0100",
		"Thu, 16 Nov 2023 09:15:00 CET",
		"Thu, 16 Nov 2023 08:15:00 GMT",
		"Thu, 16 Nov 2023 08:15:00 +0000 GMT",
		"Thu, 16 Nov 2023 09:15:00 GMT+0100",
		"Thu, 16 Nov 2023 03:15:00 EST",
		"Thu, 16  Nov  2023  09:15:00  +0100",
		"Thu Nov 16 08:15:00 2023",
		"Thu Nov 16 08:15:00 UTC 2023",
		"16 November 2023 09:15:00 +0100",
		"Thursday, November 16, 2023 8:15:00 AM",
		"2023-11-16T09:15:00+01:00",
		"2023-11-16 08:15:00",
		"Thu, 16 Nov 2023 08:15:00.123 +0000",
	} {
		got := parseDate(in)
		if !got.Truncate(time.Second).Equal(want) {
			t.Errorf("parseDate(%q) = %v, want %v", in, got, want)
		}
	}
	for _, in := range []string{"", "yesterday", "Thu, 32 Nov 2023 09:15:00 +0100", "not a date at all really no"} {
		if got := parseDate(in); !got.IsZero() {
			t.Errorf("parseDate(%q) = %v, want zero", in, got)
		}
	}
}

func TestJoinReply(t *testing.T) {
	for in, want := range map[string]string{
		"550-5.1.1 The email account does not exist. 550-5.1.1 Please try 550 5.1.1 again - gsmtp": "550 5.1.1 The email account does not exist. Please try again - gsmtp",
		"550-Mailbox unavailable 550-try 550 later":                                                "550 Mailbox unavailable try later",
		"550 5.1.1 user unknown": "550 5.1.1 user unknown",
		"host said: 550-5.1.1 x": "host said: 550-5.1.1 x",
	} {
		if got := joinReply(in); got != want {
			t.Errorf("joinReply(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHeaderParsing(t *testing.T) {
	h, body := parseBlock("Subject: a\r\n  b\r\n\tc  \r\nX-Empty:\r\nStray line\r\nX-After: 1\r\n\r\nbody", topMode)
	if h.Get("subject") != "a b c" || h.Get("X-Empty") != "" || h.Get("x-after") != "1" || body != "body" {
		t.Errorf("header = %+v, body = %q", h, body)
	}
	if _, ok := h.lookup("x-empty"); !ok {
		t.Error("an empty field must still be present")
	}
	// A line that is not a field, followed by body text, starts the body.
	h, body = parseBlock("Subject: a\n[original message goes here]\n", topMode)
	if len(h) != 1 || body != "[original message goes here]\n" {
		t.Errorf("header = %+v, body = %q", h, body)
	}
	if vs := (Header{{"A", "1"}, {"b", "2"}, {"a", "3"}}).Values("a"); len(vs) != 2 || vs[1] != "3" {
		t.Errorf("Values = %q", vs)
	}
	groups := parseGroups("\n\nA: 1\ngarbage\nB: 2\n  \t\nC: 3\r\n\r\n\r\n")
	if len(groups) != 2 || len(groups[0]) != 2 || groups[1].Get("c") != "3" {
		t.Errorf("groups = %+v", groups)
	}
}

func TestSplitParts(t *testing.T) {
	body := "preamble\r\n--b\r\nA: 1\r\n\r\none\r\n--bb\r\nnot a delimiter\r\n--b  \r\n\r\ntwo\n--b--\r\nepilogue"
	parts := splitParts(body, "b")
	if len(parts) != 2 || parts[0] != "A: 1\r\n\r\none\r\n--bb\r\nnot a delimiter" || parts[1] != "\r\ntwo" {
		t.Errorf("parts = %q", parts)
	}
	if parts := splitParts("--b\nx", "b"); len(parts) != 1 || parts[0] != "x" {
		t.Errorf("unclosed: %q", parts)
	}
	if parts := splitParts("no delimiter", "b"); parts != nil {
		t.Errorf("none: %q", parts)
	}
}

func TestKind(t *testing.T) {
	for k, s := range map[Kind]string{Unknown: "unknown", DSN: "dsn", Bounce: "bounce", Feedback: "feedback", AutoReply: "auto-reply"} {
		if k.String() != s {
			t.Errorf("%d.String() = %q", k, k.String())
		}
		b, err := k.MarshalText()
		if err != nil || string(b) != s {
			t.Errorf("%d.MarshalText() = %q, %v", k, b, err)
		}
		var back Kind
		if err := back.UnmarshalText([]byte(strings.ToUpper(s))); err != nil || back != k {
			t.Errorf("UnmarshalText(%q) = %v, %v", s, back, err)
		}
	}
	if _, err := Kind(9).MarshalText(); err == nil {
		t.Error("MarshalText of an invalid Kind must fail")
	}
	if Kind(-1).String() != "Kind(-1)" {
		t.Errorf("Kind(-1).String() = %q", Kind(-1).String())
	}
	var k Kind
	if err := k.UnmarshalText([]byte("bogus")); err == nil {
		t.Error("UnmarshalText(bogus) must fail")
	}
}

func TestTyped(t *testing.T) {
	for in, want := range map[string][2]string{
		"smtp; 550 5.1.1 x":    {"smtp", "550 5.1.1 x"},
		"SMTP;550 x":           {"smtp", "550 x"},
		"X-Postfix; connect":   {"x-postfix", "connect"},
		"550; user unknown":    {"", "550; user unknown"},
		"550 5.1.1 a; b":       {"", "550 5.1.1 a; b"},
		"no type here":         {"", "no type here"},
		"; empty type":         {"", "; empty type"},
		"dns;mx.example.org  ": {"dns", "mx.example.org"},
	} {
		if typ, val := typed(in); typ != want[0] || val != want[1] {
			t.Errorf("typed(%q) = %q, %q; want %q, %q", in, typ, val, want[0], want[1])
		}
	}
}
