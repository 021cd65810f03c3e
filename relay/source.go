package relay

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/mxrelay/mxrelay/relay/internal/smtpclient"
)

// ErrUnknownSource: a message asked for a source address that is not one
// of Client.Sources, or a Source is malformed.
var ErrUnknownSource = errors.New("relay: unknown source address")

// Source is a local address to send from (a "dedicated IP"), with the name
// its connections give in EHLO. Receivers judge the reputation of each
// sending address separately, so bulk and transactional mail are often
// kept on different ones.
type Source struct {
	Addr     netip.Addr // local address to bind; must be configured on this host
	Hostname string     // EHLO name from this address (its reverse DNS); "" → the transport's Hostname
	Weight   int        // share of the messages not given a source; 0 → 1
}

// sourceKey is the job metadata key under which EnqueueOptions.Source is
// kept; keys starting with "mxrelay." are reserved.
const sourceKey = "mxrelay.source"

// pickSource returns the Source for one message: the one whose address is
// want, or, when want is unset, one chosen at random by weight. Without
// Sources it returns the zero Source (the system picks the address).
func (c *Client) pickSource(want netip.Addr) (Source, error) {
	if want.IsValid() {
		for _, s := range c.Sources {
			if s.Addr == want {
				return s, nil
			}
		}
		return Source{}, fmt.Errorf("%w: %s", ErrUnknownSource, want)
	}
	if len(c.Sources) == 0 {
		return Source{}, nil
	}
	total := 0
	for _, s := range c.Sources {
		total += max(s.Weight, 1)
	}
	n := rand.IntN(total)
	for _, s := range c.Sources {
		if n -= max(s.Weight, 1); n < 0 {
			return s, nil
		}
	}
	return c.Sources[len(c.Sources)-1], nil
}

// checkSources validates Client.Sources before anything is sent.
func (c *Client) checkSources() error {
	for _, s := range c.Sources {
		if !s.Addr.IsValid() {
			return fmt.Errorf("%w: a Source has no address", ErrUnknownSource)
		}
		if s.Hostname != "" {
			if err := smtpclient.CheckHelloName(s.Hostname); err != nil {
				return fmt.Errorf("%w: %w: Source %s: %w", ErrInvalidConfig, ErrInvalidEnvelope, s.Addr, err)
			}
		}
	}
	return nil
}

// sameFamily reports whether a connection from src can reach dst.
func sameFamily(src, dst netip.Addr) bool {
	return !src.IsValid() || src.Unmap().Is4() == dst.Unmap().Is4()
}
