package webhook

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/mxrelay/mxrelay/queue"
)

// Endpoint is one receiver of deliveries and the outbox that feeds it.
type Endpoint struct {
	// Name is the outbox's key, the Endpoint of the queue.OutboxEntry
	// values appended for this receiver, and the "endpoint" of each
	// payload. Empty: the URL. At most queue.MaxEndpointLen octets, no
	// control characters; unique within a Dispatcher.
	Name string
	// URL is where the batches are POSTed: http or https, with a host, no
	// user name or password (put credentials in the secret, or in the
	// path or query), no fragment.
	URL string
	// Secrets sign every POST, each giving one v1 signature in the
	// Mxrelay-Signature header, in order: list the new secret first and
	// keep the old one while receivers move over (see the package
	// documentation on rotation). At least one; each at least
	// MinSecretLen octets.
	Secrets [][]byte
}

// name returns the outbox key.
func (e *Endpoint) name() string {
	if e.Name == "" {
		return e.URL
	}
	return e.Name
}

// check returns an error wrapping ErrInvalidEndpoint when e cannot be
// used; i is its index in Dispatcher.Endpoints, for the message.
func (e *Endpoint) check(i int) error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: Endpoints[%d]: %s", ErrInvalidEndpoint, i, fmt.Sprintf(format, args...))
	}
	if err := checkURL(e.URL); err != nil {
		return fail("%v", err)
	}
	name := e.name()
	if len(name) > queue.MaxEndpointLen {
		return fail("name of %d octets, over %d", len(name), queue.MaxEndpointLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c == 0x7f {
			return fail("name %q has a control character", name)
		}
	}
	if len(e.Secrets) == 0 {
		return fail("no secret")
	}
	for j, s := range e.Secrets {
		if len(s) < MinSecretLen {
			return fail("secret %d is %d octets, under %d", j, len(s), MinSecretLen)
		}
	}
	return nil
}

// checkURL accepts an absolute http or https URL with a host and no
// userinfo, fragment, space or control character.
func checkURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("no URL")
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("URL has a space or control character")
		}
	}
	if strings.Contains(raw, "#") {
		return fmt.Errorf("URL has a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("URL scheme %q, want http or https", u.Scheme)
	case u.Opaque != "" || u.Hostname() == "":
		return fmt.Errorf("URL without a host")
	case u.User != nil:
		return fmt.Errorf("URL with a user name")
	}
	return nil
}
