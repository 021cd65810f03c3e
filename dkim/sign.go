package dkim

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// maxPooledBuffer is the largest message buffer a Signer keeps for reuse.
const maxPooledBuffer = 4 << 20

// Signer adds one DKIM-Signature header field per Config to messages. It
// is made by NewSigner, immutable, and safe for concurrent use: make it
// once and share it (it keeps buffers for reuse between messages).
type Signer struct {
	cfgs  []*signConfig
	names [][]byte  // lower-case field names Sign counts; names[0] is "from"
	bufs  sync.Pool // *bytes.Buffer
	brs   sync.Pool // *bufio.Reader
}

// NewSigner checks the Configs and returns a Signer that signs with all of
// them. Give two Configs to dual-sign, Ed25519 for receivers that support
// RFC 8463 and RSA for the rest.
func NewSigner(cfgs ...Config) (*Signer, error) {
	if len(cfgs) == 0 {
		return nil, ErrNoConfig
	}
	s := &Signer{names: [][]byte{[]byte("from")}}
	index := map[string]int{"from": 0}
	for i := range cfgs {
		sc, err := cfgs[i].check()
		if err != nil {
			if len(cfgs) > 1 {
				return nil, fmt.Errorf("config %d: %w", i, err)
			}
			return nil, err
		}
		for _, h := range sc.sign {
			l := strings.ToLower(h)
			j, ok := index[l]
			if !ok {
				j = len(s.names)
				index[l] = j
				s.names = append(s.names, []byte(l))
			}
			sc.idx = append(sc.idx, j)
		}
		s.cfgs = append(s.cfgs, sc)
	}
	return s, nil
}

// Sign reads a message (RFC 5322: header fields, an empty line, the body)
// from r and writes to w the DKIM-Signature header fields, one per Config
// in order, followed by the message bytes exactly as read.
//
// The message is read whole first, since the signatures come first, then
// signed as SignBytes does. Lines should end in CRLF; lone LFs, and lone
// CRs in the body, are hashed as CRLF, as the SMTP client must send them (a
// lone CR in the header is refused with ErrMalformedHeader). Nothing is written
// to w if an error occurs before the signatures are complete. A nil or zero
// Signer returns ErrNoConfig: make Signers with NewSigner.
func (s *Signer) Sign(w io.Writer, r io.Reader) error {
	if s == nil || len(s.cfgs) == 0 {
		return ErrNoConfig
	}
	buf := s.getBuffer()
	defer s.putBuffer(buf)
	if _, err := buf.ReadFrom(r); err != nil {
		return fmt.Errorf("dkim: reading message: %w", err)
	}
	sigs, err := s.SignBytes(buf.Bytes())
	if err != nil {
		return err
	}
	if _, err := w.Write(sigs); err != nil {
		return fmt.Errorf("dkim: writing message: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("dkim: writing message: %w", err)
	}
	return nil
}

// SignBytes signs the message msg, in memory, and returns only the
// DKIM-Signature header fields, one per Config in order, each ending in
// CRLF: the caller sends them followed by msg, which is not copied. The
// rules are Sign's.
func (s *Signer) SignBytes(msg []byte) ([]byte, error) {
	if s == nil || len(s.cfgs) == 0 {
		return nil, ErrNoConfig
	}
	hdrBuf := s.getBuffer()
	defer s.putBuffer(hdrBuf)
	br := s.getReader(bytes.NewReader(msg))
	fields, err := readHeader(br, hdrBuf)
	s.putReader(br)
	if err != nil {
		return nil, err
	}
	hdr := hdrBuf.Bytes() // msg's header, byte for byte
	body := msg[len(hdr):]

	var countBuf [32]int
	counts := countBuf[:0]
	if len(s.names) > len(countBuf) {
		counts = make([]int, 0, len(s.names))
	}
	counts = counts[:len(s.names)]
	countFields(hdr, fields, s.names, counts)
	switch counts[0] { // From
	case 0:
		return nil, ErrNoFrom
	case 1:
	default:
		return nil, ErrMultipleFrom
	}

	// The body is hashed once per canonicalization, whatever the number
	// of signatures that share it.
	var bh [2][]byte // simple, relaxed
	now := time.Now()
	out := make([]byte, 0, 600*len(s.cfgs))
	input := make([]byte, 0, 1024)
	for _, sc := range s.cfgs {
		relaxedBody := sc.BodyCanonicalization == Relaxed
		k := 0
		if relaxedBody {
			k = 1
		}
		if bh[k] == nil {
			h := sha256.New()
			hashBody(h, body, relaxedBody)
			bh[k] = h.Sum(nil)
		}
		relaxed := sc.HeaderCanonicalization == Relaxed
		keys := sc.headerKeys(counts)
		field := sc.sigField(algorithm(sc.Key), keys, bh[k], now)
		input = selectFields(input[:0], hdr, fields, keys, relaxed)
		input = canonHeader(input, field, relaxed, false)
		sig, err := signDigest(sc.Key, input)
		if err != nil {
			return nil, fmt.Errorf("dkim: %s/%s: %w", sc.Domain, sc.Selector, err)
		}
		field = addB(field, sig)
		if longestLine(string(field)) > maxLine {
			// Only a header field name of nearly 998 characters does this.
			return nil, fmt.Errorf("%w: the DKIM-Signature for %s/%s has a line over %d octets; sign fewer or shorter header fields",
				ErrTooManyFields, sc.Domain, sc.Selector, maxLine)
		}
		out = append(append(out, field...), crlf...)
	}
	return out, nil
}

// maxLine is the longest line RFC 5322 §2.1.1 allows, CRLF excluded.
const maxLine = 998

// longestLine returns the length of the longest line of s, line break
// excluded.
func longestLine(s string) int {
	longest := 0
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			return max(longest, len(s))
		}
		longest = max(longest, len(strings.TrimSuffix(s[:i], "\r")))
		s = s[i+1:]
	}
	return longest
}

func (s *Signer) getBuffer() *bytes.Buffer {
	if b, ok := s.bufs.Get().(*bytes.Buffer); ok {
		return b
	}
	return new(bytes.Buffer)
}

func (s *Signer) putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	s.bufs.Put(b)
}

func (s *Signer) getReader(r io.Reader) *bufio.Reader {
	if br, ok := s.brs.Get().(*bufio.Reader); ok {
		br.Reset(r)
		return br
	}
	return bufio.NewReaderSize(r, 32<<10)
}

func (s *Signer) putReader(br *bufio.Reader) {
	br.Reset(nil)
	s.brs.Put(br)
}

// SigningKey names one key a Signer signs with: what a receiver looks up
// (Selector._domainkey.Domain) and the public half it should find there.
type SigningKey struct {
	Domain    string           // the d= tag
	Selector  string           // the s= tag
	Algorithm string           // "rsa-sha256" or "ed25519-sha256"
	Public    crypto.PublicKey // *rsa.PublicKey or ed25519.PublicKey
}

// Keys returns the keys s signs with, in the order of its Configs, for
// checks such as relay's Preflight that the published records match.
func (s *Signer) Keys() []SigningKey {
	if s == nil {
		return nil
	}
	out := make([]SigningKey, 0, len(s.cfgs))
	for _, c := range s.cfgs {
		pub := c.Key.Public()
		alg := "rsa-sha256"
		if _, ok := pub.(ed25519.PublicKey); ok {
			alg = "ed25519-sha256"
		}
		out = append(out, SigningKey{Domain: c.Domain, Selector: c.Selector, Algorithm: alg, Public: pub})
	}
	return out
}
