package mime

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// plan is a validated message, ready to be written without further checks:
// the writer cannot fail.
type plan struct {
	from            addrSpec
	replyTo, to, cc []addrSpec
	text, html      textStats
	atts            []attPlan
	inline, attach  int // counts of related and mixed parts
	extra           []string
	date            time.Time
	msgID           string
	token           [24]byte // hex, shared by the boundaries
	size            int      // estimate of the output size
}

type attPlan struct {
	contentType string // formatted, with name=
	disposition string // formatted, with filename=
	contentID   string // without brackets
	related     bool
}

// Headers that Message fields write; Header may not set them.
var ownHeaders = []string{
	"from", "reply-to", "to", "cc", "bcc", "subject", "date", "message-id",
	"mime-version", "list-unsubscribe", "list-unsubscribe-post",
}

const maxFilename = 255

// prepare validates everything and computes what the writer needs.
func (m *Message) prepare(opts *WriteOptions) (*plan, error) {
	p := &plan{size: 1024}
	if m.From.Address == "" {
		return nil, fieldErr("From", ErrNoFrom, "")
	}
	var err error
	if p.from, err = parseAddress("From", m.From); err != nil {
		return nil, err
	}
	p.size += 3*len(m.From.Name) + len(m.From.Address)
	if p.replyTo, err = p.addresses("ReplyTo", m.ReplyTo); err != nil {
		return nil, err
	}
	if p.to, err = p.addresses("To", m.To); err != nil {
		return nil, err
	}
	if p.cc, err = p.addresses("Cc", m.Cc); err != nil {
		return nil, err
	}
	for i, a := range m.Bcc {
		if _, err := parseAddress(indexed("Bcc", i), a); err != nil {
			return nil, err
		}
	}
	if len(m.To)+len(m.Cc)+len(m.Bcc) == 0 {
		return nil, fieldErr("To", ErrNoRecipients, "To, Cc and Bcc are empty")
	}
	if reason := checkText(m.Subject); reason != "" {
		return nil, fieldErr("Subject", ErrInvalidHeader, reason)
	}
	p.size += 3 * len(m.Subject)
	if err := p.headers(m.Header); err != nil {
		return nil, err
	}
	if m.ListUnsubscribe != "" {
		if reason := checkListUnsubscribe(m.ListUnsubscribe); reason != "" {
			return nil, fieldErr("ListUnsubscribe", ErrInvalidListUnsubscribe, reason)
		}
		p.size += len(m.ListUnsubscribe)
	}
	if m.Text == "" && m.HTML == "" && len(m.Attachments) == 0 {
		return nil, fieldErr("Text", ErrNoBody, "Text, HTML and Attachments are empty")
	}
	if m.Text != "" {
		if p.text = scanText(m.Text); p.text.invalid {
			return nil, fieldErr("Text", ErrInvalidBody, "not valid UTF-8")
		}
		p.size += textSize(m.Text, p.text) + 128
	}
	if m.HTML != "" {
		if p.html = scanText(m.HTML); p.html.invalid {
			return nil, fieldErr("HTML", ErrInvalidBody, "not valid UTF-8")
		}
		p.size += textSize(m.HTML, p.html) + 128
	}
	if err := p.attachments(m); err != nil {
		return nil, err
	}

	if m.MessageID != "" {
		id, reason := checkMessageID(m.MessageID)
		if reason != "" {
			return nil, fieldErr("MessageID", ErrInvalidHeader, reason)
		}
		p.msgID = id
	}
	p.date = m.Date
	if p.date.IsZero() {
		if opts != nil && opts.Now != nil {
			p.date = opts.Now()
		} else {
			p.date = time.Now()
		}
	}
	// Random bytes: 16 for the Message-ID, 12 for the boundaries.
	var rnd [28]byte
	if opts != nil && opts.Rand != nil {
		if _, err := io.ReadFull(opts.Rand, rnd[:]); err != nil {
			return nil, fmt.Errorf("mime: reading WriteOptions.Rand: %w", err)
		}
	} else {
		_, _ = rand.Read(rnd[:]) // never fails (crypto/rand, Go 1.24+)
	}
	if p.msgID == "" {
		var b [26]byte
		b32.Encode(b[:], rnd[:16])
		p.msgID = "<" + string(b[:]) + "@" + p.from.domain + ">"
	}
	for i, c := range rnd[16:] {
		p.token[2*i], p.token[2*i+1] = lowerHex[c>>4], lowerHex[c&15]
	}
	return p, nil
}

const lowerHex = "0123456789abcdef"

func (p *plan) addresses(field string, list []mail.Address) ([]addrSpec, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := make([]addrSpec, len(list))
	for i, a := range list {
		s, err := parseAddress(indexed(field, i), a)
		if err != nil {
			return nil, err
		}
		out[i] = s
		p.size += 3*len(a.Name) + len(a.Address) + 8
	}
	return out, nil
}

func (p *plan) headers(h map[string][]string) error {
	if len(h) == 0 {
		return nil
	}
	p.extra = make([]string, 0, len(h))
	for name, values := range h {
		field := "Header[" + name + "]"
		if !validHeaderName(name) {
			return fieldErr(field, ErrInvalidHeader, "name is not RFC 5322 ftext of at most 64 characters")
		}
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "content-") || slices.Contains(ownHeaders, lower) {
			return fieldErr(field, ErrInvalidHeader, "set by the Message itself")
		}
		for _, v := range values {
			if reason := checkText(v); reason != "" {
				return fieldErr(field, ErrInvalidHeader, reason)
			}
			p.size += len(name) + 3*len(v) + 8
		}
		p.extra = append(p.extra, name)
	}
	slices.Sort(p.extra)
	return nil
}

func (p *plan) attachments(m *Message) error {
	if len(m.Attachments) == 0 {
		return nil
	}
	p.atts = make([]attPlan, len(m.Attachments))
	for i := range m.Attachments {
		a := &m.Attachments[i]
		field := indexed("Attachments", i)
		if reason := checkText(a.Filename); reason != "" {
			return fieldErr(field+".Filename", ErrInvalidHeader, reason)
		}
		if len(a.Filename) > maxFilename {
			return fieldErr(field+".Filename", ErrInvalidHeader, "longer than 255 octets")
		}
		ap := &p.atts[i]
		if a.ContentID != "" {
			cid, reason := checkContentID(a.ContentID)
			if reason != "" {
				return fieldErr(field+".ContentID", ErrInvalidHeader, reason)
			}
			for j := range i {
				if p.atts[j].contentID == cid {
					return fieldErr(field+".ContentID", ErrInvalidAttachment, "used twice")
				}
			}
			ap.contentID = cid
			ap.related = m.HTML != ""
		}
		ct := a.ContentType
		if ct == "" {
			ct = mime.TypeByExtension(path.Ext(a.Filename))
			if ct == "" {
				ct = "application/octet-stream"
			}
		}
		if reason := checkText(ct); reason != "" {
			return fieldErr(field+".ContentType", ErrInvalidHeader, reason)
		}
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil || !strings.Contains(mt, "/") {
			reason := "not type/subtype"
			if err != nil {
				reason = err.Error()
			}
			return fieldErr(field+".ContentType", ErrInvalidAttachment, reason)
		}
		if strings.HasPrefix(mt, "multipart/") || strings.HasPrefix(mt, "message/") {
			return fieldErr(field+".ContentType", ErrInvalidAttachment, mt+" cannot be base64 encoded")
		}
		disp := "attachment"
		if a.ContentID != "" {
			disp = "inline"
		}
		ap.disposition = disp
		if a.Filename != "" {
			params["name"] = a.Filename
			ap.disposition = formatParams(disp, map[string]string{"filename": a.Filename})
		}
		ap.contentType = formatParams(mt, params)
		if ap.contentType == "" || (a.Filename != "" && ap.disposition == "") {
			return fieldErr(field+".ContentType", ErrInvalidAttachment, "cannot format its parameters")
		}
		for line := range strings.SplitSeq(ap.contentType, "\r\n") {
			if len(line) > 900 {
				return fieldErr(field+".ContentType", ErrInvalidAttachment, "parameters too long for a header line")
			}
		}
		if ap.related {
			p.inline++
		} else {
			p.attach++
		}
		p.size += base64Size(len(a.Data)) + len(ap.contentType) + len(ap.disposition) + len(ap.contentID) + 160
	}
	return nil
}

// formatParams formats a media type or disposition with its parameters,
// each on a line of its own. Values are formatted by mime.FormatMediaType,
// which uses RFC 2231 extended values (name*= with utf-8 and
// percent-encoding) for non-ASCII; a value that contains "=?" is RFC
// 2231-encoded here too, because some readers (Python's email) decode
// encoded-words even inside quoted parameters. A parameter too long for a
// 78-column line is split into RFC 2231 §3 continuations (name*0*=,
// name*1*=, ...). It returns "" if a parameter cannot be formatted.
func formatParams(t string, params map[string]string) string {
	s := mime.FormatMediaType(t, nil)
	if s == "" {
		return ""
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := params[k]
		var p string
		if !looksEncoded(v) {
			p = mime.FormatMediaType("a/b", map[string]string{k: v})
			if p == "" {
				return ""
			}
			p = p[len("a/b; "):]
		}
		if p == "" || len(p) > lineLimit-1 && strings.Contains(p, "*=") {
			s += continued(strings.ToLower(k), pctEncode(v))
		} else if len(p) > lineLimit-1 {
			s += continuedQuoted(strings.ToLower(k), v)
		} else {
			s += ";\r\n " + p
		}
	}
	return s
}

// maxSegment is the length of a continuation segment's value, leaving room
// for "; name*NN*=" on a 78-column line.
const maxSegment = 56

// continued writes an RFC 2231 extended value, split into numbered segments
// when long, never inside a %XX triplet.
func continued(k, enc string) string {
	if len(k)+len("*=utf-8''")+len(enc) < lineLimit-1 {
		return ";\r\n " + k + "*=utf-8''" + enc
	}
	var b strings.Builder
	for n := 0; enc != ""; n++ {
		cut := min(maxSegment, len(enc))
		if i := strings.LastIndexByte(enc[:cut], '%'); i >= 0 && i+3 > cut && cut < len(enc) {
			cut = i
		}
		b.WriteString(";\r\n " + k + "*" + strconv.Itoa(n) + "*=")
		if n == 0 {
			b.WriteString("utf-8''")
		}
		b.WriteString(enc[:cut])
		enc = enc[cut:]
	}
	return b.String()
}

// continuedQuoted splits a long ASCII value into quoted segments
// (name*0="...", RFC 2231 §3).
func continuedQuoted(k, v string) string {
	var b strings.Builder
	for n := 0; v != ""; n++ {
		cut := min(maxSegment-8, len(v))
		b.WriteString(";\r\n " + k + "*" + strconv.Itoa(n) + "=\"")
		for i := 0; i < cut; i++ {
			if v[i] == '"' || v[i] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(v[i])
		}
		b.WriteByte('"')
		v = v[cut:]
	}
	return b.String()
}

// pctEncode is the RFC 2231 §7 / RFC 5987 value-chars encoding.
func pctEncode(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&15])
		}
	}
	return b.String()
}

// checkMessageID returns the Message-ID with angle brackets, or a reason.
func checkMessageID(id string) (string, string) {
	if reason := checkText(id); reason != "" {
		return "", reason
	}
	inner := strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	if len(inner)+2 < len(id) {
		inner = id // unbalanced brackets: fail below
	}
	if inner == "" || len(inner) > 900 {
		return "", "empty or too long"
	}
	for i := 0; i < len(inner); i++ {
		if c := inner[i]; c <= ' ' || c >= 127 || c == '<' || c == '>' {
			return "", "must be printable ASCII without spaces or angle brackets"
		}
	}
	return "<" + inner + ">", ""
}

// checkContentID returns the Content-ID without brackets, or a reason. It
// accepts dot-atom text with at most one "@" (RFC 2392 uses msg-id syntax).
func checkContentID(id string) (string, string) {
	if reason := checkText(id); reason != "" {
		return "", reason
	}
	if len(id) >= 2 && id[0] == '<' && id[len(id)-1] == '>' {
		id = id[1 : len(id)-1]
	}
	if id == "" || len(id) > 900 || strings.Count(id, "@") > 1 {
		return "", "must be dot-atom text with at most one @"
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !isAtext(c) && c != '.' && c != '@' {
			return "", "must be dot-atom text with at most one @"
		}
	}
	return id, ""
}

// checkListUnsubscribe returns why u is not a usable List-Unsubscribe URL.
func checkListUnsubscribe(u string) string {
	if len(u) > 900 {
		return "too long"
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= ' ' || c >= 127 || c == '<' || c == '>' {
			return "must be printable ASCII without spaces or angle brackets"
		}
	}
	parsed, err := url.Parse(u)
	if err != nil {
		return err.Error()
	}
	switch strings.ToLower(parsed.Scheme) {
	case "https":
		if parsed.Host == "" {
			return "https URL without a host"
		}
	case "mailto":
		if parsed.Opaque == "" {
			return "mailto URL without an address"
		}
	default:
		return "scheme must be https or mailto"
	}
	return ""
}
