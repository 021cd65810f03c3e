package mime_test

import (
	"bytes"
	"errors"
	"net/mail"
	"slices"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/mime"
)

func validMessage() *mime.Message {
	return &mime.Message{
		From:    mail.Address{Name: "Alice", Address: "alice@example.com"},
		To:      []mail.Address{{Address: "bob@example.org"}},
		Subject: "Hi",
		Text:    "Hello\n",
	}
}

// errWriter records whether anything was written.
type errWriter struct{ n int }

func (w *errWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// TestInvalid: bad input gets a *FieldError naming the field, matching the
// sentinel, and nothing is written.
func TestInvalid(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(m *mime.Message)
		target error
		field  string
	}{
		{"no from", func(m *mime.Message) { m.From = mail.Address{} }, mime.ErrNoFrom, "From"},
		{"no recipients", func(m *mime.Message) { m.To = nil }, mime.ErrNoRecipients, "To"},
		{"no body", func(m *mime.Message) { m.Text = "" }, mime.ErrNoBody, "Text"},
		{"from without @", func(m *mime.Message) { m.From.Address = "alice" }, mime.ErrInvalidAddress, "From"},
		{"from with brackets", func(m *mime.Message) { m.From.Address = "<alice@example.com>" }, mime.ErrInvalidAddress, "From"},
		{"to with space", func(m *mime.Message) { m.To[0].Address = "bo b@example.org" }, mime.ErrInvalidAddress, "To[0]"},
		{"to with CRLF", func(m *mime.Message) { m.To[0].Address = "bob@example.org\r\nBcc: x@y.z" }, mime.ErrInvalidAddress, "To[0]"},
		{"cc double dot", func(m *mime.Message) { m.Cc = []mail.Address{{Address: "a..b@example.org"}} }, mime.ErrInvalidAddress, "Cc[0]"},
		{"bcc bad domain", func(m *mime.Message) { m.Bcc = []mail.Address{{Address: "a@-bad-.example"}} }, mime.ErrInvalidAddress, "Bcc[0]"},
		{"reply-to empty domain", func(m *mime.Message) { m.ReplyTo = []mail.Address{{Address: "a@"}} }, mime.ErrInvalidAddress, "ReplyTo[0]"},
		{"local part 65", func(m *mime.Message) { m.To[0].Address = strings.Repeat("a", 65) + "@example.org" }, mime.ErrInvalidAddress, "To[0]"},
		{"domain 256", func(m *mime.Message) {
			m.To[0].Address = "a@" + strings.Repeat("abcdefghi.", 25) + "abcdef"
		}, mime.ErrInvalidAddress, "To[0]"},
		{"underscore domain", func(m *mime.Message) { m.To[0].Address = "a@foo_bar.example" }, mime.ErrInvalidAddress, "To[0]"},
		{"bad punycode", func(m *mime.Message) { m.To[0].Address = "a@xn--zz.example" }, mime.ErrInvalidAddress, "To[0]"},
		{"invalid utf-8 address", func(m *mime.Message) { m.To[0].Address = "a\xff@example.org" }, mime.ErrInvalidAddress, "To[0]"},
		{"display name LF", func(m *mime.Message) { m.To[0].Name = "Bob\nBcc: x@y.z" }, mime.ErrInvalidHeader, "To[0].Name"},
		{"display name NUL", func(m *mime.Message) { m.From.Name = "A\x00" }, mime.ErrInvalidHeader, "From.Name"},
		{"subject CR", func(m *mime.Message) { m.Subject = "Hi\rthere" }, mime.ErrInvalidHeader, "Subject"},
		{"subject invalid utf-8", func(m *mime.Message) { m.Subject = "\xc3(" }, mime.ErrInvalidHeader, "Subject"},
		{"header value CRLF", func(m *mime.Message) { m.Header = map[string][]string{"X-A": {"1\r\nBcc: x@y.z"}} }, mime.ErrInvalidHeader, "Header[X-A]"},
		{"header name space", func(m *mime.Message) { m.Header = map[string][]string{"X A": {"1"}} }, mime.ErrInvalidHeader, "Header[X A]"},
		{"header name colon", func(m *mime.Message) { m.Header = map[string][]string{"X:A": {"1"}} }, mime.ErrInvalidHeader, "Header[X:A]"},
		{"header name empty", func(m *mime.Message) { m.Header = map[string][]string{"": {"1"}} }, mime.ErrInvalidHeader, "Header[]"},
		{"header name non-ASCII", func(m *mime.Message) { m.Header = map[string][]string{"X-É": {"1"}} }, mime.ErrInvalidHeader, "Header[X-É]"},
		{"header name too long", func(m *mime.Message) {
			m.Header = map[string][]string{"X-" + strings.Repeat("a", 63): {"1"}}
		}, mime.ErrInvalidHeader, "Header[X-" + strings.Repeat("a", 63) + "]"},
		{"header Bcc", func(m *mime.Message) { m.Header = map[string][]string{"bcc": {"x@y.z"}} }, mime.ErrInvalidHeader, "Header[bcc]"},
		{"header MIME-Version", func(m *mime.Message) { m.Header = map[string][]string{"MIME-Version": {"1.0"}} }, mime.ErrInvalidHeader, "Header[MIME-Version]"},
		{"header Content-Type", func(m *mime.Message) { m.Header = map[string][]string{"Content-Type": {"text/html"}} }, mime.ErrInvalidHeader, "Header[Content-Type]"},
		{"header Subject", func(m *mime.Message) { m.Header = map[string][]string{"Subject": {"again"}} }, mime.ErrInvalidHeader, "Header[Subject]"},
		{"filename CR", func(m *mime.Message) {
			m.Attachments = []mime.Attachment{{Filename: "a\r.pdf", Data: []byte("x")}}
		}, mime.ErrInvalidHeader, "Attachments[0].Filename"},
		{"filename too long", func(m *mime.Message) {
			m.Attachments = []mime.Attachment{{Filename: strings.Repeat("é", 128), Data: []byte("x")}}
		}, mime.ErrInvalidHeader, "Attachments[0].Filename"},
		{"content-id LF", func(m *mime.Message) {
			m.Attachments = []mime.Attachment{{ContentID: "a\nb", Data: []byte("x")}}
		}, mime.ErrInvalidHeader, "Attachments[0].ContentID"},
		{"content-id space", func(m *mime.Message) {
			m.Attachments = []mime.Attachment{{ContentID: "a b", Data: []byte("x")}}
		}, mime.ErrInvalidHeader, "Attachments[0].ContentID"},
		{"content-id twice", func(m *mime.Message) {
			m.Attachments = []mime.Attachment{{ContentID: "a@b", Data: []byte("x")}, {ContentID: "<a@b>", Data: []byte("y")}}
		}, mime.ErrInvalidAttachment, "Attachments[1].ContentID"},
		{"content type bad", func(m *mime.Message) {
			m.Attachments = []mime.Attachment{{ContentType: "pdf", Data: []byte("x")}}
		}, mime.ErrInvalidAttachment, "Attachments[0].ContentType"},
		{"content type multipart", func(m *mime.Message) {
			m.Attachments = []mime.Attachment{{ContentType: "multipart/mixed; boundary=x", Data: []byte("x")}}
		}, mime.ErrInvalidAttachment, "Attachments[0].ContentType"},
		{"content type CRLF", func(m *mime.Message) {
			m.Attachments = []mime.Attachment{{ContentType: "text/plain\r\nX: y", Data: []byte("x")}}
		}, mime.ErrInvalidHeader, "Attachments[0].ContentType"},
		{"list-unsubscribe http", func(m *mime.Message) { m.ListUnsubscribe = "http://example.com/u" }, mime.ErrInvalidListUnsubscribe, "ListUnsubscribe"},
		{"list-unsubscribe javascript", func(m *mime.Message) { m.ListUnsubscribe = "javascript:alert(1)" }, mime.ErrInvalidListUnsubscribe, "ListUnsubscribe"},
		{"list-unsubscribe CRLF", func(m *mime.Message) { m.ListUnsubscribe = "https://e.example/\r\nX: y" }, mime.ErrInvalidListUnsubscribe, "ListUnsubscribe"},
		{"list-unsubscribe bracket", func(m *mime.Message) { m.ListUnsubscribe = "https://e.example/>, <x" }, mime.ErrInvalidListUnsubscribe, "ListUnsubscribe"},
		{"list-unsubscribe no host", func(m *mime.Message) { m.ListUnsubscribe = "https:///u" }, mime.ErrInvalidListUnsubscribe, "ListUnsubscribe"},
		{"message-id CRLF", func(m *mime.Message) { m.MessageID = "<a@b>\r\nX: y" }, mime.ErrInvalidHeader, "MessageID"},
		{"message-id space", func(m *mime.Message) { m.MessageID = "a b@c" }, mime.ErrInvalidHeader, "MessageID"},
		{"text invalid utf-8", func(m *mime.Message) { m.Text = "\xff" }, mime.ErrInvalidBody, "Text"},
		{"html invalid utf-8", func(m *mime.Message) { m.HTML = "<p>\xfe</p>" }, mime.ErrInvalidBody, "HTML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validMessage()
			tt.edit(m)
			err := m.Validate()
			if !errors.Is(err, tt.target) {
				t.Fatalf("Validate() = %v, want errors.Is %v", err, tt.target)
			}
			var fe *mime.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("field = %v, want %q", err, tt.field)
			}
			if !strings.HasPrefix(err.Error(), "mime: "+tt.field+": ") {
				t.Errorf("message %q does not name the field", err)
			}
			var w errWriter
			if n, err := m.WriteTo(&w); err == nil || n != 0 || w.n != 0 {
				t.Errorf("WriteTo wrote %d bytes, err %v", w.n, err)
			}
			if b, err := m.Bytes(); err == nil || b != nil {
				t.Errorf("Bytes = %q, %v", b, err)
			}
			dst := []byte("keep")
			if got, err := m.AppendTo(dst, nil); err == nil || !bytes.Equal(got, dst) {
				t.Errorf("AppendTo = %q, %v", got, err)
			}
		})
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		name string
		edit func(m *mime.Message)
		// raw is a line the header must hold, for addresses that
		// net/mail does not read back (quoted local parts come back
		// unquoted, address literals are refused).
		raw string
	}{
		{"attachment only", func(m *mime.Message) {
			m.Text = ""
			m.Attachments = []mime.Attachment{{Filename: "a.bin", Data: []byte{0, 1, 2}}}
		}, ""},
		{"bcc only", func(m *mime.Message) { m.Bcc, m.To = m.To, nil }, ""},
		{"quoted local part", func(m *mime.Message) { m.To[0].Address = `"john doe"@example.org` }, "\r\nTo: \"john doe\"@example.org\r\n"},
		{"address literal", func(m *mime.Message) { m.To[0].Address = "a@[IPv6:2001:DB8::1]" }, "\r\nTo: a@[IPv6:2001:db8::1]\r\n"},
		{"utf-8 local part", func(m *mime.Message) { m.To[0].Address = "δοκιμή@example.org" }, ""},
		{"message-id without brackets", func(m *mime.Message) { m.MessageID = "x.1@example.com" }, ""},
		{"empty header value", func(m *mime.Message) { m.Header = map[string][]string{"X-Empty": {""}} }, ""},
		{"long header name", func(m *mime.Message) {
			m.Header = map[string][]string{"X-" + strings.Repeat("n", 62): {strings.Repeat("word ", 40) + "end"}}
		}, ""},
		{"mailto unsubscribe", func(m *mime.Message) { m.ListUnsubscribe = "mailto:u@example.com" }, ""},
		{"local part 64", func(m *mime.Message) { m.To[0].Address = strings.Repeat("a", 64) + "@example.org" }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validMessage()
			tt.edit(m)
			raw, err := m.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if tt.raw != "" {
				checkWire(t, raw)
				if !bytes.Contains(raw, []byte(tt.raw)) {
					t.Fatalf("no %q in\n%s", tt.raw, raw)
				}
				return
			}
			roundTrip(t, m, raw)
		})
	}
}

func TestRecipients(t *testing.T) {
	m := validMessage()
	m.To = []mail.Address{{Address: "Bob@Example.ORG"}, {Address: "bob@example.org"}, {Address: "zoe@bücher.example"}}
	m.Cc = []mail.Address{{Address: "bob@EXAMPLE.org"}, {Address: "carol@example.com"}, {Address: "not an address"}}
	m.Bcc = []mail.Address{{Address: "zoe@xn--bcher-kva.example"}, {Address: "dave@example.net"}}
	got := m.Recipients()
	want := []string{"Bob@example.org", "bob@example.org", "zoe@xn--bcher-kva.example", "carol@example.com", "dave@example.net"}
	if !slices.Equal(got, want) {
		t.Errorf("Recipients() = %q, want %q", got, want)
	}
	raw, err := (&mime.Message{From: m.From, To: m.To[:1], Bcc: m.Bcc, Text: "x"}).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bytes.ToLower(raw), []byte("bcc")) || bytes.Contains(raw, []byte("dave@")) {
		t.Errorf("Bcc leaked into the message:\n%s", raw)
	}
}

func TestNeedsSMTPUTF8(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"bob@example.org", false},
		{"bob@bücher.example", false}, // A-label
		{"δοκιμή@example.org", true},
		{"not valid", false},
	}
	for _, tt := range tests {
		m := validMessage()
		m.Bcc = []mail.Address{{Address: tt.addr}}
		if got := m.NeedsSMTPUTF8(); got != tt.want {
			t.Errorf("NeedsSMTPUTF8 with %q = %v, want %v", tt.addr, got, tt.want)
		}
	}
	m := validMessage()
	m.From.Address = "jörg@example.de"
	if !m.NeedsSMTPUTF8() {
		t.Error("NeedsSMTPUTF8 ignores From")
	}
}

func TestNormalizeAddress(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Bob@Example.ORG", "Bob@example.org"},
		{"zoe@bücher.example", "zoe@xn--bcher-kva.example"},
		{"zoe@XN--BCHER-KVA.example", "zoe@xn--bcher-kva.example"},
		{"δοκιμή@παράδειγμα.δοκιμή", "δοκιμή@xn--hxajbheg2az3al.xn--jxalpdlp"},
		{`"a b"@example.com`, `"a b"@example.com`},
		// Quoted local parts are re-quoted minimally (RFC 5321 §4.1.2).
		{`"john"@example.com`, "john@example.com"},
		{`"john.smith"@example.com`, "john.smith@example.com"},
		{`"a\ b"@example.com`, `"a b"@example.com`},
		{`"a\"b"@example.com`, `"a\"b"@example.com`},
		{`"a\\b"@example.com`, `"a\\b"@example.com`},
		{`"a@b"@example.com`, `"a@b"@example.com`},
		{`"..."@example.com`, `"..."@example.com`},
		{`"jörg smith"@example.de`, `"jörg smith"@example.de`},
		{"a@[192.0.2.1]", "a@[192.0.2.1]"},
		{"a@b", "a@b"},
	}
	for _, tt := range tests {
		got, err := mime.NormalizeAddress(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeAddress(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "a", "@b", "a@", "a@b.", ".a@b", "a.@b", "a b@c", "<a@b>", "a@b@c",
		"a@[300.1.1.1]", "a@[IPv6:zz]", `"unterminated@b`, "a\r\n@b", "Name <a@b>",
		// Quoted, but nothing SMTP can carry: empty, tab, controls.
		`""@example.com`, "\"a\tb\"@example.com", "\"a\\\tb\"@example.com", "\"a\x7fb\"@example.com", `"a"b@example.com`} {
		if got, err := mime.NormalizeAddress(bad); !errors.Is(err, mime.ErrInvalidAddress) {
			t.Errorf("NormalizeAddress(%q) = %q, %v; want ErrInvalidAddress", bad, got, err)
		}
	}
}

func TestEnvelopeFrom(t *testing.T) {
	m := validMessage()
	m.From.Address = "News@Café.example"
	got, err := m.EnvelopeFrom()
	if err != nil || got != "News@xn--caf-dma.example" {
		t.Errorf("EnvelopeFrom = %q, %v", got, err)
	}
	m.From.Address = ""
	if _, err := m.EnvelopeFrom(); !errors.Is(err, mime.ErrNoFrom) {
		t.Errorf("EnvelopeFrom without From: %v", err)
	}
}

// TestDefaults: zero Date means now, empty MessageID a random id at From's
// domain, and two writes differ in Message-ID and boundaries.
func TestDefaults(t *testing.T) {
	m := validMessage()
	m.HTML = "<p>x</p>"
	a, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Error("two writes are identical: Message-ID and boundaries are not random")
	}
	if !bytes.Contains(a, []byte("@example.com>\r\n")) || !bytes.Contains(a, []byte("\r\nDate: ")) {
		t.Errorf("no Message-ID at From's domain or no Date:\n%s", a)
	}
	for _, want := range []string{"MIME-Version: 1.0\r\n", "multipart/alternative"} {
		if !bytes.Contains(a, []byte(want)) {
			t.Errorf("missing %q", want)
		}
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestRandFailure(t *testing.T) {
	b, err := validMessage().AppendTo(nil, &mime.WriteOptions{Rand: failReader{}})
	if err == nil || b != nil || !strings.Contains(err.Error(), "no entropy") {
		t.Fatalf("AppendTo with a failing Rand = %q, %v", b, err)
	}
}
