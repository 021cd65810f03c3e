package report

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that Parse never panics and that what it returns keeps
// the package's promises, for any input. The corpus is every fixture under
// testdata/ plus testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.eml")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"Subject: x",
		"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n--b\nContent-Type: message/delivery-status\n\nFinal-Recipient: a\n--b--",
		"Content-Type: multipart/mixed; boundary=\"\"\n\n--\n",
		"Return-Path: <>\nFrom: MAILER-DAEMON\n\nHi. This is the qmail-send program.\n\n<a@b.c>:\n550 x\n",
		"Content-Type: text/html\n\n<script>",
		"Content-Type: text/plain; charset=x-bogus\nContent-Transfer-Encoding: quoted-printable\n\n=\x00=ZZ=",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseWith(bytes.NewReader(data), &Options{MaxSize: 1 << 20})
		if err != nil {
			if r != nil {
				t.Fatalf("a report and an error: %v", err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		checkReport(t, r)
		again, err := ParseWith(bytes.NewReader(data), &Options{MaxSize: 1 << 20})
		if err != nil || again.Kind != r.Kind || len(again.Recipients) != len(r.Recipients) || again.Text != r.Text {
			t.Fatalf("a second parse differs: %v", err)
		}
	})
}

// checkReport checks the invariants every Report keeps.
func checkReport(t *testing.T, r *Report) {
	t.Helper()
	if r.Kind < Unknown || r.Kind > AutoReply {
		t.Fatalf("Kind %d out of range", r.Kind)
	}
	if _, err := r.Kind.MarshalText(); err != nil {
		t.Fatal(err)
	}
	if len(r.Text) > MaxText || !utf8.ValidString(r.Text) {
		t.Fatalf("Text of %d bytes, valid UTF-8 %v", len(r.Text), utf8.ValidString(r.Text))
	}
	if !utf8.ValidString(r.Subject) {
		t.Fatalf("Subject %q is not valid UTF-8", r.Subject)
	}
	if (r.Feedback != nil) != (r.Kind == Feedback) {
		t.Fatalf("Feedback %v with Kind %v", r.Feedback, r.Kind)
	}
	if (r.AutoReplyReason != "") != (r.Kind == AutoReply) {
		t.Fatalf("AutoReplyReason %q with Kind %v", r.AutoReplyReason, r.Kind)
	}
	if len(r.Recipients) > 0 && r.Kind != DSN && r.Kind != Bounce {
		t.Fatalf("%d recipients with Kind %v", len(r.Recipients), r.Kind)
	}
	if r.NullSender && r.ReturnPath != "" {
		t.Fatalf("NullSender with ReturnPath %q", r.ReturnPath)
	}
	for _, x := range r.Recipients {
		if x.Action != strings.ToLower(x.Action) || x.DiagnosticType != strings.ToLower(x.DiagnosticType) {
			t.Fatalf("Action %q / DiagnosticType %q not lower case", x.Action, x.DiagnosticType)
		}
		if x.Status != "" && findStatus(x.Status) != x.Status {
			t.Fatalf("Status %q is not a normal enhanced status code", x.Status)
		}
		if x.Code != 0 && (x.Code < 200 || x.Code > 559) {
			t.Fatalf("Code %d", x.Code)
		}
	}
	if o := r.Original; o != nil && len(o.Header) == 0 {
		t.Fatal("an Original without header fields")
	}
	if len(r.Header) == 0 {
		t.Fatal("a Report without header fields")
	}
}

// TestFixtureInvariants runs the fuzz invariants over the fixtures, so
// that plain go test checks them too.
func TestFixtureInvariants(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Parse(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		checkReport(t, r)
	}
}
