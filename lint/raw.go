package lint

import (
	"bytes"
	"io"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // charsets other than UTF-8 and ASCII
	"github.com/emersion/go-message/mail"
)

// maxDepth bounds the nesting of multiparts that Raw looks into.
const maxDepth = 20

// Raw checks a written message (RFC 5322 / MIME, as sent) and returns its
// findings in rule order; o may be nil. Transfer encodings and charsets
// are decoded. A message whose header cannot be read gets the single
// finding "unreadable".
func Raw(data []byte, o *Options) (out []Finding) {
	v, err := parseRaw(data)
	if err != "" {
		return []Finding{{
			Rule:     ruleUnreadable,
			Severity: Warning,
			Message:  "The message cannot be parsed: " + quote(err) + ".",
			Mirrors:  "receiving servers reject or quarantine messages they cannot parse",
		}}
	}
	return check(v, o)
}

// parseRaw reads data into a view, or returns why it cannot.
func parseRaw(data []byte) (v *view, reason string) {
	defer func() {
		// go-message is not ours: a panic in it is reported, not passed on.
		if r := recover(); r != nil {
			v, reason = nil, "parser failure"
		}
	}()
	e, err := message.Read(bytes.NewReader(data))
	if e == nil {
		if err == nil {
			return nil, "no message"
		}
		return nil, err.Error()
	}
	v = &view{size: len(data)}
	mh := mail.Header{Header: e.Header}
	if s, err := mh.Subject(); err == nil {
		v.subject = s
	} else {
		v.subject = e.Header.Get("Subject")
	}
	v.listUnsub = strings.TrimSpace(e.Header.Get("List-Unsubscribe")) != ""
	v.listID = strings.TrimSpace(e.Header.Get("List-Id")) != ""
	var hasText bool
	walkParts(e, 0, func(p *message.Entity) {
		t, _, _ := p.Header.ContentType()
		if strings.TrimSpace(p.Header.Get("Content-Type")) == "" {
			t = "text/plain" // RFC 2045 §5.2
		}
		disp, _, _ := p.Header.ContentDisposition()
		body := func() string {
			b, _ := io.ReadAll(p.Body)
			return string(b)
		}
		switch {
		case disp != "attachment" && t == "text/plain" && !hasText:
			v.text, hasText = body(), true
		case disp != "attachment" && t == "text/html" && !v.hasHTML:
			v.html, v.hasHTML = body(), true
		default:
			v.others++
		}
	})
	return v, ""
}

// walkParts calls f for each leaf part of e, in order.
func walkParts(e *message.Entity, depth int, f func(*message.Entity)) {
	mr := e.MultipartReader()
	if mr == nil {
		t, _, _ := e.Header.ContentType()
		if strings.HasPrefix(t, "multipart/") {
			return // without a boundary: nothing readable
		}
		f(e)
		return
	}
	if depth >= maxDepth {
		return
	}
	for {
		p, err := mr.NextPart()
		if p == nil || err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			return
		}
		walkParts(p, depth+1, f)
	}
}
