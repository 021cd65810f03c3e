package relay

import (
	"context"
	"errors"
)

// DefaultFallbackAfter is Fallback.After when zero.
const DefaultFallbackAfter = 3

// Fallback is a Transport that delivers with Primary until a message has
// had After attempts, and with Secondary from then on: direct delivery
// first, then a smarthost for mail the recipients' servers keep
// deferring (or whose MX hosts cannot be reached from this network).
//
//	c := &relay.Client{Store: store, Transport: &relay.Fallback{
//		Primary:   &relay.Direct{Hostname: "mail.example.org"},
//		Secondary: &smarthost.Transport{Addr: "smtp.provider.example:587", Username: u, Password: p},
//		After:     3, // the fourth attempt goes to the smarthost
//	}}
//
// A Send's first attempt is attempt 0, so with a Store the queue's
// retries count on from there.
type Fallback struct {
	// Primary takes a message's first After attempts, Secondary the rest.
	Primary, Secondary Transport
	// After is the number of attempts that go to Primary. 0 →
	// DefaultFallbackAfter.
	After int
}

// Deliver hands env to Primary or Secondary by its attempt count.
func (f *Fallback) Deliver(ctx context.Context, env *Envelope) []RecipientResult {
	after := f.After
	if after <= 0 {
		after = DefaultFallbackAfter
	}
	if env.Attempts >= after {
		return f.Secondary.Deliver(ctx, env)
	}
	return f.Primary.Deliver(ctx, env)
}

// Validate checks both transports.
func (f *Fallback) Validate() error {
	if f.Primary == nil || f.Secondary == nil {
		return errors.Join(ErrInvalidConfig, errors.New("relay: Fallback needs a Primary and a Secondary"))
	}
	var errs []error
	for _, t := range []Transport{f.Primary, f.Secondary} {
		if v, ok := t.(interface{ Validate() error }); ok {
			errs = append(errs, v.Validate())
		}
	}
	return errors.Join(errs...)
}

// CloseIdleConnections closes the idle connections of both transports.
func (f *Fallback) CloseIdleConnections() {
	for _, t := range []Transport{f.Primary, f.Secondary} {
		if c, ok := t.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}
