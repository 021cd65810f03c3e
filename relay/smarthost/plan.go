package smarthost

import (
	"context"
	"net"
	"net/netip"

	"github.com/mxrelay/mxrelay/relay"
)

var _ relay.Planner = (*Transport)(nil)

// Plan says what Deliver would do with env, without connecting: the relay
// host and its addresses, the TLS it is held to (always required), the
// EHLO name and the connection cap. An address lookup that fails leaves
// the plan's Err set; Deliver would defer the recipients.
func (t *Transport) Plan(ctx context.Context, env *relay.Envelope) *relay.DomainPlan {
	dp := &relay.DomainPlan{Domain: env.Domain, Recipients: env.To, Transport: "smarthost " + t.Addr, Source: env.Source}
	dp.HelloName = cmpOr(env.Source.Hostname, t.Hostname)
	if err := t.Validate(); err != nil {
		dp.Outcome, dp.Err = relay.Deferred, err
		return dp
	}
	host, port, _ := net.SplitHostPort(t.Addr)
	hp := relay.HostPlan{
		Host:   host,
		Limits: relay.DestinationLimits{MaxConnections: cmpOr(t.MaxConnections, DefaultMaxConnections)},
		TLS:    relay.TLSPlan{Policy: "required", Required: true, Source: "smarthost: STARTTLS required before AUTH"},
	}
	if t.ImplicitTLS || port == "465" {
		hp.TLS.Source = "smarthost: implicit TLS"
	}
	if t.Username != "" {
		hp.TLS.Source += "; AUTH as " + t.Username
	}
	var addrs []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
		hp.Skipped = "address lookup: " + err.Error()
		dp.Outcome, dp.Err = relay.Deferred, err
	}
	for _, ip := range addrs {
		ap := relay.AddrPlan{Addr: ip.Unmap()}
		if env.Source.Addr.IsValid() && env.Source.Addr.Unmap().Is4() != ap.Addr.Is4() {
			ap.Refused = "not the source address's family"
		}
		hp.Addrs = append(hp.Addrs, ap)
	}
	dp.Hosts = []relay.HostPlan{hp}
	return dp
}
