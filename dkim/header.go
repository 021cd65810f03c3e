package dkim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// field locates one header field, continuation lines included, in the
// buffer that readHeader fills.
type field struct {
	start, end int // offsets of the raw field, final line break included
	nameEnd    int // offset just after the name, trailing whitespace excluded
}

// name returns the field name from the buffer readHeader filled.
func (f field) name(buf []byte) []byte { return buf[f.start:f.nameEnd] }

// readHeader copies the header block of a message (RFC 5322 §2.2), the
// empty line that ends it included, from br to buf and returns its fields.
// Lines may end in CRLF or a bare LF.
func readHeader(br *bufio.Reader, buf *bytes.Buffer) ([]field, error) {
	fields := make([]field, 0, 32)
	for lineNo := 1; ; lineNo++ {
		start := buf.Len()
		for {
			chunk, err := br.ReadSlice('\n')
			buf.Write(chunk)
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if errors.Is(err, io.EOF) {
				return fields, fmt.Errorf("%w (end of input after %d lines)", ErrHeaderNotTerminated, lineNo-1)
			}
			if err != nil {
				return fields, fmt.Errorf("dkim: reading message: %w", err)
			}
			break
		}
		line := buf.Bytes()[start:]
		// A bare CR becomes a line break on the wire (the SMTP client
		// sends CRLF for it), which would split or end the header where
		// the signer did not: refused.
		if i := bytes.IndexByte(line, '\r'); i >= 0 && i < len(line)-2 {
			return fields, fmt.Errorf("%w: line %d: bare CR", ErrMalformedHeader, lineNo)
		}
		switch {
		case len(line) == 1 || len(line) == 2 && line[0] == '\r':
			return fields, nil
		case line[0] == ' ' || line[0] == '\t':
			if len(fields) == 0 {
				return fields, fmt.Errorf("%w: line %d: continuation line before any field", ErrMalformedHeader, lineNo)
			}
			fields[len(fields)-1].end = buf.Len()
			continue
		}
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			return fields, fmt.Errorf("%w: line %d: no colon", ErrMalformedHeader, lineNo)
		}
		name := bytes.TrimRight(line[:i], " \t")
		if !validFieldName(name) {
			return fields, fmt.Errorf("%w: line %d: bad field name %q", ErrMalformedHeader, lineNo, name)
		}
		fields = append(fields, field{start: start, end: buf.Len(), nameEnd: start + len(name)})
	}
}

// countFields counts, for each of names (lower case), the header fields
// of that name.
func countFields(buf []byte, fields []field, names [][]byte, counts []int) {
	for _, f := range fields {
		name := f.name(buf)
		for i, n := range names {
			if len(n) == len(name) && bytes.EqualFold(n, name) {
				counts[i]++
				break
			}
		}
	}
}
