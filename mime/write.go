package mime

import (
	"net/mail"
	"time"
)

// The MIME framing is written here by hand rather than through go-message's
// message.Writer, for three reasons: go-message folds header values its own
// way (it leaves long encoded subjects on one line and would re-fold our
// encoded-words), its 7bit/8bit writers insert line breaks that change
// content, and building one pre-sized buffer without intermediate writers is
// what makes the package several times faster than other Go mail builders
// (see bench/mime). The output is checked against go-message's reader and
// Python's email package in the tests.

// Boundary suffixes: one per nesting level, so boundaries differ even if the
// random token does not.
const (
	mixedSuffix   = 'm'
	altSuffix     = 'a'
	relatedSuffix = 'r'
)

func (p *plan) appendMessage(dst []byte, m *Message) []byte {
	if cap(dst)-len(dst) < p.size {
		dst = append(make([]byte, 0, len(dst)+p.size), dst...)
	}
	dst = appendAddressHeader(dst, "From", []mail.Address{m.From}, []addrSpec{p.from})
	if len(p.replyTo) > 0 {
		dst = appendAddressHeader(dst, "Reply-To", m.ReplyTo, p.replyTo)
	}
	if len(p.to) > 0 {
		dst = appendAddressHeader(dst, "To", m.To, p.to)
	}
	if len(p.cc) > 0 {
		dst = appendAddressHeader(dst, "Cc", m.Cc, p.cc)
	}
	if m.Subject != "" {
		dst = appendUnstructured(dst, "Subject", m.Subject)
	}
	dst = append(dst, "Date: "...)
	dst = p.date.AppendFormat(dst, time.RFC1123Z)
	dst = append(dst, "\r\nMessage-ID: "...)
	dst = append(dst, p.msgID...)
	dst = append(dst, "\r\n"...)
	if m.ListUnsubscribe != "" {
		dst = append(dst, "List-Unsubscribe: <"...)
		dst = append(dst, m.ListUnsubscribe...)
		dst = append(dst, ">\r\n"...)
		if len(m.ListUnsubscribe) > 6 && (m.ListUnsubscribe[0]|0x20) == 'h' {
			// RFC 8058 §3.1: one-click unsubscription for HTTPS URIs.
			dst = append(dst, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"...)
		}
	}
	for _, name := range p.extra {
		for _, v := range m.Header[name] {
			dst = appendUnstructured(dst, name, v)
		}
	}
	dst = append(dst, "MIME-Version: 1.0\r\n"...)
	return p.appendEntity(dst, m)
}

// appendEntity writes the body structure: multipart/mixed outermost when
// there are attachments, then multipart/related around the HTML when there
// are inline parts, multipart/alternative when there are Text and HTML.
func (p *plan) appendEntity(dst []byte, m *Message) []byte {
	if p.attach == 0 {
		return p.appendBody(dst, m)
	}
	dst = p.appendMultipartHeader(dst, "mixed", mixedSuffix)
	hasBody := m.Text != "" || m.HTML != ""
	if hasBody {
		dst = p.appendDelimiter(dst, mixedSuffix, true)
		dst = p.appendBody(dst, m)
	}
	for i := range p.atts {
		if p.atts[i].related {
			continue
		}
		dst = p.appendDelimiter(dst, mixedSuffix, !hasBody && i == 0)
		dst = appendAttachment(dst, &p.atts[i], m.Attachments[i].Data)
	}
	return p.appendClose(dst, mixedSuffix)
}

// appendBody writes Text and HTML (with the inline parts), or nothing when
// the message has attachments only (then only multipart/mixed is written).
func (p *plan) appendBody(dst []byte, m *Message) []byte {
	switch {
	case m.Text != "" && m.HTML != "":
		dst = p.appendMultipartHeader(dst, "alternative", altSuffix)
		dst = p.appendDelimiter(dst, altSuffix, true)
		dst = appendTextPart(dst, "plain", m.Text, p.text)
		dst = p.appendDelimiter(dst, altSuffix, false)
		dst = p.appendHTML(dst, m)
		return p.appendClose(dst, altSuffix)
	case m.HTML != "":
		return p.appendHTML(dst, m)
	default:
		return appendTextPart(dst, "plain", m.Text, p.text)
	}
}

func (p *plan) appendHTML(dst []byte, m *Message) []byte {
	if p.inline == 0 {
		return appendTextPart(dst, "html", m.HTML, p.html)
	}
	// RFC 2387: the root (the HTML) first, then the parts it refers to.
	dst = p.appendMultipartHeader(dst, "related", relatedSuffix)
	dst = p.appendDelimiter(dst, relatedSuffix, true)
	dst = appendTextPart(dst, "html", m.HTML, p.html)
	for i := range p.atts {
		if p.atts[i].related {
			dst = p.appendDelimiter(dst, relatedSuffix, false)
			dst = appendAttachment(dst, &p.atts[i], m.Attachments[i].Data)
		}
	}
	return p.appendClose(dst, relatedSuffix)
}

func (p *plan) appendBoundary(dst []byte, suffix byte) []byte {
	dst = append(dst, "=_"...)
	dst = append(dst, p.token[:]...)
	return append(dst, '_', suffix)
}

func (p *plan) appendMultipartHeader(dst []byte, subtype string, suffix byte) []byte {
	dst = append(dst, "Content-Type: multipart/"...)
	dst = append(dst, subtype...)
	dst = append(dst, ";\r\n boundary=\""...)
	dst = p.appendBoundary(dst, suffix)
	return append(dst, "\"\r\n\r\n"...)
}

// appendDelimiter writes a boundary delimiter line (RFC 2046 §5.1.1). Every
// part ends in CRLF; the delimiter's own CRLF follows it, except before the
// first part, where the (empty) preamble ends.
func (p *plan) appendDelimiter(dst []byte, suffix byte, first bool) []byte {
	if !first {
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "--"...)
	dst = p.appendBoundary(dst, suffix)
	return append(dst, "\r\n"...)
}

func (p *plan) appendClose(dst []byte, suffix byte) []byte {
	dst = append(dst, "\r\n--"...)
	dst = p.appendBoundary(dst, suffix)
	return append(dst, "--\r\n"...)
}

func appendTextPart(dst []byte, subtype, s string, st textStats) []byte {
	enc := st.enc
	dst = append(dst, "Content-Type: text/"...)
	dst = append(dst, subtype...)
	dst = append(dst, "; charset=utf-8\r\nContent-Transfer-Encoding: "...)
	dst = append(dst, enc.String()...)
	dst = append(dst, "\r\n\r\n"...)
	if enc == cte7bit {
		return append7bit(dst, s, st.crlf)
	}
	return appendQP(dst, s)
}

func appendAttachment(dst []byte, a *attPlan, data []byte) []byte {
	dst = append(dst, "Content-Type: "...)
	dst = append(dst, a.contentType...)
	dst = append(dst, "\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: "...)
	dst = append(dst, a.disposition...)
	if a.contentID != "" {
		dst = append(dst, "\r\nContent-ID: <"...)
		dst = append(dst, a.contentID...)
		dst = append(dst, '>')
	}
	dst = append(dst, "\r\n\r\n"...)
	return appendBase64(dst, data)
}
