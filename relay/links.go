package relay

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrBadLink: a link token that does not open with any of LinkKeys, is
// malformed or truncated. The handler answers it with 400 and changes
// nothing.
var ErrBadLink = errors.New("relay: invalid or tampered link")

// MinLinkKeySize is the shortest key LinkKeys accepts, in bytes.
const MinLinkKeySize = 32

// link is what an unsubscribe link stands for. It travels sealed (AES-GCM
// under a key derived from LinkKeys), so the address in it is neither
// readable nor changeable by whoever sees the URL.
type link struct {
	kind  byte   // linkUnsubscribe, linkOpen or linkClick
	addr  string // the recipient, as sent
	list  string // the list the message came from ("" for none)
	msgID string // the job or history record id, or the Message-ID for a message never recorded
	url   string // the target of a click link
	sent  int64  // when the copy was made, in Unix seconds (open and click links)
}

// Link kinds. A token opens only at the endpoint of its kind, so that a
// click link can never unsubscribe, nor an unsubscribe link redirect.
const (
	linkUnsubscribe = 'u'
	linkOpen        = 'o'
	linkClick       = 'c'
)

const (
	linkVersion  = 1 // unsubscribe links: addr, list, msgID
	linkVersion2 = 2 // any kind: kind, addr, list, msgID, url, sent
	linkKeyLabel = "mxrelay link v1"
	maxLinkField = 4096
)

// linkAEADs returns one AEAD per LinkKeys entry, the first for sealing.
func (c *Client) linkAEADs() ([]cipher.AEAD, error) {
	c.linkOnce.Do(func() {
		for i, k := range c.LinkKeys {
			if len(k) < MinLinkKeySize {
				c.linkErr = fmt.Errorf("%w: LinkKeys[%d] has %d bytes, want at least %d", ErrInvalidConfig, i, len(k), MinLinkKeySize)
				return
			}
			m := hmac.New(sha256.New, k)
			m.Write([]byte(linkKeyLabel))
			block, err := aes.NewCipher(m.Sum(nil))
			if err != nil {
				c.linkErr = err
				return
			}
			aead, err := cipher.NewGCM(block)
			if err != nil {
				c.linkErr = err
				return
			}
			c.linkKeys = append(c.linkKeys, aead)
			c.tokenKeys = append(c.tokenKeys, newTokenKeys(k))
		}
	})
	if c.linkErr != nil {
		return nil, c.linkErr
	}
	if len(c.linkKeys) == 0 {
		return nil, fmt.Errorf("%w: no LinkKeys", ErrInvalidConfig)
	}
	return c.linkKeys, nil
}

// seal makes the token for l, with the first key.
func (c *Client) seal(l link) (string, error) {
	keys, err := c.linkAEADs()
	if err != nil {
		return "", err
	}
	aead := keys[0]
	var plain []byte
	fields := []string{l.addr, l.list, l.msgID}
	if l.kind == 0 || l.kind == linkUnsubscribe {
		plain = []byte{linkVersion}
	} else {
		plain = []byte{linkVersion2, l.kind}
		plain = binary.AppendVarint(plain, l.sent)
		fields = append(fields, l.url)
	}
	for _, f := range fields {
		if len(f) > maxLinkField {
			return "", fmt.Errorf("relay: link field of %d bytes", len(f))
		}
		plain = binary.AppendUvarint(plain, uint64(len(f)))
		plain = append(plain, f...)
	}
	out := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return "", err
	}
	out = aead.Seal(out, out, plain, []byte(linkKeyLabel))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// open checks a token with every key and returns what it stands for.
func (c *Client) open(token string) (link, error) {
	keys, err := c.linkAEADs()
	if err != nil {
		return link{}, err
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(token) > 8*maxLinkField {
		return link{}, ErrBadLink
	}
	for _, aead := range keys {
		n := aead.NonceSize()
		if len(raw) < n+aead.Overhead() {
			return link{}, ErrBadLink
		}
		plain, err := aead.Open(nil, raw[:n], raw[n:], []byte(linkKeyLabel))
		if err != nil {
			continue
		}
		return decodeLink(plain)
	}
	return link{}, ErrBadLink
}

func decodeLink(b []byte) (link, error) {
	if len(b) == 0 || (b[0] != linkVersion && b[0] != linkVersion2) {
		return link{}, ErrBadLink
	}
	l := link{kind: linkUnsubscribe}
	n := 3
	if b[0] == linkVersion2 {
		if len(b) < 2 {
			return link{}, ErrBadLink
		}
		l.kind = b[1]
		sent, k := binary.Varint(b[2:])
		if k <= 0 {
			return link{}, ErrBadLink
		}
		l.sent = sent
		b = b[2+k:]
		n = 4
	} else {
		b = b[1:]
	}
	f := make([]string, n)
	for i := range f {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > maxLinkField || uint64(len(b)-k) < n {
			return link{}, ErrBadLink
		}
		f[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	if len(b) != 0 || f[0] == "" {
		return link{}, ErrBadLink
	}
	l.addr, l.list, l.msgID = f[0], f[1], f[2]
	if n == 4 {
		l.url = f[3]
	}
	return l, nil
}
