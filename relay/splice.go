package relay

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	stdmime "mime"
	"mime/quotedprintable"
	"net/textproto"
	"strings"
)

// partFunc rewrites the decoded content of a part whose transfer
// encoding is cte; it may ask for quoted-printable (qp) whatever the part
// had, which a 7bit or 8bit part then switches to.
type partFunc func(content []byte, cte string) (out []byte, qp bool, err error)

// rewriteParts rewrites the text/html (and, with text set, the text/plain)
// parts of a message that package mime wrote: each part's content is
// decoded from its transfer encoding, passed to html or text, and
// encoded again, everything else kept byte for byte. It works on the
// bytes rather than on the mime.Message because a queued message is kept
// as bytes, and each recipient's copy is made at each attempt. Written by
// hand: go-message would re-fold the headers, which changes what DKIM
// signs and what the tests compare; this only needs to find the parts of a
// well-formed message of our own.
func rewriteParts(msg []byte, html, text partFunc) ([]byte, error) {
	head, body, ok := splitHead(msg)
	if !ok {
		return nil, errors.New("relay: tracking: message without a header")
	}
	var out bytes.Buffer
	out.Grow(len(msg) + len(msg)/4)
	if err := rewriteEntity(&out, head, body, html, text, 0); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// splitHead splits an entity into its header (with the blank line) and
// its body.
func splitHead(b []byte) (head, body []byte, ok bool) {
	if bytes.HasPrefix(b, []byte("\r\n")) {
		return b[:2], b[2:], true
	}
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		return nil, nil, false
	}
	return b[:i+4], b[i+4:], true
}

// rewriteEntity writes the entity whose header is head and whose body is
// body, rewritten.
func rewriteEntity(out *bytes.Buffer, head, body []byte, html, text partFunc, depth int) error {
	if depth > 10 {
		return errors.New("relay: tracking: parts nested too deep")
	}
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(head))).ReadMIMEHeader()
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("relay: tracking: reading a part header: %w", err)
	}
	ct, params, err := stdmime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		ct = "text/plain"
	}
	if strings.HasPrefix(ct, "multipart/") {
		out.Write(head)
		return rewriteMultipart(out, body, params["boundary"], html, text, depth)
	}
	var fn partFunc
	switch {
	case ct == "text/html" && html != nil:
		fn = html
	case ct == "text/plain" && text != nil && !strings.EqualFold(h.Get("Content-Disposition"), "attachment"):
		fn = text
	}
	if fn == nil {
		out.Write(head)
		out.Write(body)
		return nil
	}
	cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	var raw []byte
	switch cte {
	case "quoted-printable":
		raw, err = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
	case "base64":
		raw, err = io.ReadAll(base64.NewDecoder(base64.StdEncoding, newlineStripper{bytes.NewReader(body)}))
	default:
		raw = body
	}
	if err != nil {
		return fmt.Errorf("relay: tracking: decoding a %s part: %w", ct, err)
	}
	raw, wantQP, err := fn(raw, cte)
	if err != nil {
		return err
	}
	if cte != "quoted-printable" && cte != "base64" && (wantQP || longestLine(raw) > 998) {
		// The new links made a line too long for 7bit or 8bit:
		// quoted-printable, as package mime would have chosen.
		cte, head = "quoted-printable", setCTE(head, "quoted-printable")
	}
	out.Write(head)
	switch cte {
	case "quoted-printable":
		w := quotedprintable.NewWriter(out)
		w.Write(raw)
		w.Close()
	case "base64":
		writeBase64(out, raw)
	default:
		out.Write(raw)
	}
	// Keep the line end that closed the part before a boundary.
	if bytes.HasSuffix(body, []byte("\r\n")) && !bytes.HasSuffix(out.Bytes(), []byte("\r\n")) {
		out.WriteString("\r\n")
	}
	return nil
}

// setCTE returns head with its Content-Transfer-Encoding set to cte.
func setCTE(head []byte, cte string) []byte {
	var out []byte
	skip := false
	for line := range bytes.Lines(head) {
		if skip && (line[0] == ' ' || line[0] == '\t') {
			continue
		}
		skip = false
		if len(line) > 26 && bytes.EqualFold(line[:26], []byte("Content-Transfer-Encoding:")) {
			skip = true
			continue
		}
		if bytes.Equal(line, []byte("\r\n")) {
			out = append(out, "Content-Transfer-Encoding: "+cte+"\r\n"...)
		}
		out = append(out, line...)
	}
	return out
}

// rewriteMultipart rewrites each part of a multipart body.
func rewriteMultipart(out *bytes.Buffer, body []byte, boundary string, html, text partFunc, depth int) error {
	if boundary == "" {
		out.Write(body)
		return nil
	}
	delim := []byte("--" + boundary)
	// The preamble, up to the first delimiter line.
	i := indexDelim(body, delim, 0)
	if i < 0 {
		out.Write(body)
		return nil
	}
	out.Write(body[:i])
	for {
		// body[i:] starts with a delimiter line.
		end := bytes.Index(body[i:], []byte("\r\n"))
		if end < 0 {
			out.Write(body[i:])
			return nil
		}
		line := body[i : i+end+2]
		out.Write(line)
		if bytes.HasPrefix(line, append(delim, '-', '-')) {
			out.Write(body[i+end+2:]) // the epilogue
			return nil
		}
		start := i + end + 2
		next := indexDelim(body, delim, start)
		if next < 0 {
			return errors.New("relay: tracking: a multipart body without its closing delimiter")
		}
		// The part ends with the CRLF before the next delimiter.
		part := body[start : next-2]
		head, pbody, ok := splitHead(part)
		if !ok {
			out.Write(part)
		} else {
			if err := rewriteEntity(out, head, pbody, html, text, depth+1); err != nil {
				return err
			}
		}
		out.WriteString("\r\n")
		i = next
	}
}

// indexDelim finds the next delimiter line (at the start of a line) at or
// after from.
func indexDelim(body, delim []byte, from int) int {
	for from <= len(body) {
		j := bytes.Index(body[from:], delim)
		if j < 0 {
			return -1
		}
		j += from
		if j == 0 || (j >= 2 && body[j-2] == '\r' && body[j-1] == '\n') {
			return j
		}
		from = j + 1
	}
	return -1
}

// writeBase64 writes b in base64 lines of 76 characters (RFC 2045 §6.8).
func writeBase64(out *bytes.Buffer, b []byte) {
	enc := base64.StdEncoding.EncodeToString(b)
	for len(enc) > 76 {
		out.WriteString(enc[:76])
		out.WriteString("\r\n")
		enc = enc[76:]
	}
	out.WriteString(enc)
	out.WriteString("\r\n")
}

// longestLine is the length of the longest line of b, without its CRLF.
func longestLine(b []byte) int {
	n := 0
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		n = max(n, len(bytes.TrimSuffix(line, []byte("\r"))))
	}
	return n
}

// newlineStripper drops CR and LF, for the base64 decoder.
type newlineStripper struct{ r io.Reader }

func (s newlineStripper) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	j := 0
	for _, c := range p[:n] {
		if c != '\r' && c != '\n' {
			p[j] = c
			j++
		}
	}
	return j, err
}
