package report

import (
	"fmt"
	"io"
	"strings"
)

// Parse reads one message from r and says what it is. It is
// ParseWith(r, nil).
func Parse(r io.Reader) (*Report, error) {
	return ParseWith(r, nil)
}

// ParseWith reads one message from r, at most o.MaxSize bytes of it, and
// says what it is. A message that matches no Kind is a Report of Kind
// Unknown, not an error; the errors are ErrTooLarge, ErrMalformed (no
// header at all) and a read error from r, wrapped. ParseWith does not
// close r, and it reads r to its end.
func ParseWith(r io.Reader, o *Options) (*Report, error) {
	limit := int64(DefaultMaxSize)
	if o != nil && o.MaxSize > 0 {
		limit = o.MaxSize
	}
	s, err := readAll(r, limit)
	if err != nil {
		return nil, err
	}
	return parse(s)
}

// readAll reads r to its end, or fails with ErrTooLarge past limit bytes.
func readAll(r io.Reader, limit int64) (string, error) {
	size := 4096
	if l, ok := r.(interface{ Len() int }); ok {
		n := l.Len() // bytes.Reader, strings.Reader, bytes.Buffer
		if int64(n) > limit {
			return "", ErrTooLarge
		}
		if wt, ok := r.(io.WriterTo); ok {
			// One copy, straight into the string.
			var b strings.Builder
			b.Grow(n)
			if _, err := wt.WriteTo(&b); err != nil {
				return "", fmt.Errorf("report: read: %w", err)
			}
			if int64(b.Len()) > limit {
				return "", ErrTooLarge
			}
			return b.String(), nil
		}
		size = n + 1
	}
	if int64(size) > limit+1 {
		size = int(limit + 1)
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		room := buf[len(buf):cap(buf)]
		if max := limit + 1 - int64(len(buf)); int64(len(room)) > max {
			room = room[:max]
		}
		n, err := r.Read(room)
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return "", ErrTooLarge
		}
		if err == io.EOF {
			return string(buf), nil
		}
		if err != nil {
			return "", fmt.Errorf("report: read: %w", err)
		}
	}
}

// detachSize is the input size above which a Report's strings are copied
// out of the input, so that keeping a Report does not keep a large message
// in memory. Below it they share the input's memory.
const detachSize = 64 << 10

// parser holds what the recognisers share while they look at one message.
type parser struct {
	rep *Report
	t   *tree
}

func parse(s string) (*Report, error) {
	if strings.HasPrefix(s, "From ") {
		// An mbox separator line ("From sender date") before the header.
		_, next := nextLine(s, 0)
		s = s[next:]
	}
	h, body := parseBlock(s, topMode)
	if len(h) == 0 {
		return nil, ErrMalformed
	}
	p := &parser{rep: &Report{Header: h}, t: scan(h, body)}
	p.envelope()
	switch {
	case p.dsn():
		p.rep.Kind = DSN
	case p.textBounce():
		p.rep.Kind = Bounce
	case p.feedback():
		p.rep.Kind = Feedback
	case p.autoReply():
		p.rep.Kind = AutoReply
	}
	if p.rep.Text == "" {
		p.rep.Text = bodyText(p.t.textPart(), MaxText)
	}
	if len(s) > detachSize {
		p.rep.detach()
	}
	return p.rep, nil
}

// envelope fills the fields that come from the report's own header.
func (p *parser) envelope() {
	r, h := p.rep, p.rep.Header
	r.From = addrSpec(h.Get("From"))
	r.Subject = decodeWords(h.Get("Subject"))
	r.MessageID = msgID(h.Get("Message-ID"))
	r.Date = parseDate(h.Get("Date"))
	if v, ok := h.lookup("Return-Path"); ok {
		r.ReturnPath = addrSpec(v)
		r.NullSender = r.ReturnPath == ""
	}
}

// newOriginal makes an Original from a header block, nil when it is empty.
func newOriginal(h Header) *Original {
	if len(h) == 0 {
		return nil
	}
	return &Original{
		Header:    h,
		MessageID: msgID(h.Get("Message-ID")),
		From:      addrSpec(h.Get("From")),
		To:        strings.Join(addrList(h.Get("To")), ", "),
		Subject:   decodeWords(h.Get("Subject")),
	}
}

// originalTypes are the media types of a returned message or its header.
var originalTypes = [...]string{
	"message/rfc822", "message/global", "text/rfc822-headers",
	"message/rfc822-headers", "message/global-headers",
}

// original reads the header of the first returned-message part.
func (p *parser) original() *Original {
	e := p.t.first(originalTypes[:]...)
	if e == nil {
		return nil
	}
	return originalFrom(e)
}

func originalFrom(e *entity) *Original {
	s := e.body
	switch strings.ToLower(strings.TrimSpace(e.header.Get("Content-Transfer-Encoding"))) {
	case "base64", "quoted-printable":
		// Not allowed on message/* (RFC 2046 §5.2.1) but seen; the
		// header is near the start, so 64 KiB of decoded text is enough.
		s = e.content(64 << 10)
	}
	return newOriginal(headerOf(s))
}

// headerOf reads the header block at the start of s, after any blank
// lines.
func headerOf(s string) Header {
	for s != "" {
		line, next := nextLine(s, 0)
		if !isBlank(line) {
			break
		}
		s = s[next:]
	}
	h, _ := parseBlock(s, topMode)
	return h
}

// detach copies every string of the report out of the input.
func (r *Report) detach() {
	c := strings.Clone
	r.From, r.Subject, r.MessageID = c(r.From), c(r.Subject), c(r.MessageID)
	r.ReturnPath, r.AutoReplyReason, r.Text = c(r.ReturnPath), c(r.AutoReplyReason), c(r.Text)
	r.ReportingMTA, r.OriginalEnvelopeID, r.ReceivedFromMTA = c(r.ReportingMTA), c(r.OriginalEnvelopeID), c(r.ReceivedFromMTA)
	r.Header = r.Header.clone()
	for i := range r.Recipients {
		x := &r.Recipients[i]
		x.FinalRecipient, x.OriginalRecipient = c(x.FinalRecipient), c(x.OriginalRecipient)
		x.Action, x.Status, x.RemoteMTA = c(x.Action), c(x.Status), c(x.RemoteMTA)
		x.DiagnosticType, x.DiagnosticCode = c(x.DiagnosticType), c(x.DiagnosticCode)
	}
	if f := r.Feedback; f != nil {
		f.FeedbackType, f.UserAgent, f.Version = c(f.FeedbackType), c(f.UserAgent), c(f.Version)
		f.OriginalMailFrom, f.SourceIP, f.AuthenticationResults = c(f.OriginalMailFrom), c(f.SourceIP), c(f.AuthenticationResults)
		for _, l := range [][]string{f.OriginalRcptTo, f.ReportedDomain, f.ReportedURI} {
			for i := range l {
				l[i] = c(l[i])
			}
		}
	}
	if o := r.Original; o != nil {
		o.Header = o.Header.clone()
		o.MessageID, o.From, o.To, o.Subject = c(o.MessageID), c(o.From), c(o.To), c(o.Subject)
	}
}

func (h Header) clone() Header {
	if h == nil {
		return nil
	}
	out := make(Header, len(h))
	for i, f := range h {
		out[i] = Field{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)}
	}
	return out
}
