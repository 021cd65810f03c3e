package smtpclient

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
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

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"250 ok\r\n", "250-a\r\n250 5.0.0 b\r\n", "550 5.1.1 x\r\n", "421\r\n", "999 x\r\n", "250-\n250 \r\n"} {
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
			if len(l) > DefaultMaxReplyLineLength || strings.ContainsAny(l, "\n") {
				t.Fatalf("line %q", l)
			}
		}
	})
}
