package relay

import (
	"bytes"
	"fmt"
	stdmime "mime"
	"net"
	"net/url"
	"strings"
)

// List is a mailing list or topic a message can belong to
// (SendOptions.List, EnqueueOptions.List): what a recipient unsubscribes
// from, and what the preferences page offers.
type List struct {
	// Name is what messages give: letters, digits, '.', '-' and '_', at
	// most 64 of them. It names the list in List-Id and in the
	// suppression list's Scope.
	Name string
	// Title is the name a person reads, on the pages and as List-Id's
	// phrase; "" → Name.
	Title string
}

// Pages tune the unsubscribe and preferences pages Handler serves.
type Pages struct {
	// SenderName names the sender on the pages ("Example Shop"); "" → the
	// host of PublicURL.
	SenderName string
	// Lists are offered on the preferences page, each with a checkbox,
	// beside "all mail from this sender". The list a link came from is
	// offered even when it is not among them.
	Lists []List
	// Strings adds or overrides translations of the pages' text, by
	// language tag ("de", "fr-CA") and then by key; English is built in
	// and is the fallback for a missing key. The keys are those of
	// DefaultStrings.
	Strings map[string]map[string]string
}

// listKey is the job metadata key under which a queued message's list is
// kept; keys starting with "mxrelay." are reserved.
const listKey = "mxrelay.list"

// reservedPrefix starts the metadata keys this package keeps in a job.
const reservedPrefix = "mxrelay."

// checkMetadata refuses caller metadata that would pose as the package's.
func checkMetadata(meta map[string]string) error {
	for k := range meta {
		if strings.HasPrefix(k, reservedPrefix) {
			return fmt.Errorf("%w: metadata key %q: keys starting with %q are reserved", ErrInvalidMessage, k, reservedPrefix)
		}
	}
	return nil
}

// checkList validates a list name; "" (no list) is valid.
func checkList(name string) error {
	if len(name) > 64 {
		return fmt.Errorf("%w: list name of %d characters, at most 64", ErrInvalidMessage, len(name))
	}
	if strings.HasPrefix(name, reservedPrefix) {
		return fmt.Errorf("%w: list name %q: the prefix \"mxrelay.\" is reserved", ErrInvalidMessage, name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return fmt.Errorf("%w: list name %q: only letters, digits, '.', '-' and '_'", ErrInvalidMessage, name)
		}
	}
	return nil
}

// listTitle is the title of a list name, from Pages.Lists.
func (c *Client) listTitle(name string) string {
	for _, l := range c.Pages.Lists {
		if l.Name == name && l.Title != "" {
			return l.Title
		}
	}
	return name
}

// checkLinks validates what list messages need: PublicURL, an https URL
// (http only on a loopback host, for tests), and LinkKeys.
func (c *Client) checkLinks() error {
	if c.PublicURL == "" {
		return fmt.Errorf("%w: a list message needs Client.PublicURL for its unsubscribe link", ErrInvalidConfig)
	}
	if _, err := c.publicURL(); err != nil {
		return err
	}
	_, err := c.linkAEADs()
	return err
}

// publicURL parses PublicURL.
func (c *Client) publicURL() (*url.URL, error) {
	u, err := url.Parse(c.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("%w: PublicURL: %w", ErrInvalidConfig, err)
	}
	loopback := false
	if ip := net.ParseIP(u.Hostname()); ip != nil {
		loopback = ip.IsLoopback()
	} else {
		loopback = u.Hostname() == "localhost"
	}
	switch {
	case u.Scheme != "https" && !(u.Scheme == "http" && loopback):
		return nil, fmt.Errorf("%w: PublicURL %q: want https (http only on loopback)", ErrInvalidConfig, c.PublicURL)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%w: PublicURL %q: want scheme, host and path only", ErrInvalidConfig, c.PublicURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// linkURL is the URL of an endpoint for a sealed token.
func (c *Client) linkURL(kind, token string) (string, error) {
	u, err := c.publicURL()
	if err != nil {
		return "", err
	}
	return u.String() + "/" + kind + "/" + token, nil
}

// personalise returns the message for one recipient of a list message:
// base with List-Unsubscribe (a link of the recipient's own),
// List-Unsubscribe-Post (RFC 8058) and List-Id (RFC 2919) in front. The
// Signer then signs both List-Unsubscribe fields, as RFC 8058 §3.1 wants.
func (c *Client) personalise(base []byte, from, rcpt, list, msgID string) ([]byte, error) {
	if msgID == "" {
		msgID = messageID(base)
	}
	token, err := c.seal(link{addr: rcpt, list: list, msgID: msgID})
	if err != nil {
		return nil, err
	}
	u, err := c.linkURL("u", token)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(base) + 2*len(u) + 300)
	b.WriteString("List-Unsubscribe: <")
	b.WriteString(u)
	b.WriteString(">")
	if c.BounceDomain != "" {
		// RFC 2369 §3.2: a mailto: beside the URL, for clients that
		// unsubscribe by mail. The local part lets ServeInbound accept it;
		// the subject carries the sealed link, which names the address
		// even when the reply comes from another one.
		local, err := c.makeToken(tokenUnsubscribe, msgID, msgID, rcpt, list)
		if err != nil {
			return nil, err
		}
		b.WriteString(",\r\n <mailto:")
		b.WriteString(local)
		b.WriteString("@")
		b.WriteString(c.bounceDomain())
		b.WriteString("?subject=unsubscribe%20")
		b.WriteString(token)
		b.WriteString(">")
	}
	b.WriteString("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
	b.WriteString(listID(c.listTitle(list), list, domainOf(from)))
	b.Write(base)
	return b.Bytes(), nil
}

// listID is the List-Id header field (RFC 2919): the title as phrase, and
// the list name under the sender's domain as id.
func listID(title, name, domain string) string {
	id := strings.ToLower(name) + "." + strings.ToLower(domain)
	phrase := stdmime.QEncoding.Encode("utf-8", title)
	if phrase == title {
		phrase = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(title) + `"`
	}
	return "List-Id: " + phrase + " <" + id + ">\r\n"
}

// messageID is the Message-ID of a written message, with its angle
// brackets, or "".
func messageID(data []byte) string { return headerText(data, "Message-ID") }
