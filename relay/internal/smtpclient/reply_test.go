package smtpclient

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func readReplyString(s string) (Reply, error) {
	rr := replyReader{r: bufio.NewReaderSize(strings.NewReader(s), 4096), maxLine: DefaultMaxReplyLineLength, maxLines: DefaultMaxReplyLines}
	return rr.read()
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		in   string
		want Reply
		err  error
	}{
		{"250 ok\r\n", Reply{Code: 250, Lines: []string{"ok"}}, nil},
		{"250\r\n", Reply{Code: 250, Lines: []string{""}}, nil},
		{"250 ok\n", Reply{Code: 250, Lines: []string{"ok"}}, nil},
		{"250-a\r\n250-b\r\n250 c\r\n", Reply{Code: 250, Lines: []string{"a", "b", "c"}}, nil},
		{"550 5.1.1 no such user\r\n", Reply{Code: 550, Enhanced: "5.1.1", Lines: []string{"5.1.1 no such user"}}, nil},
		{"550-first line\r\n550 5.7.1 policy\r\n", Reply{Code: 550, Enhanced: "5.7.1", Lines: []string{"first line", "5.7.1 policy"}}, nil},
		{"452 4.5.3\r\n", Reply{Code: 452, Enhanced: "4.5.3", Lines: []string{"4.5.3"}}, nil},
		{"550 4.1.1 class mismatch\r\n", Reply{Code: 550, Lines: []string{"4.1.1 class mismatch"}}, nil},
		{"550 5.1234.1 too long\r\n", Reply{Code: 550, Lines: []string{"5.1234.1 too long"}}, nil},
		{"550 5.1.1x\r\n", Reply{Code: 550, Lines: []string{"5.1.1x"}}, nil},
		{"", Reply{}, io.ErrUnexpectedEOF},
		{"250-a\r\n", Reply{}, io.ErrUnexpectedEOF},
		{"ok\r\n", Reply{}, ErrProtocol},
		{"600 x\r\n", Reply{}, ErrProtocol},
		{"260 x\r\n", Reply{}, ErrProtocol},
		{"2a0 x\r\n", Reply{}, ErrProtocol},
		{"250x\r\n", Reply{}, ErrProtocol},
		{"250-a\r\n251 b\r\n", Reply{}, ErrProtocol},
		{"250 " + strings.Repeat("x", 2000) + "\r\n", Reply{}, ErrProtocol},
		{strings.Repeat("250-x\r\n", 100) + "250 x\r\n", Reply{}, ErrProtocol},
	}
	for _, tc := range tests {
		got, err := readReplyString(tc.in)
		if !errors.Is(err, tc.err) || (tc.err == nil && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("%.40q: got %+v, %v; want %+v, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestReplyText(t *testing.T) {
	r := Reply{Code: 550, Enhanced: "5.1.1", Lines: []string{"5.1.1 no such", "5.1.1   user"}}
	if r.Text() != "no such; user" || r.String() != "550 5.1.1 no such; user" || r.Positive() {
		t.Errorf("Text %q String %q", r.Text(), r.String())
	}
}

func TestReplyTextPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"550 plain text\r\n", "plain text"},
		{"550 \x1b[31mred\x1b[0m\r\n", `\x1b[31mred\x1b[0m`},
		{"550 a\x00b\bc\rd\te\x7f\r\n", `a\x00b\x08c\x0dd\x09e\x7f`},
		{"550 caf\xc3\xa9 ok\r\n", "café ok"},
		{"550 bad \xff\xfe utf-8\r\n", `bad \xff\xfe utf-8`},
		{"550 \u202egnp.exe\r\n", `\u202egnp.exe`},
		{"550 tag \U000e0041\r\n", `tag \U000e0041`},
	}
	for _, tc := range tests {
		r, err := readReplyString(tc.in)
		if err != nil || len(r.Lines) != 1 || r.Lines[0] != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.in, r.Lines, err, tc.want)
		}
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"250 ok\r\n", "250-a\r\n250 5.0.0 b\r\n", "550 5.1.1 x\r\n", "421\r\n", "999 x\r\n", "250-\n250 \r\n",
		"550 \x1b[2J\x00\b\rfake\r\n", "250 caf\xc3\xa9 \xff \u202e\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r, err := readReplyString(in)
		if err != nil {
			if r.Code != 0 || r.Lines != nil {
				t.Fatalf("error with a reply: %+v", r)
			}
			return
		}
		if r.Code < 200 || r.Code > 559 || len(r.Lines) == 0 || len(r.Lines) > DefaultMaxReplyLines {
			t.Fatalf("bad reply %+v", r)
		}
		if r.Enhanced != "" && (r.Enhanced[0] != byte('0'+r.Code/100) || enhancedLen(r.Enhanced) != len(r.Enhanced)) {
			t.Fatalf("enhanced %q for code %d", r.Enhanced, r.Code)
		}
		for _, l := range r.Lines {
			// Escaping makes a line at most 6 times longer (\u2028 for 3 octets).
			if len(l) > 6*DefaultMaxReplyLineLength || !utf8.ValidString(l) {
				t.Fatalf("line %q", l)
			}
			for _, c := range l {
				if !unicode.IsPrint(c) {
					t.Fatalf("non-printing %U in line %q", c, l)
				}
			}
		}
	})
}
