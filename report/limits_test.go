package report

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// endless yields 'a' lines forever, to show that Parse stops at its limit.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		if i%64 == 63 {
			p[i] = '\n'
		} else {
			p[i] = 'a'
		}
	}
	e.n += int64(len(p))
	return len(p), nil
}

func TestTooLarge(t *testing.T) {
	msg := "Subject: hello\r\n\r\n" + strings.Repeat("x", 100)
	if _, err := ParseWith(strings.NewReader(msg), &Options{MaxSize: int64(len(msg))}); err != nil {
		t.Fatalf("message of exactly MaxSize: %v", err)
	}
	_, err := ParseWith(strings.NewReader(msg), &Options{MaxSize: int64(len(msg) - 1)})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte over MaxSize: err = %v, want ErrTooLarge", err)
	}
	// The default limit, on a reader that never ends.
	src := &endless{}
	if _, err := Parse(io.MultiReader(strings.NewReader("Subject: x\r\n\r\n"), src)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("endless input: err = %v, want ErrTooLarge", err)
	}
	if src.n > DefaultMaxSize+64<<10 {
		t.Errorf("read %d bytes of an endless reader, limit %d", src.n, DefaultMaxSize)
	}
	if !strings.HasPrefix(ErrTooLarge.Error(), "report: ") || !strings.HasPrefix(ErrMalformed.Error(), "report: ") {
		t.Error("sentinel messages must start with the package name")
	}
}

func TestMalformed(t *testing.T) {
	for _, in := range []string{"", "\r\n", "\r\n\r\nbody only", "hello world\n", "   \n", "no colon here\nnor here\n"} {
		r, err := Parse(strings.NewReader(in))
		if !errors.Is(err, ErrMalformed) || r != nil {
			t.Errorf("Parse(%q) = %v, %v; want nil, ErrMalformed", in, r, err)
		}
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Parse(io.MultiReader(strings.NewReader("Subject: x\r\n"), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || errors.Is(err, ErrMalformed) || !strings.HasPrefix(err.Error(), "report: ") {
		t.Fatalf("err = %v, want the read error wrapped", err)
	}
	// A reader that returns data together with EOF.
	r, err := Parse(iotest.DataErrReader(strings.NewReader("Subject: x\r\n\r\nhi")))
	if err != nil || r.Subject != "x" || r.Text != "hi" {
		t.Fatalf("DataErrReader: %+v, %v", r, err)
	}
	r, err = Parse(iotest.OneByteReader(strings.NewReader("Subject: y\r\n\r\nbody")))
	if err != nil || r.Subject != "y" || r.Text != "body" {
		t.Fatalf("OneByteReader: %+v, %v", r, err)
	}
}

func TestHeaderOnly(t *testing.T) {
	r, err := Parse(strings.NewReader("From: Someone <a@Example.COM>\r\nSubject: hi"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind != Unknown || r.From != "a@example.com" || r.Subject != "hi" || r.Text != "" || r.Original != nil {
		t.Errorf("header only: %+v", r)
	}
	r, err = Parse(strings.NewReader("Auto-Submitted: auto-generated\n"))
	if err != nil || r.Kind != AutoReply || r.AutoReplyReason != "Auto-Submitted: auto-generated" {
		t.Errorf("header-only auto-reply: %+v, %v", r, err)
	}
	r, err = Parse(strings.NewReader("Auto-Submitted: no\nSubject: hello\n\nhi"))
	if err != nil || r.Kind != Unknown {
		t.Errorf("Auto-Submitted: no: %+v, %v", r, err)
	}
}

func TestMboxLine(t *testing.T) {
	r, err := Parse(strings.NewReader("From MAILER-DAEMON Tue Nov 14 22:13:21 2023\nReturn-Path: <>\nSubject: x\n\nhi"))
	if err != nil || !r.NullSender || r.Subject != "x" {
		t.Fatalf("%+v, %v", r, err)
	}
}

// A DSN without per-recipient groups falls back to X-Failed-Recipients.
func TestDSNFailedRecipientsFallback(t *testing.T) {
	msg := "Return-Path: <>\r\n" +
		"From: Mail Delivery System <Mailer-Daemon@mx.example.org>\r\n" +
		"X-Failed-Recipients: a@example.org,\r\n b@Example.ORG\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n" +
		"\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n" +
		"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n" +
		"--b--\r\n"
	r, err := Parse(strings.NewReader(msg))
	if err != nil || r.Kind != DSN {
		t.Fatalf("%+v, %v", r, err)
	}
	if len(r.Recipients) != 2 || r.Recipients[0].FinalRecipient != "a@example.org" ||
		r.Recipients[1].FinalRecipient != "b@example.org" || r.Recipients[1].Action != "failed" {
		t.Errorf("recipients = %+v", r.Recipients)
	}
	// Declared as a DSN but with no status part at all: still a DSN.
	msg = "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n" +
		"\r\n--b\r\nContent-Type: text/plain\r\n\r\nsomething failed\r\n--b--\r\n"
	r, err = Parse(strings.NewReader(msg))
	if err != nil || r.Kind != DSN || len(r.Recipients) != 0 || r.Text != "something failed" {
		t.Errorf("DSN without status part: %+v, %v", r, err)
	}
}

// A report larger than detachSize must not keep the input alive through
// its strings; its content must be the same either way.
func TestDetach(t *testing.T) {
	b, err := readFixture("postfix-failed.eml")
	if err != nil {
		t.Fatal(err)
	}
	small, err := Parse(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Replace(string(b), "\r\nX-Campaign:", "\r\nX-Padding: "+strings.Repeat("p", detachSize)+"\r\nX-Campaign:", 1)
	large, err := Parse(strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	if large.Original == nil || large.Original.Header.Get("X-Campaign") != "november-offers" ||
		large.Recipients[0].DiagnosticCode != small.Recipients[0].DiagnosticCode || large.Text != small.Text {
		t.Errorf("detached report differs: %+v", large)
	}
}

// A multipart/report whose Content-Type lost its boundary parameter.
func TestGuessBoundary(t *testing.T) {
	msg := "Content-Type: multipart/report; report-type=delivery-status\r\n\r\n" +
		"--XYZ\r\nContent-Type: text/plain\r\n\r\nfailed\r\n" +
		"--XYZ\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; a.example\r\n\r\n" +
		"Final-Recipient: rfc822; x@b.example\r\nAction: failed\r\nStatus: 5.1.1\r\n--XYZ--\r\n"
	r, err := Parse(strings.NewReader(msg))
	if err != nil || r.Kind != DSN || len(r.Recipients) != 1 || r.Recipients[0].Status != "5.1.1" || r.Text != "failed" {
		t.Fatalf("%+v, %v", r, err)
	}
}

func TestRecipientLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; a.example\r\n")
	for i := 0; i < 1500; i++ {
		b.WriteString("\r\nFinal-Recipient: rfc822; x@b.example\r\nAction: failed\r\n")
	}
	r, err := Parse(strings.NewReader(b.String()))
	if err != nil || r.Kind != DSN || len(r.Recipients) != maxRecipients {
		t.Fatalf("%d recipients, %v", len(r.Recipients), err)
	}
}

// RFC 6533: message/global-delivery-status, utf-8 addresses and a
// message/global-headers part.
func TestGlobalDSN(t *testing.T) {
	msg := "Content-Type: multipart/report; report-type=global-delivery-status; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nÉchec\r\n" +
		"--b\r\nContent-Type: message/global-delivery-status\r\n\r\nReporting-MTA: dns; a.example\r\n\r\n" +
		"Original-Recipient: utf-8; j\\x{00F6}rg@b.example\r\nFinal-Recipient: utf-8; jörg@B.example\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"--b\r\nContent-Type: message/global-headers\r\n\r\nMessage-ID: <ü@a.example>\r\nSubject: Grüße\r\n--b--\r\n"
	r, err := Parse(strings.NewReader(msg))
	if err != nil || r.Kind != DSN || len(r.Recipients) != 1 {
		t.Fatalf("%+v, %v", r, err)
	}
	if x := r.Recipients[0]; x.FinalRecipient != "jörg@b.example" || x.OriginalRecipient != "jörg@b.example" {
		t.Errorf("recipient = %+v", x)
	}
	if r.Original == nil || r.Original.MessageID != "ü@a.example" || r.Original.Subject != "Grüße" || r.Text != "Échec" {
		t.Errorf("original = %+v, text %q", r.Original, r.Text)
	}
}

// An ARF report whose fields sit in a text/plain part, and one with no
// fields part at all: both are Feedback.
func TestFeedbackLenient(t *testing.T) {
	msg := "Content-Type: multipart/report; report-type=\"Feedback-Report\"; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nFEEDBACK-TYPE: Not-Spam\r\nIncidents: 3\r\nReported-Domain: A.Example.\r\nSource-IP: [192.0.2.9]\r\n" +
		"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <m@a.example>\r\n--b--\r\n"
	r, err := Parse(strings.NewReader(msg))
	if err != nil || r.Kind != Feedback {
		t.Fatalf("%+v, %v", r, err)
	}
	f := r.Feedback
	if f.FeedbackType != "not-spam" || f.Incidents != 3 || len(f.ReportedDomain) != 1 || f.ReportedDomain[0] != "a.example" ||
		f.SourceIP != "192.0.2.9" || r.Original == nil || r.Original.MessageID != "m@a.example" || r.Text != "A complaint." {
		t.Errorf("feedback = %+v, original %+v, text %q", f, r.Original, r.Text)
	}
	msg = "Content-Type: multipart/report; report-type=feedback-report; boundary=b\r\n\r\n--b\r\n\r\nA complaint.\r\n--b--\r\n"
	if r, err := Parse(strings.NewReader(msg)); err != nil || r.Kind != Feedback || r.Feedback == nil {
		t.Errorf("ARF without fields: %+v, %v", r, err)
	}
}

func TestTextLimit(t *testing.T) {
	body := strings.Repeat("é", MaxText) // two bytes each
	r, err := Parse(strings.NewReader("Content-Type: text/plain; charset=utf-8\r\n\r\n" + body))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Text) != MaxText || !strings.HasPrefix(body, r.Text) {
		t.Errorf("Text is %d bytes, want %d cut on a character boundary", len(r.Text), MaxText)
	}
	r, err = Parse(strings.NewReader("Content-Type: text/plain\r\n\r\nx" + strings.Repeat("é", MaxText)))
	if err != nil || len(r.Text) != MaxText-1 {
		t.Errorf("odd cut: %d bytes, %v", len(r.Text), err)
	}
	// Base64 text in ISO-8859-1, decoded.
	r, err = Parse(strings.NewReader("Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\nR3L832U=\r\n"))
	if err != nil || r.Text != "Grüße" {
		t.Errorf("base64 latin-1: %q, %v", r.Text, err)
	}
	// Broken quoted-printable still decodes.
	r, err = Parse(strings.NewReader("Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nsoft=\r\nbreak =3D ok\x01 =ZZ\r\n"))
	if err != nil || !strings.HasPrefix(r.Text, "softbreak = ok") {
		t.Errorf("broken QP: %q, %v", r.Text, err)
	}
}
