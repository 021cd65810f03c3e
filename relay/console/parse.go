package console

import (
	"bytes"
	"encoding/base64"
	"io"
	stdmime "mime"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // the charsets mail uses beyond UTF-8
)

// header is a message's header, as read for display: its fields in
// order, continuation lines unfolded.
type header struct {
	Fields []field
}

type field struct{ Name, Value string }

// headerOf reads the header of a written message; a malformed one gives
// what could be read.
func headerOf(data []byte) header {
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	var h header
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') && len(h.Fields) > 0 {
			h.Fields[len(h.Fields)-1].Value += " " + strings.TrimSpace(string(line))
			continue
		}
		name, val, ok := strings.Cut(string(line), ":")
		if !ok {
			continue
		}
		h.Fields = append(h.Fields, field{Name: name, Value: strings.TrimSpace(val)})
	}
	return h
}

// get is the first field named name, decoded (RFC 2047).
func (h header) get(name string) string {
	var v string
	for _, f := range h.Fields {
		if strings.EqualFold(f.Name, name) {
			v = f.Value
			break
		}
	}
	if d, err := new(stdmime.WordDecoder).DecodeHeader(v); err == nil {
		return d
	}
	return v
}

func (h header) subject() string { return h.get("Subject") }

// parsed is a message taken apart for the message page.
type parsed struct {
	Header     header
	Text, HTML string
	Parts      []part // attachments and inline parts, in order
	Err        string // what could not be read, if anything
}

// part is one attachment or inline part.
type part struct {
	Index      int
	Name, Type string
	ContentID  string
	Size       int
	Inline     bool
	data       []byte
}

// maxParts bounds the parts read of one message.
const maxParts = 200

// parseMessage takes data apart with go-message: the first text/plain
// and text/html parts that are not attachments are the bodies, every
// other leaf part is listed.
func parseMessage(data []byte) *parsed {
	p := &parsed{Header: headerOf(data)}
	e, err := message.Read(bytes.NewReader(data))
	if e == nil {
		p.Err = err.Error()
		return p
	}
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		p.Err = err.Error()
	}
	n := 0
	werr := e.Walk(func(_ []int, ent *message.Entity, err error) error {
		if err != nil && !message.IsUnknownCharset(err) {
			p.Err = err.Error()
			return nil
		}
		mt, params, _ := ent.Header.ContentType()
		if strings.HasPrefix(mt, "multipart/") {
			return nil
		}
		if n++; n > maxParts {
			return io.EOF
		}
		body, rerr := io.ReadAll(io.LimitReader(ent.Body, int64(len(data))+1))
		if rerr != nil && p.Err == "" {
			p.Err = rerr.Error()
		}
		disp, dparams, _ := ent.Header.ContentDisposition()
		name := dparams["filename"]
		if name == "" {
			name = params["name"]
		}
		attached := disp == "attachment" || name != "" && disp != "inline"
		switch {
		case mt == "text/plain" && !attached && p.Text == "" && name == "":
			p.Text = string(body)
		case mt == "text/html" && !attached && p.HTML == "" && name == "":
			p.HTML = string(body)
		default:
			cid := strings.Trim(ent.Header.Get("Content-Id"), "<> ")
			p.Parts = append(p.Parts, part{Index: len(p.Parts), Name: name, Type: mt, ContentID: cid,
				Size: len(body), Inline: disp == "inline" || cid != "" && !attached, data: body})
		}
		return nil
	})
	if werr != nil && werr != io.EOF && p.Err == "" {
		p.Err = werr.Error()
	}
	return p
}

// dataURL is the part as a data: URL, for an image in the preview.
func (pt *part) dataURL() string {
	return "data:" + pt.Type + ";base64," + base64.StdEncoding.EncodeToString(pt.data)
}
