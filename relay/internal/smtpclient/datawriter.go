package smtpclient

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

var (
	crlf      = []byte("\r\n")
	dot       = []byte(".")
	endOfData = []byte(".\r\n")
)

// DataWriter turns message bytes into SMTP message data (RFC 5321 §4.5.2):
// every line ends in CRLF (a bare CR, a bare LF and CRLF all become CRLF),
// a line starting with "." gets another "." in front (unless dot-stuffing
// is off, as for BDAT), and Close ends the data with CRLF.CRLF (only CRLF
// without dot-stuffing). So no premature end-of-data, and no bare CR or LF,
// can reach the wire (SMTP smuggling, CVE-2023-51764).
//
// It scans with bytes.IndexByte and passes runs of well-formed lines to the
// underlying writer in one call; it does not allocate.
type DataWriter struct {
	w         io.Writer
	stuff     bool
	lineStart bool // the next byte starts a line
	pendingCR bool // the last byte written was a CR whose successor is unknown
	n         int64
	err       error
}

// NewDataWriter returns a DataWriter writing to w; dotStuff selects DATA
// (true) or BDAT (false) framing.
func NewDataWriter(w io.Writer, dotStuff bool) *DataWriter {
	d := &DataWriter{}
	d.Reset(w, dotStuff)
	return d
}

// Reset makes d write a new message to w, as NewDataWriter does.
func (d *DataWriter) Reset(w io.Writer, dotStuff bool) {
	*d = DataWriter{w: w, stuff: dotStuff, lineStart: true}
}

// Written is the number of bytes passed to the underlying writer so far.
func (d *DataWriter) Written() int64 { return d.n }

func (d *DataWriter) put(b []byte) {
	if d.err != nil || len(b) == 0 {
		return
	}
	n, err := d.w.Write(b)
	d.n += int64(n)
	d.err = err
}

// Write normalises p and writes it. It returns len(p) unless the
// underlying writer failed.
func (d *DataWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	total := len(p)
	if d.pendingCR && len(p) > 0 {
		// CR at the end of the previous Write: CRLF or a bare CR, both CRLF.
		d.pendingCR = false
		d.put(crlf)
		d.lineStart = true
		if p[0] == '\n' {
			p = p[1:]
		}
	}
	start, pos := 0, 0 // p[start:pos] is an unmodified run not yet written
	for pos < len(p) {
		if d.lineStart {
			d.lineStart = false
			if d.stuff && p[pos] == '.' {
				d.put(p[start:pos])
				d.put(dot)
				start = pos
			}
		}
		rest := p[pos:]
		i := bytes.IndexByte(rest, '\n')
		seg := rest
		if i >= 0 {
			seg = rest[:i]
		}
		if j := bytes.IndexByte(seg, '\r'); j >= 0 && (i < 0 || j != i-1) {
			// A CR not followed by LF (or not known yet, at the end of p).
			cr := pos + j
			d.put(p[start:cr])
			if cr == len(p)-1 {
				d.pendingCR = true
				start, pos = len(p), len(p)
				break
			}
			d.put(crlf)
			pos = cr + 1
			start = pos
			d.lineStart = true
			continue
		}
		if i < 0 {
			pos = len(p)
			break
		}
		lf := pos + i
		pos = lf + 1
		d.lineStart = true
		if i > 0 && rest[i-1] == '\r' {
			continue // a proper CRLF: stays in the run
		}
		d.put(p[start:lf]) // a bare LF
		d.put(crlf)
		start = pos
	}
	d.put(p[start:pos])
	if d.err != nil {
		return 0, d.err
	}
	return total, nil
}

// Close ends the data: it finishes an unterminated last line with CRLF and,
// when dot-stuffing, writes the terminating ".\r\n". It does not close the
// underlying writer.
func (d *DataWriter) Close() error {
	if d.pendingCR || !d.lineStart {
		d.pendingCR = false
		d.put(crlf)
		d.lineStart = true
	}
	if d.stuff {
		d.put(endOfData)
	}
	return d.err
}

// scanBody reports the size of body once normalised for BDAT (CRLF line
// ends, a final CRLF, no dot-stuffing) and whether it has 8-bit bytes.
func scanBody(body []byte) (size int64, eightBit bool) {
	if wellFormed(body) {
		// Nothing to change: what package mime writes takes this path.
		return int64(len(body)), has8bit(body)
	}
	d := DataWriter{w: io.Discard, lineStart: true}
	d.Write(body) //nolint:errcheck // io.Discard does not fail
	d.Close()     //nolint:errcheck
	return d.Written(), has8bit(body)
}

// maxTextLine is the longest text line, CRLF excluded (RFC 5321
// §4.5.3.1.6).
const maxTextLine = 998

// dataProblem returns why body cannot be sent as message data, or "": a
// NUL byte (RFC 5321 §2.3.8 and RFC 5322 §2.3 allow none) or a line over
// 998 octets, where CR, LF and CRLF all end a line as DataWriter makes
// them. It costs two memchr passes.
func dataProblem(body []byte) string {
	if bytes.IndexByte(body, 0) >= 0 {
		return "the message has a NUL byte"
	}
	for b := body; len(b) > 0; {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) <= maxTextLine {
			continue
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		for len(line) > maxTextLine { // bare CRs end lines too
			j := bytes.IndexByte(line, '\r')
			if j < 0 || j > maxTextLine {
				return fmt.Sprintf("the message has a line over %d octets", maxTextLine)
			}
			line = line[j+1:]
		}
	}
	return ""
}

// wellFormed reports whether body already has only CRLF line ends and ends
// with one, so that normalising it changes nothing. It runs at memchr
// speed: every LF must follow a CR, and there must be as many CRs as LFs.
func wellFormed(body []byte) bool {
	n := len(body)
	if n < 2 || body[n-2] != '\r' || body[n-1] != '\n' {
		return false
	}
	lfs := 0
	for i := 0; ; {
		j := bytes.IndexByte(body[i:], '\n')
		if j < 0 {
			break
		}
		i += j
		if i == 0 || body[i-1] != '\r' {
			return false
		}
		i++
		lfs++
	}
	return bytes.Count(body, []byte{'\r'}) == lfs
}

// has8bit reports whether b has a byte >= 0x80.
func has8bit(b []byte) bool {
	for len(b) >= 32 {
		if (binary.LittleEndian.Uint64(b)|binary.LittleEndian.Uint64(b[8:])|
			binary.LittleEndian.Uint64(b[16:])|binary.LittleEndian.Uint64(b[24:]))&0x8080808080808080 != 0 {
			return true
		}
		b = b[32:]
	}
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}
