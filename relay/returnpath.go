package relay

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/mxrelay/mxrelay/mime"
)

// Return paths (VERP). With Client.BounceDomain set, every copy goes out
// from an envelope sender of its own, "b<token>@BounceDomain", and the
// same token is the ENVID of RFC 3461. A bounce, a delay notice or an
// auto-reply sent to that address names the message and the recipient
// without any state kept: the token holds
//
//	kind    1 byte   tokenBounce or tokenUnsubscribe, and how ref was made
//	ref    16 bytes  the queue job id, or for a Send not queued the first
//	                 16 bytes of SHA-256 of its Message-ID
//	rcpt    6 bytes  an HMAC of the recipient's address
//	list    4 bytes  an HMAC of the list name (unsubscribe tokens only)
//	mac     8 bytes  an HMAC of all of the above
//
// in lower-case base32, 51 characters (57 for unsubscribe tokens), under
// the 64 octets RFC 5321 §4.5.3.1.1 allows a local part, and unchanged by
// MTAs that fold a local part's case. The address itself does not fit, so
// a bounce's recipient comes from the report (Original-Recipient, which
// ORCPT asks for, Final-Recipient, the returned header) and counts only
// when its HMAC matches the token's: a report can never suppress an
// address the message was not sent to.
const (
	tokenBounce      = 'b' // local-part prefix of a return path
	tokenUnsubscribe = 'u' // local-part prefix of a mailto unsubscribe

	refJob       = 1 // ref is a queue job id (32 hex digits)
	refMessageID = 2 // ref is a hash of the Message-ID

	rpRefSize  = 16
	rpRcptSize = 6
	rpListSize = 4
	rpMACSize  = 8

	rpMACLabel  = "mxrelay return path v1"
	rpRcptLabel = "mxrelay return path recipient v1"
	rpListLabel = "mxrelay return path list v1"
)

// rpEncoding is base32 in lower case without padding: only letters and
// digits, so the token is a dot-atom and survives case folding.
var rpEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// errBadToken: a local part that is not a token of ours, or whose MAC
// does not match any of LinkKeys.
var errBadToken = errors.New("relay: not a valid return-path token")

// returnToken is what a return-path or mailto-unsubscribe token holds.
type returnToken struct {
	prefix  byte             // tokenBounce or tokenUnsubscribe
	refKind byte             // refJob or refMessageID
	ref     [rpRefSize]byte  // job id bytes or Message-ID hash
	rcpt    [rpRcptSize]byte // recipient tag
	list    [rpListSize]byte // list tag (unsubscribe tokens)
	key     int              // the LinkKeys entry that made it (when opened)
}

// jobID returns the queue job id the token refers to, or "" when it
// refers to a Message-ID.
func (t *returnToken) jobID() string {
	if t.refKind != refJob {
		return ""
	}
	return hex.EncodeToString(t.ref[:])
}

// tokenKey derives a key for label from LinkKeys[i].
func tokenKey(linkKey []byte, label string) []byte {
	m := hmac.New(sha256.New, linkKey)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// tokenKeys are the keys tokens are made with, derived from one of
// LinkKeys once (linkAEADs).
type tokenKeys struct{ mac, rcpt, list []byte }

func newTokenKeys(linkKey []byte) tokenKeys {
	return tokenKeys{tokenKey(linkKey, rpMACLabel), tokenKey(linkKey, rpRcptLabel), tokenKey(linkKey, rpListLabel)}
}

// tag is an HMAC of s under the label's key from LinkKeys[i], cut to n
// bytes. linkAEADs has succeeded.
func (c *Client) tag(i int, label, s string, n int) []byte {
	k := &c.tokenKeys[i]
	key := k.mac
	switch label {
	case rpRcptLabel:
		key = k.rcpt
	case rpListLabel:
		key = k.list
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)[:n]
}

// rcptTagKey is how an address is compared for a token: normalised
// (A-label domain) and in lower case, since MTAs report the case of a
// local part as they please.
func rcptTagKey(addr string) string {
	if n, err := mime.NormalizeAddress(addr); err == nil {
		addr = n
	}
	return strings.ToLower(addr)
}

// makeToken builds the token for one recipient of one message, with the
// first of LinkKeys. msgID is the job id or, for a Send not queued, the
// Message-ID.
func (c *Client) makeToken(prefix byte, jobID, messageID, rcpt, list string) (string, error) {
	if _, err := c.linkAEADs(); err != nil { // validates LinkKeys
		return "", err
	}
	t := returnToken{prefix: prefix, refKind: refMessageID}
	if b, err := hex.DecodeString(jobID); err == nil && len(b) == rpRefSize {
		t.refKind = refJob
		copy(t.ref[:], b)
	} else {
		h := sha256.Sum256([]byte(strings.Trim(messageID, "<>")))
		copy(t.ref[:], h[:])
	}
	copy(t.rcpt[:], c.tag(0, rpRcptLabel, rcptTagKey(rcpt), rpRcptSize))
	copy(t.list[:], c.tag(0, rpListLabel, list, rpListSize))
	raw := t.body()
	raw = append(raw, c.tag(0, rpMACLabel, string(raw), rpMACSize)...)
	return string(prefix) + rpEncoding.EncodeToString(raw), nil
}

// body is the token's bytes before the MAC.
func (t *returnToken) body() []byte {
	raw := make([]byte, 0, 1+rpRefSize+rpRcptSize+rpListSize+rpMACSize)
	raw = append(raw, t.refKind)
	raw = append(raw, t.ref[:]...)
	raw = append(raw, t.rcpt[:]...)
	if t.prefix == tokenUnsubscribe {
		raw = append(raw, t.list[:]...)
	}
	return raw
}

// openToken checks a local part with every key and returns its token.
func (c *Client) openToken(local string) (*returnToken, error) {
	if _, err := c.linkAEADs(); err != nil {
		return nil, err
	}
	local = strings.ToLower(local)
	if len(local) < 2 || len(local) > 64 {
		return nil, errBadToken
	}
	t := &returnToken{prefix: local[0]}
	want := 1 + rpRefSize + rpRcptSize + rpMACSize
	switch t.prefix {
	case tokenBounce:
	case tokenUnsubscribe:
		want += rpListSize
	default:
		return nil, errBadToken
	}
	raw, err := rpEncoding.DecodeString(local[1:])
	if err != nil || len(raw) != want {
		return nil, errBadToken
	}
	t.refKind = raw[0]
	if t.refKind != refJob && t.refKind != refMessageID {
		return nil, errBadToken
	}
	copy(t.ref[:], raw[1:])
	copy(t.rcpt[:], raw[1+rpRefSize:])
	if t.prefix == tokenUnsubscribe {
		copy(t.list[:], raw[1+rpRefSize+rpRcptSize:])
	}
	body, mac := raw[:len(raw)-rpMACSize], raw[len(raw)-rpMACSize:]
	for i := range c.tokenKeys {
		if hmac.Equal(mac, c.tag(i, rpMACLabel, string(body), rpMACSize)) {
			t.key = i
			return t, nil
		}
	}
	return nil, errBadToken
}

// isRecipient reports whether addr is the recipient the token was made
// for.
func (c *Client) isRecipient(t *returnToken, addr string) bool {
	if addr == "" {
		return false
	}
	return hmac.Equal(t.rcpt[:], c.tag(t.key, rpRcptLabel, rcptTagKey(addr), rpRcptSize))
}

// isList reports whether list is the list the unsubscribe token was made
// for.
func (c *Client) isList(t *returnToken, list string) bool {
	return hmac.Equal(t.list[:], c.tag(t.key, rpListLabel, list, rpListSize))
}

// isMessage reports whether a Message-ID is the one a token refers to
// (for a token made for a Send that was not queued).
func (t *returnToken) isMessage(messageID string) bool {
	if t.refKind != refMessageID || messageID == "" {
		return false
	}
	h := sha256.Sum256([]byte(strings.Trim(messageID, "<>")))
	return hmac.Equal(h[:rpRefSize], t.ref[:])
}

// returnPath is the envelope sender for one recipient of a message, under
// BounceDomain, and its token (the ENVID).
func (c *Client) returnPath(jobID, messageID, rcpt string) (addr, token string, err error) {
	token, err = c.makeToken(tokenBounce, jobID, messageID, rcpt, "")
	if err != nil {
		return "", "", err
	}
	return token + "@" + c.bounceDomain(), token, nil
}

// bounceDomain is BounceDomain in lower case, as an A-label.
func (c *Client) bounceDomain() string {
	d := strings.ToLower(strings.TrimSuffix(c.BounceDomain, "."))
	if n, err := mime.NormalizeAddress("x@" + d); err == nil {
		d = domainOf(n)
	}
	return d
}

// checkBounceDomain validates BounceDomain and that LinkKeys, which make
// its tokens, are set.
func (c *Client) checkBounceDomain() error {
	if c.BounceDomain == "" {
		return nil
	}
	d := strings.TrimSuffix(c.BounceDomain, ".")
	if _, err := mime.NormalizeAddress("postmaster@" + d); err != nil || !strings.Contains(d, ".") || strings.ContainsAny(d, "[]") {
		return fmt.Errorf("%w: BounceDomain %q is not a domain name", ErrInvalidConfig, c.BounceDomain)
	}
	if len(c.LinkKeys) == 0 {
		return fmt.Errorf("%w: BounceDomain needs LinkKeys, which sign its return paths", ErrInvalidConfig)
	}
	_, err := c.linkAEADs()
	return err
}
