package bounce

import "testing"

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want status
	}{
		{"5.1.1", status{5, 1, 1, true}},
		{"4.7.650", status{4, 7, 650, true}},
		{"2.0.0", status{2, 0, 0, true}},
		{"5.1.10", status{5, 1, 10, true}},
		{"5.999.999", status{5, 999, 999, true}},
		{"", status{}},
		{"5.1", status{}},
		{"5.1.", status{}},
		{"3.1.1", status{}},
		{"5.1.1.1", status{}},
		{"5.1.1 ", status{}},
		{"5.1000.1", status{}},
		{"5.1.1000", status{}},
		{"55.1.1", status{}},
		{"x.1.1", status{}},
		{"5..1", status{}},
	} {
		if got := parseStatus(tc.in); got != tc.want {
			t.Errorf("parseStatus(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestFromText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		code int
		st   string
	}{
		{"550 5.1.1 <a@b>: Recipient address rejected", 550, "5.1.1"},
		{"550-5.1.1 The email account", 550, "5.1.1"},
		{"  550 5.1.1 x", 550, "5.1.1"},
		{"smtp; 550-5.1.1 The email account", 550, "5.1.1"},
		{"smtp;550 5.1.1 x", 550, "5.1.1"},
		{"SMTP; 552-5.7.0 Our system detected", 552, "5.7.0"},
		{"X-Postfix; Host or domain name not found", 0, ""},
		{"5.7.1 Client host blocked", 0, "5.7.1"},
		{"4.7.650 The mail server", 0, "4.7.650"},
		{"550 Requested action not taken", 550, ""},
		{"550-SPF-check failed: 550 example.com", 550, ""},
		{"550 cuda_nsu 5.1.1 <a@b>... User unknown", 550, "5.1.1"},
		{"554 Sorry, no mailbox here by that name. (#5.1.1)", 554, "5.1.1"},
		{"<a@b>: host mx[192.0.2.1] said: 550 5.1.1 <a@b>: User unknown", 550, "5.1.1"},
		{"Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound'", 550, "5.1.10"},
		{"Remote host said: 554 delivery error: dd This user", 554, ""},
		{"host x [1.2.3.4] SMTP error from remote mail server after initial connection: 554 x comcast", 554, ""},
		{"after MAIL FROM:<u@example.com> SIZE=2022: 553 5.7.1 [BL21]", 553, "5.7.1"},
		{"Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)", 0, "4.4.1"},
		{"host [2607:f8b0:400d:c03::1a]: nothing", 0, ""},
		{"from 192.168.5.1.2 and 5.6.7.8", 0, ""},
		{"Exim 4.96", 0, ""},
		{"", 0, ""},
		{"550", 550, ""},
		{"550 Message rejected by filter 4.5.6", 550, ""},
		{"Remote host said: 554 see (#4.1.1)", 554, ""},
		{"5500 x", 0, ""},
		{"650 x", 0, ""},
	} {
		code, st := fromText(tc.in)
		if code != tc.code || st != parseStatus(tc.st) {
			t.Errorf("fromText(%q) = %d, %+v; want %d, %q", tc.in, code, st, tc.code, tc.st)
		}
	}
}
