package dkim

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	msgauth "github.com/emersion/go-msgauth/dkim"
)

// readChunk is how much of the body Sign reads before handing it to the
// signers.
const readChunk = 64 << 10

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
// The message is read once: the body is hashed for every signature as it
// streams in, and the signatures are computed when r is exhausted. The
// message is held in memory meanwhile, since the signatures come first.
// Lines should end in CRLF; lone LFs are hashed as CRLF, as the SMTP client
// must send them. Nothing is written to w if an error occurs before the
// signatures are complete. A nil or zero Signer returns ErrNoConfig:
// make Signers with NewSigner.
func (s *Signer) Sign(w io.Writer, r io.Reader) error {
	if s == nil || len(s.cfgs) == 0 {
		return ErrNoConfig
	}
	buf := s.getBuffer()
	defer s.putBuffer(buf)
	br := s.getReader(r)
	defer s.putReader(br)

	fields, err := readHeader(br, buf)
	if err != nil {
		return err
	}
	var countBuf [32]int
	counts := countBuf[:0]
	if len(s.names) > len(countBuf) {
		counts = make([]int, 0, len(s.names))
	}
	counts = counts[:len(s.names)]
	countFields(buf.Bytes(), fields, s.names, counts)
	switch counts[0] { // From
	case 0:
		return ErrNoFrom
	case 1:
	default:
		return ErrMultipleFrom
	}

	now := time.Now()
	signers := make([]*msgauth.Signer, 0, len(s.cfgs))
	defer func() {
		// go-msgauth: Close must always be called; after a successful
		// Close a second one is harmless.
		for _, ms := range signers {
			_ = ms.Close()
		}
	}()
	for _, sc := range s.cfgs {
		ms, err := msgauth.NewSigner(sc.options(counts, now))
		if err != nil {
			return fmt.Errorf("dkim: %s/%s: %w", sc.Domain, sc.Selector, err)
		}
		signers = append(signers, ms)
	}
	// The message goes to the signers in chunks of about readChunk octets,
	// the header with the first, however r delivers it: every Write to a
	// go-msgauth Signer is a hand-off to its goroutine.
	hashed := 0
	for {
		buf.Grow(readChunk)
		n, err := io.ReadFull(br, buf.AvailableBuffer()[:readChunk])
		buf.Write(buf.AvailableBuffer()[:n]) // commit what was read in place
		if chunk := buf.Bytes()[hashed:]; len(chunk) > 0 {
			for _, ms := range signers {
				if _, err := ms.Write(chunk); err != nil {
					return fmt.Errorf("dkim: hashing message: %w", err)
				}
			}
			hashed = buf.Len()
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("dkim: reading message: %w", err)
		}
	}
	sigs := make([]string, len(signers))
	for i, ms := range signers {
		if err := ms.Close(); err != nil {
			return fmt.Errorf("dkim: signing for %s/%s: %w", s.cfgs[i].Domain, s.cfgs[i].Selector, err)
		}
		sigs[i] = ms.Signature()
		if longestLine(sigs[i]) > maxLine {
			// go-msgauth does not fold inside a tag value; a long h= list
			// (many instances of a signed field) would break RFC 5322 §2.1.1.
			return fmt.Errorf("%w: the DKIM-Signature h= tag for %s/%s exceeds %d octets; sign fewer header fields",
				ErrTooManyFields, s.cfgs[i].Domain, s.cfgs[i].Selector, maxLine)
		}
	}
	for _, sig := range sigs {
		if _, err := io.WriteString(w, sig); err != nil {
			return fmt.Errorf("dkim: writing message: %w", err)
		}
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("dkim: writing message: %w", err)
	}
	return nil
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

// options returns go-msgauth's options for one message.
func (sc *signConfig) options(counts []int, now time.Time) *msgauth.SignOptions {
	o := &msgauth.SignOptions{
		Domain:                 sc.Domain,
		Selector:               sc.Selector,
		Identifier:             sc.Identifier,
		Signer:                 sc.Key,
		HeaderCanonicalization: msgauth.Canonicalization(sc.HeaderCanonicalization),
		BodyCanonicalization:   msgauth.Canonicalization(sc.BodyCanonicalization),
		HeaderKeys:             sc.headerKeys(counts),
	}
	if sc.Expiration > 0 {
		// Rounded up so that x= stays after t=, which go-msgauth takes from
		// its own clock a little later (RFC 6376 §3.5: x MUST be greater).
		o.Expiration = now.Add(sc.Expiration + time.Second).Truncate(time.Second)
	}
	return o
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
