package mime_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	stdmime "mime"
	"net/mail"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"

	"github.com/mxrelay/mxrelay/mime"
)

// view is what a reader sees in a message: what expected() predicts from a
// Message and what decode() (go-message) or testdata/pycheck.py (Python's
// email package) read back from the bytes.
type view struct {
	Headers   []string            `json:"headers,omitempty"` // lower-case names, sorted
	Structure string              `json:"structure,omitempty"`
	Subject   string              `json:"subject,omitempty"`
	From      []addr              `json:"from,omitempty"`
	ReplyTo   []addr              `json:"reply_to,omitempty"`
	To        []addr              `json:"to,omitempty"`
	Cc        []addr              `json:"cc,omitempty"`
	Extra     map[string][]string `json:"extra,omitempty"` // lower-case name → values
	Unsub     string              `json:"list_unsubscribe,omitempty"`
	Text      string              `json:"text,omitempty"`
	HTML      string              `json:"html,omitempty"`
	Atts      []att               `json:"attachments,omitempty"`
	// SMTPUTF8 tells pycheck.py to accept Python's NonASCIILocalPartDefect.
	SMTPUTF8 bool `json:"smtputf8,omitempty"`
}

type addr struct {
	Name    string `json:"name,omitempty"`
	Address string `json:"address,omitempty"`
}

type att struct {
	Filename    string `json:"filename,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Data        []byte `json:"data,omitempty"`
	ContentID   string `json:"content_id,omitempty"`
	Inline      bool   `json:"inline,omitempty"`
}

// expected predicts the view of a valid message from its fields alone.
func expected(t testing.TB, m *mime.Message) view {
	t.Helper()
	v := view{Subject: m.Subject, Extra: map[string][]string{}, Unsub: m.ListUnsubscribe}
	h := []string{"from", "date", "message-id", "mime-version", "content-type"}
	addrs := func(name string, list []mail.Address) []addr {
		var out []addr
		for _, a := range list {
			n, err := mime.NormalizeAddress(a.Address)
			if err != nil {
				t.Fatalf("expected: %v", err)
			}
			out = append(out, addr{a.Name, n})
		}
		if len(list) > 0 && name != "" {
			h = append(h, name)
		}
		return out
	}
	v.From = addrs("", []mail.Address{m.From})
	v.ReplyTo = addrs("reply-to", m.ReplyTo)
	v.To = addrs("to", m.To)
	v.Cc = addrs("cc", m.Cc)
	if m.Subject != "" {
		h = append(h, "subject")
	}
	if m.ListUnsubscribe != "" {
		h = append(h, "list-unsubscribe")
		if strings.HasPrefix(strings.ToLower(m.ListUnsubscribe), "https:") {
			h = append(h, "list-unsubscribe-post")
		}
	}
	for name, values := range m.Header {
		for _, val := range values {
			h = append(h, strings.ToLower(name))
			v.Extra[strings.ToLower(name)] = append(v.Extra[strings.ToLower(name)], val)
		}
	}
	v.Text, v.HTML = normBody(m.Text), normBody(m.HTML)
	text := func() string {
		switch {
		case m.Text != "" && m.HTML != "":
			return "multipart/alternative(text/plain,%s)"
		case m.HTML != "":
			return "%s"
		case m.Text != "":
			return "text/plain"
		}
		return ""
	}()
	html := "text/html"
	var related, mixed []string
	ctype := func(a mime.Attachment) string {
		if a.ContentType == "" {
			if t := stdmime.TypeByExtension(path.Ext(a.Filename)); t != "" {
				a.ContentType = t
			} else {
				return "application/octet-stream"
			}
		}
		mt, _, _ := stdmime.ParseMediaType(a.ContentType)
		return mt
	}
	for _, a := range m.Attachments {
		ct := ctype(a)
		if a.ContentID != "" && m.HTML != "" {
			related = append(related, ct)
		}
	}
	if len(related) > 0 {
		html = "multipart/related(text/html," + strings.Join(related, ",") + ")"
	}
	if strings.Contains(text, "%s") {
		text = fmt.Sprintf(text, html)
	}
	for _, a := range m.Attachments {
		v.Atts = append(v.Atts, att{a.Filename, ctype(a), a.Data, a.ContentID, a.ContentID != ""})
	}
	// Attachments are read back in document order: related ones first.
	slices.SortStableFunc(v.Atts, func(a, b att) int {
		ra, rb := a.ContentID != "" && m.HTML != "", b.ContentID != "" && m.HTML != ""
		switch {
		case ra && !rb:
			return -1
		case rb && !ra:
			return 1
		}
		return 0
	})
	for _, a := range m.Attachments {
		if a.ContentID == "" || m.HTML == "" {
			mixed = append(mixed, ctype(a))
		}
	}
	v.Structure = text
	if len(mixed) > 0 {
		parts := mixed
		if text != "" {
			parts = append([]string{text}, mixed...)
		}
		v.Structure = "multipart/mixed(" + strings.Join(parts, ",") + ")"
	}
	if !strings.HasPrefix(v.Structure, "multipart/") {
		h = append(h, "content-transfer-encoding")
	}
	slices.Sort(h)
	v.Headers = h
	return v
}

// normBody is what a reader gets back from Text or HTML: LF line breaks and
// a final line break.
func normBody(s string) string {
	if s == "" {
		return ""
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}

// checkWire checks the transport rules: every line ends in CRLF, no line
// is over 998 octets, no bare CR or LF, no NUL.
func checkWire(t testing.TB, raw []byte) {
	t.Helper()
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		t.Fatalf("message does not end in CRLF")
	}
	for i, line := range bytes.Split(raw[:len(raw)-2], []byte("\r\n")) {
		if len(line) > 998 {
			t.Fatalf("line %d is %d octets", i+1, len(line))
		}
		if j := bytes.IndexAny(line, "\r\n\x00"); j >= 0 {
			t.Fatalf("line %d has a bare CR, LF or NUL at %d: %q", i+1, j, line)
		}
	}
}

// decode reads raw back with go-message.
func decode(t testing.TB, raw []byte) view {
	t.Helper()
	e, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("go-message: %v", err)
	}
	v := view{Extra: map[string][]string{}}
	own := map[string]bool{"from": true, "reply-to": true, "to": true, "cc": true, "subject": true,
		"date": true, "message-id": true, "mime-version": true, "content-type": true,
		"content-transfer-encoding": true, "list-unsubscribe": true, "list-unsubscribe-post": true}
	fields := e.Header.Fields()
	for fields.Next() {
		k := strings.ToLower(fields.Key())
		v.Headers = append(v.Headers, k)
		if !own[k] {
			txt, err := fields.Text()
			if err != nil {
				t.Fatalf("header %s: %v", k, err)
			}
			v.Extra[k] = append(v.Extra[k], txt)
		}
	}
	slices.Sort(v.Headers)
	h := gomail.Header{Header: e.Header}
	if v.Subject, err = h.Subject(); err != nil {
		t.Fatalf("Subject: %v", err)
	}
	if _, err := h.Date(); err != nil {
		t.Fatalf("Date: %v", err)
	}
	if id, err := h.MessageID(); err != nil || id == "" {
		t.Fatalf("Message-ID %q: %v", id, err)
	}
	if u := e.Header.Get("List-Unsubscribe"); u != "" {
		v.Unsub = strings.TrimSuffix(strings.TrimPrefix(u, "<"), ">")
		if p := e.Header.Get("List-Unsubscribe-Post"); p != "" && p != "List-Unsubscribe=One-Click" {
			t.Fatalf("List-Unsubscribe-Post: %q", p)
		}
	}
	for _, f := range []struct {
		key string
		dst *[]addr
	}{{"From", &v.From}, {"Reply-To", &v.ReplyTo}, {"To", &v.To}, {"Cc", &v.Cc}} {
		if e.Header.Get(f.key) == "" {
			continue
		}
		list, err := h.AddressList(f.key)
		if err != nil {
			t.Fatalf("%s %q: %v", f.key, e.Header.Get(f.key), err)
		}
		for _, a := range list {
			*f.dst = append(*f.dst, addr{a.Name, a.Address})
		}
	}
	v.Structure = walk(t, e, &v, false)
	return v
}

// walk reads an entity's body into v and returns its structure.
func walk(t testing.TB, e *message.Entity, v *view, inAttachment bool) string {
	t.Helper()
	mt, _, err := e.Header.ContentType()
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	if mr := e.MultipartReader(); mr != nil {
		var parts []string
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", mt, err)
			}
			parts = append(parts, walk(t, p, v, false))
		}
		return mt + "(" + strings.Join(parts, ",") + ")"
	}
	body, err := io.ReadAll(e.Body)
	if err != nil {
		t.Fatalf("%s body: %v", mt, err)
	}
	// The standard library, not go-message, which also decodes RFC 2047
	// inside parameters and so turns a file name "=?utf-8?q?x?=" into "x".
	disp, dparams, _ := stdmime.ParseMediaType(e.Header.Get("Content-Disposition"))
	switch {
	case disp == "" && mt == "text/plain" && v.Text == "":
		v.Text = strings.ReplaceAll(string(body), "\r\n", "\n")
	case disp == "" && mt == "text/html" && v.HTML == "":
		v.HTML = strings.ReplaceAll(string(body), "\r\n", "\n")
	default:
		cid := strings.TrimSuffix(strings.TrimPrefix(e.Header.Get("Content-Id"), "<"), ">")
		v.Atts = append(v.Atts, att{dparams["filename"], mt, body, cid, disp == "inline"})
	}
	return mt
}

func diffViews(want, got view) string {
	w, _ := json.Marshal(want)
	g, _ := json.Marshal(got)
	if bytes.Equal(w, g) {
		return ""
	}
	return fmt.Sprintf("\nwant %s\n got %s", w, g)
}

// roundTrip writes m and checks the bytes against expected(m).
func roundTrip(t testing.TB, m *mime.Message, raw []byte) {
	t.Helper()
	checkWire(t, raw)
	if d := diffViews(expected(t, m), decode(t, raw)); d != "" {
		t.Fatalf("read back differs:%s\nmessage:\n%s", d, raw)
	}
}
