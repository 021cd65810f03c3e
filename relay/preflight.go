package relay

import (
	"context"
	"fmt"

	"github.com/mxrelay/mxrelay/preflight"
)

// Report is a preflight's findings (package preflight): what the DNS
// says about a sending domain, each finding with its fix.
type Report = preflight.Report

// Preflight checks domain's DNS setup for the mail this Client sends, with
// the Client's own resolver (that of its Direct transport): SPF authorises
// every one of Sources, each DKIM key of Signer is published and matches,
// DMARC exists and aligns with the DKIM domain and the envelope domain
// (BounceDomain when set), each source's reverse DNS is forward-confirmed
// and matches its EHLO name, the From and bounce domains accept mail, and,
// when PublicURL is set (the Client sends list mail with one-click
// unsubscribe), the bulk-sender rules. A DNS failure is a finding, not an
// error; the error wraps ErrInvalidConfig or preflight.ErrInvalidConfig
// for a Client or domain that cannot be checked.
//
// Without Sources the addresses mail leaves from are unknown (the
// operating system picks them), so SPF authorisation and reverse DNS
// are not checked: call preflight.Check with the public address then.
func (c *Client) Preflight(ctx context.Context, domain string) (*Report, error) {
	if err := c.checkConfig(); err != nil {
		return nil, err
	}
	cfg := &preflight.Config{
		Domain:          domain,
		BounceDomain:    c.bounceDomain(),
		Keys:            c.Signer.Keys(),
		ListMail:        c.PublicURL != "",
		ListUnsubscribe: c.PublicURL != "" && len(c.LinkKeys) > 0,
	}
	d, ok := c.transport().(*Direct)
	if !ok {
		return nil, fmt.Errorf("%w: Preflight needs the Direct transport, whose resolver and addresses it checks", ErrInvalidConfig)
	}
	cfg.Resolver = d.resolver()
	cfg.Hostname = d.helloName()
	if d.RequireTLS {
		cfg.TLS = preflight.TLSRequired
	}
	for _, s := range c.Sources {
		cfg.Sources = append(cfg.Sources, preflight.Source{Addr: s.Addr, Hostname: s.Hostname})
	}
	if c.now != nil {
		cfg.Now = c.now
	}
	return preflight.Check(ctx, cfg)
}
