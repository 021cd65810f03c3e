package dkim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// field locates one header field, continuation lines included, in the
// buffer that readHeader fills.
type field struct {
	name       string // as written, without trailing whitespace
	start, end int    // offsets of the raw field, final line break included
}

// readHeader copies the header block of a message (RFC 5322 §2.2), the
// empty line that ends it included, from br to buf and returns its fields.
// Lines may end in CRLF or a bare LF.
func readHeader(br *bufio.Reader, buf *bytes.Buffer) ([]field, error) {
	var fields []field
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
		name := strings.TrimRight(string(line[:i]), " \t")
		if !validFieldName(name) {
			return fields, fmt.Errorf("%w: line %d: bad field name %q", ErrMalformedHeader, lineNo, name)
		}
		fields = append(fields, field{name: name, start: start, end: buf.Len()})
	}
}

// countFields returns how many times each header field name (lower case)
// occurs.
func countFields(fields []field) map[string]int {
	count := make(map[string]int, len(fields))
	for _, f := range fields {
		count[strings.ToLower(f.name)]++
	}
	return count
}
