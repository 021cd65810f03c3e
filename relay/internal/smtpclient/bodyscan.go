package smtpclient

import (
	"bytes"
	"fmt"
	"io"
)

// bodyInfo is what Send needs to know of a message before it sends it.
type bodyInfo struct {
	size    int64  // octets once normalised, without dot-stuffing (BDAT, SIZE=)
	eight   bool   // it has a byte >= 0x80
	problem string // why it cannot be sent (dataProblem), or ""
	// clean: every line already ends in CRLF, the last one too, so that
	// DataWriter would change nothing but dot-stuffing.
	clean bool
	// dots: a line starts with "." (dot-stuffing would add one); only
	// looked for in a clean body.
	dots bool
}

// scanMessage learns what scanBody and dataProblem would say of body, in
// fewer passes, and whether DataWriter can be skipped: what package mime
// writes (CRLF everywhere, short lines, rarely a line starting with ".")
// is sent as it is, in one write, instead of line by line. Each pass is a
// memchr-speed library call (bytes.IndexByte, Count, Index), faster than
// any byte loop; a body that is not clean is looked at again by the
// slower functions, which handle every form of line break.
func scanMessage(body []byte) bodyInfo {
	n := len(body)
	info := bodyInfo{size: int64(n), eight: has8bit(body)}
	clean := n >= 2 && body[n-2] == '\r' && body[n-1] == '\n'
	long := false
	lfs, start := 0, 0 // start: the offset of the current line
	for i := 0; clean; {
		j := bytes.IndexByte(body[i:], '\n')
		if j < 0 {
			break
		}
		i += j
		if i == 0 || body[i-1] != '\r' {
			clean = false
			break
		}
		if i-1-start > maxTextLine {
			long = true
		}
		i++
		start = i
		lfs++
	}
	if clean && bytes.Count(body, []byte{'\r'}) != lfs {
		clean = false // a bare CR
	}
	if !clean {
		// Bare CRs and LFs end lines too: the slow paths know how.
		d := DataWriter{w: io.Discard, lineStart: true}
		d.Write(body) //nolint:errcheck // io.Discard does not fail
		d.Close()     //nolint:errcheck
		info.size = d.Written()
		info.problem = dataProblem(body)
		return info
	}
	info.clean = true
	info.dots = body[0] == '.' || bytes.Contains(body, []byte("\n."))
	switch {
	case bytes.IndexByte(body, 0) >= 0:
		info.problem = "the message has a NUL byte"
	case long:
		info.problem = fmt.Sprintf("the message has a line over %d octets", maxTextLine)
	}
	return info
}
