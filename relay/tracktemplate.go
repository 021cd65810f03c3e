package relay

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"html"
	"mime/quotedprintable"
	"strconv"

	"github.com/mxrelay/mxrelay/track"
)

// trackTemplate is a message prepared once for its tracked copies: the
// message cut at each link of its HTML part and at the image, the pieces
// between them already in the part's transfer encoding. A copy is then
// the pieces with each recipient's own URLs between them, so that the
// HTML is parsed, decoded and encoded once per message rather than once
// per recipient. Quoted-printable allows a soft line break anywhere
// (RFC 2045 §6.7, rule 5), so each URL goes between two of them, on lines
// of its own, and the pieces keep the encoding they were given.
type trackTemplate struct {
	before, after []byte   // the message around the HTML part's body, its header saying quoted-printable
	pieces        [][]byte // quoted-printable; one more than slots
	slots         []string // the original URL of each link, "" for the image
}

// newTrackTemplate prepares data for tracked copies, or returns nil when
// its HTML part cannot be cut this way (base64): each copy is then
// rewritten whole. A 7bit or 8bit HTML part becomes quoted-printable,
// since a long URL could otherwise push a line past 998 octets.
func newTrackTemplate(data []byte, prefix string) *trackTemplate {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	// The markers are URLs (the image's must be one), in a reserved
	// domain (RFC 2606), with a random part no message can hold by chance.
	mark := "https://mxrelay" + hex.EncodeToString(nonce[:]) + ".invalid/"
	sentinel := mark[len("https://"):len(mark)-len(".invalid/")] + "body"
	var html []byte
	qp := false
	out, err := rewriteParts(data, func(b []byte, cte string) ([]byte, bool, error) {
		if html != nil {
			return b, false, nil // only the first HTML part is tracked this way
		}
		html, qp = b, cte != "base64"
		return []byte(sentinel), true, nil
	}, nil)
	if err != nil || html == nil {
		return nil
	}
	i := bytes.Index(out, []byte(sentinel))
	if i < 0 {
		return nil // base64: the sentinel is encoded
	}
	if !qp || bytes.Count(out, []byte(sentinel)) != 1 {
		return nil
	}
	t := &trackTemplate{before: out[:i], after: out[i+len(sentinel):]}
	var urls []string
	rewritten, err := track.RewriteHTML(html, func(u string) (string, bool) {
		if len(u) >= len(prefix) && u[:len(prefix)] == prefix {
			return "", false
		}
		urls = append(urls, u)
		return mark + "s" + strconv.Itoa(len(urls)-1) + "e", true
	}, mark+"pixel")
	if err != nil {
		return nil
	}
	// Cut at the markers.
	rest := rewritten
	for {
		j := bytes.Index(rest, []byte(mark))
		if j < 0 {
			break
		}
		t.pieces = append(t.pieces, rest[:j])
		rest = rest[j+len(mark):]
		switch {
		case bytes.HasPrefix(rest, []byte("pixel")):
			t.slots = append(t.slots, "")
			rest = rest[len("pixel"):]
		case len(rest) > 0 && rest[0] == 's':
			k := bytes.IndexByte(rest, 'e')
			n, err := strconv.Atoi(string(rest[1:max(k, 1)]))
			if k < 0 || err != nil || n >= len(urls) {
				return nil
			}
			t.slots = append(t.slots, urls[n])
			rest = rest[k+1:]
		default:
			return nil
		}
	}
	t.pieces = append(t.pieces, rest)
	for k, p := range t.pieces {
		var b bytes.Buffer
		w := quotedprintable.NewWriter(&b)
		w.Write(p)
		w.Close()
		t.pieces[k] = b.Bytes()
	}
	// rewriteParts ended the sentinel with the line end a part needs
	// before its boundary; the content has its own.
	if last := t.pieces[len(t.pieces)-1]; bytes.HasSuffix(last, []byte("\r\n")) {
		t.after = bytes.TrimPrefix(t.after, []byte("\r\n"))
	}
	return t
}

// copyFor is the copy for one recipient: url gives the tracked URL of
// each link ("" leaves it as it was) and pixel the image's.
func (t *trackTemplate) copyFor(url func(orig string) string, pixel string) []byte {
	n := len(t.before) + len(t.after)
	for _, p := range t.pieces {
		n += len(p)
	}
	out := make([]byte, 0, n+len(t.slots)*600)
	out = append(out, t.before...)
	for k, p := range t.pieces {
		out = append(out, p...)
		if k == len(t.slots) {
			break
		}
		u := pixel
		if t.slots[k] != "" {
			if u = url(t.slots[k]); u == "" {
				u = t.slots[k] // left as it was
			}
		}
		out = append(out, "=\r\n"...)
		out = appendQPLine(out, html.EscapeString(u))
		out = append(out, "=\r\n"...)
	}
	return append(out, t.after...)
}

// appendQPLine appends s quoted-printable encoded, in lines of at most 76
// characters joined by soft line breaks, without a final line break. s is
// a URL as it stands in an attribute: printable ASCII but for '=' and
// whatever a URL holds beyond ASCII, which are escaped.
func appendQPLine(out []byte, s string) []byte {
	const hexd = "0123456789ABCDEF"
	col := 0
	for len(s) > 0 {
		// The common case: a run of characters that need no escape,
		// copied a line's worth at a time.
		n := 0
		for n < len(s) && n < 75-col && s[n] != '=' && s[n] >= ' ' && s[n] <= '~' {
			n++
		}
		out = append(out, s[:n]...)
		col += n
		s = s[n:]
		if len(s) == 0 {
			break
		}
		if col >= 73 {
			out = append(out, "=\r\n"...)
			col = 0
		}
		if c := s[0]; c == '=' || c < ' ' || c > '~' {
			out = append(out, '=', hexd[c>>4], hexd[c&15])
			col += 3
			s = s[1:]
		}
	}
	return out
}
