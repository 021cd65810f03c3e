package bounce

import (
	"fmt"
	"strconv"
)

// Category says what kind of failure a reply or a bounce reports. The zero
// value is [Other]. Its text form (String, MarshalText) is the lower-case,
// hyphenated name given with each constant; [ParseCategory] and
// UnmarshalText accept exactly those names.
type Category int

// The categories. The package documentation says what each one asks of a
// sender.
const (
	// Other: nothing more specific matched ("other"). Retry if temporary;
	// if permanent, read the text.
	Other Category = iota

	// InvalidRecipient: the mailbox does not exist or the address is bad
	// ("invalid-recipient"). Permanent ones are suppressed.
	InvalidRecipient

	// UnknownDomain: the domain does not exist or accepts no mail, as a
	// null MX says ("unknown-domain"). Permanent ones are suppressed.
	UnknownDomain

	// MailboxFull: the mailbox is over quota ("mailbox-full"). Retry later;
	// a mailbox that stays full for weeks is probably abandoned.
	MailboxFull

	// MailboxDisabled: the account exists but is disabled, inactive or
	// suspended ("mailbox-disabled"). Stop sending for now; it may come back.
	MailboxDisabled

	// MessageTooLarge: the message, or one of its parts or headers, is over
	// the receiver's size limit ("message-too-large"). Make it smaller.
	MessageTooLarge

	// ContentBlock: refused for what the message contains or how it is
	// formed: spam-like content, a virus, a URL's reputation, malformed or
	// non-RFC 5322 headers ("content-block"). Change the message.
	ContentBlock

	// PolicyBlock: refused because of the sending IP's or domain's
	// reputation, a blocklist, or the receiver's policy ("policy-block").
	// Fix the reputation or ask to be delisted; the address is not at fault.
	PolicyBlock

	// RateLimited: too many messages, recipients or connections; try again
	// later and more slowly ("rate-limited").
	RateLimited

	// AuthFailure: the sender's identity was not accepted: SPF, DKIM or
	// DMARC failed, no reverse DNS, a sender domain that does not resolve,
	// or SMTP AUTH was wanted ("auth-failure"). Fix the sending setup.
	AuthFailure

	// TLSRequired: a TLS requirement was not met, the receiver's (STARTTLS,
	// REQUIRETLS) or ours (MTA-STS, DANE) ("tls-required").
	TLSRequired

	// Routing: the mail could not be routed or carried: no route, connection
	// refused or timed out, DNS failure, relaying denied, a mail loop, a
	// message that expired in the queue ("routing").
	Routing

	numCategories
)

var categoryNames = [numCategories]string{
	Other:            "other",
	InvalidRecipient: "invalid-recipient",
	UnknownDomain:    "unknown-domain",
	MailboxFull:      "mailbox-full",
	MailboxDisabled:  "mailbox-disabled",
	MessageTooLarge:  "message-too-large",
	ContentBlock:     "content-block",
	PolicyBlock:      "policy-block",
	RateLimited:      "rate-limited",
	AuthFailure:      "auth-failure",
	TLSRequired:      "tls-required",
	Routing:          "routing",
}

// String returns the category's name, such as "invalid-recipient", or
// "Category(N)" for a value that is not one of the constants.
func (c Category) String() string {
	if c >= 0 && c < numCategories {
		return categoryNames[c]
	}
	return "Category(" + strconv.Itoa(int(c)) + ")"
}

// MarshalText returns the category's name. It fails for a value that is not
// one of the constants, so that no unreadable name is ever stored.
func (c Category) MarshalText() ([]byte, error) {
	if c < 0 || c >= numCategories {
		return nil, fmt.Errorf("bounce: cannot marshal unknown category %d", int(c))
	}
	return []byte(categoryNames[c]), nil
}

// UnmarshalText sets c from a name as MarshalText writes it.
func (c *Category) UnmarshalText(b []byte) error {
	v, err := ParseCategory(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// ParseCategory returns the category with the given name, as String writes
// it ("invalid-recipient"). Names are matched exactly: lower case, with
// hyphens.
func ParseCategory(s string) (Category, error) {
	for c, name := range categoryNames {
		if s == name {
			return Category(c), nil
		}
	}
	return Other, fmt.Errorf("bounce: unknown category %q", s)
}
