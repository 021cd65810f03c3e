package dkim

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// foldAt is the line length the DKIM-Signature field is folded to where
// it can be (RFC 5322 §2.1.1: lines SHOULD be at most 78 characters).
const foldAt = 78

// canonHeader appends the canonical form of one raw header field (name,
// colon, value, folding and final line break included): simple keeps it
// as it is, its line breaks made CRLF as they will be on the wire
// (RFC 6376 §3.4.1); relaxed lower-cases the name, unfolds the value, makes
// every run of whitespace one space and trims it (§3.4.2). final says
// whether the field ends with CRLF (the DKIM-Signature being signed does
// not, §3.7).
func canonHeader(dst, raw []byte, relaxed, final bool) []byte {
	raw = bytes.TrimSuffix(bytes.TrimSuffix(raw, []byte("\n")), []byte("\r"))
	if !relaxed {
		for len(raw) > 0 {
			i := bytes.IndexAny(raw, "\r\n")
			if i < 0 {
				dst = append(dst, raw...)
				break
			}
			dst = append(dst, raw[:i]...)
			dst = append(dst, crlf...)
			if raw[i] == '\r' && i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
			raw = raw[i+1:]
		}
	} else {
		name, value, _ := bytes.Cut(raw, []byte(":"))
		for _, c := range bytes.TrimRight(name, " \t") {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
		dst = append(dst, ':')
		wsp, started := false, false
		for _, c := range value {
			switch c {
			case ' ', '\t', '\r', '\n':
				wsp = true
				continue
			}
			if wsp && started {
				dst = append(dst, ' ')
			}
			wsp, started = false, true
			dst = append(dst, c)
		}
	}
	if final {
		dst = append(dst, crlf...)
	}
	return dst
}

// selectFields appends, for each name of keys in order, the canonical form
// of the last field of that name not yet used (RFC 6376 §5.4.2: fields
// are taken from the bottom up); a name with none left adds nothing, which
// is what oversigning relies on.
func selectFields(dst, hdr []byte, fields []field, keys []string, relaxed bool) []byte {
	used := make([]bool, len(fields))
	for _, k := range keys {
		for i := len(fields) - 1; i >= 0; i-- {
			if used[i] || !strings.EqualFold(string(fields[i].name(hdr)), k) {
				continue
			}
			used[i] = true
			dst = canonHeader(dst, hdr[fields[i].start:fields[i].end], relaxed, true)
			break
		}
	}
	return dst
}

// folder builds a header field in lines of at most foldAt characters
// where the pieces allow, continuation lines starting with a space.
type folder struct {
	b   []byte
	col int // length of the current line
}

// add appends s, on a new line first if it would not fit on this one.
// sep is written before s on the same line ("" or " ").
func (f *folder) add(sep, s string) {
	if f.col > 0 && f.col+len(sep)+len(s) > foldAt {
		f.b = append(f.b, "\r\n "...)
		f.col = 1
		sep = ""
	}
	f.b = append(f.b, sep...)
	f.b = append(f.b, s...)
	f.col += len(sep) + len(s)
}

// sigField returns the DKIM-Signature field for sc, without its final
// CRLF and with b= last and empty, its value to be appended by addB.
func (sc *signConfig) sigField(alg string, keys []string, bh []byte, now time.Time) []byte {
	f := folder{b: make([]byte, 0, 512)}
	f.add("", "DKIM-Signature: v=1;")
	f.add(" ", "a="+alg+";")
	f.add(" ", "c="+string(sc.HeaderCanonicalization)+"/"+string(sc.BodyCanonicalization)+";")
	f.add(" ", "d="+sc.Domain+";")
	f.add(" ", "s="+sc.Selector+";")
	t := now.Unix()
	f.add(" ", "t="+strconv.FormatInt(t, 10)+";")
	if sc.Expiration > 0 {
		// Whole seconds, rounded up: x= must be greater than t= (§3.5).
		x := t + int64((sc.Expiration+time.Second-1)/time.Second)
		f.add(" ", "x="+strconv.FormatInt(x, 10)+";")
	}
	if sc.Identifier != "" {
		f.add(" ", "i="+sc.Identifier+";")
	}
	// h=, folded between names.
	for i, k := range keys {
		piece := k
		if i == 0 {
			piece = "h=" + k
		}
		if i < len(keys)-1 {
			piece += ":"
		} else {
			piece += ";"
		}
		sep := ""
		if i == 0 {
			sep = " "
		}
		f.add(sep, piece)
	}
	f.add(" ", "bh="+base64.StdEncoding.EncodeToString(bh)+";")
	f.add(" ", "b=")
	return f.b
}

// addB appends the signature's value to a field from sigField, folded.
func addB(field []byte, sig []byte) []byte {
	v := base64.StdEncoding.EncodeToString(sig)
	col := len(field) - bytes.LastIndexByte(field, '\n') - 1
	for len(v) > 0 {
		n := min(len(v), max(foldAt-col, 0))
		if n == 0 {
			field = append(field, "\r\n "...)
			col = 1
			continue
		}
		field = append(field, v[:n]...)
		col += n
		v = v[n:]
	}
	return field
}

// signDigest signs the SHA-256 digest of the header hash input with key:
// rsa-sha256 (PKCS #1 v1.5) or ed25519-sha256 (RFC 8463 §3: PureEdDSA over
// the SHA-256 digest).
func signDigest(key crypto.Signer, input []byte) ([]byte, error) {
	d := sha256.Sum256(input)
	var opts crypto.SignerOpts = crypto.SHA256
	if _, ok := key.Public().(ed25519.PublicKey); ok {
		opts = crypto.Hash(0)
	}
	sig, err := key.Sign(rand.Reader, d[:], opts)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return sig, nil
}

// algorithm is the a= tag for key.
func algorithm(key crypto.Signer) string {
	if _, ok := key.Public().(ed25519.PublicKey); ok {
		return "ed25519-sha256"
	}
	return "rsa-sha256"
}
