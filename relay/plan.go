package relay

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/queue"
)

// Planner is a Transport that can say what Deliver would do with an
// envelope, without connecting to anything or changing any state. Direct,
// Fallback and smarthost.Transport are Planners; Client.Plan uses it.
type Planner interface {
	Plan(ctx context.Context, env *Envelope) *DomainPlan
}

// RoutePlan is what sending a message now would do: the checks the Client
// makes, then one DomainPlan per recipient domain. It is a dry run: the
// DNS lookups are made (and cached as for a delivery), nothing is dialled.
type RoutePlan struct {
	From     string // the envelope sender
	Size     int    // bytes as the message would go out, signed
	Signed   bool   // the Client's Signer added a DKIM signature
	SMTPUTF8 bool   // the header holds UTF-8: only servers with SMTPUTF8 can take it
	// Rejected are the recipients that would not be sent to at all: those
	// on the suppression list for all mail (Suppressed), addresses SMTP
	// cannot carry (Bounced, 5.1.3), or every recipient when the sender is
	// such an address (5.1.7).
	Rejected []RecipientResult
	// Domains are the recipient domains in first-seen order.
	Domains []DomainPlan
}

// DomainPlan is the route for one recipient domain.
type DomainPlan struct {
	Domain     string   // an A-label in lower case
	Recipients []string // the domain's recipients
	// Transport says what would deliver: "direct", "smarthost
	// smtp.example.net:587", or the Go type of a Transport that is not a
	// Planner (the rest of the plan is then empty).
	Transport string
	Source    Source // the source address (zero: the system's choice)
	// HelloName is the EHLO name; "" means the address literal of the
	// local end, known only once connected.
	HelloName string

	// MXSecure reports that the MX answer was DNSSEC-authenticated, which
	// DANE needs (RFC 7672 §2.2).
	MXSecure bool
	// MTASTS is the domain's MTA-STS policy, in enforce or testing mode,
	// or nil; MTASTSErr says why there is none when the lookup failed
	// (delivery then goes on as without a policy, RFC 8461 §5).
	MTASTS    *mx.Policy
	MTASTSErr error // the failed MTA-STS lookup, if it failed

	// Hosts are the MX hosts (or the relay host) in the order they would
	// be tried; each is tried only if those before it fail.
	Hosts []HostPlan

	// Outcome and Err, when Err is not nil, are what the attempt would
	// end in without dialling anything: Bounced for a null MX or a domain
	// that does not exist, Deferred when DNS fails or no host is usable.
	Outcome Status
	Err     error // the cause, with the sentinels of mx and relay
}

// HostPlan is the route to one MX host.
type HostPlan struct {
	Host       string // the MX host (or relay host) name
	Preference uint16 // the MX preference; lower is tried first
	// Skipped says why no address of this host would be dialled (an
	// MTA-STS policy that does not list it, a failed address or TLSA
	// lookup, the MaxMXAddresses cap); "" when some would be.
	Skipped string
	// Addrs are the host's addresses in dial order; those with a Refused
	// reason would not be dialled.
	Addrs []AddrPlan
	TLS   TLSPlan // the policy a session would be held to
	// Limits are the shaping limits for the host, defaults filled in.
	Limits DestinationLimits
	// CoolingUntil is set while the host is in back-off after pushing
	// back: no new connection before it.
	CoolingUntil time.Time
}

// AddrPlan is one address of an MX host.
type AddrPlan struct {
	Addr netip.Addr // the address, as it would be dialled
	// Refused says why the address would not be dialled: the destination
	// policy (ErrForbiddenAddress), the source address's family, the
	// MaxMXAddresses cap. "" → it would be dialled.
	Refused string
}

// TLSPlan is the TLS policy a session with a host would be held to.
type TLSPlan struct {
	// Policy is "opportunistic", "required", "mta-sts" or "dane", as in
	// TLSInfo.Policy of a result.
	Policy string
	// Required: the session must be TLS with a verified peer; a host that
	// cannot give it is skipped, never sent to in plaintext.
	Required bool
	// Source says where the policy comes from, in words.
	Source string
}

// dialable reports whether some address of the plan would be dialled.
func (p *DomainPlan) dialable() bool {
	for i := range p.Hosts {
		if hostDialable(&p.Hosts[i]) {
			return true
		}
	}
	return false
}

// hostDialable reports whether some address of h would be dialled.
func hostDialable(h *HostPlan) bool {
	for _, a := range h.Addrs {
		if a.Refused == "" {
			return true
		}
	}
	return false
}

// Plan says what Send would do with m now, without sending it: the checks
// Send makes (a message that does not validate is an error, as for Send),
// the source address and EHLO name, and for each domain the MX hosts and
// addresses, the TLS policy and its source, and the limits. The source is
// chosen among Client.Sources by weight, as for a message sent now.
func (c *Client) Plan(ctx context.Context, m *mime.Message) (*RoutePlan, error) {
	if err := c.checkConfig(); err != nil {
		return nil, err
	}
	from, data, err := c.write(m)
	if err != nil {
		return nil, err
	}
	src, err := c.pickSource(netip.Addr{})
	if err != nil {
		return nil, err
	}
	signed, err := c.sign(data)
	if err != nil {
		return nil, err
	}
	return c.plan(ctx, from, m.Recipients(), signed, len(signed) > len(data), src, "", 0), nil
}

// PlanJob is Plan for a queued message: the route its next attempt would
// take for the recipients still to be delivered, from the source the job
// is bound to (EnqueueOptions.Source) or the one the Client would pick.
// A list or tracked job, which is signed per copy, is measured signed
// but not personalised. ErrInvalidMessage for a nil job or one with
// nothing left to deliver.
func (c *Client) PlanJob(ctx context.Context, job *queue.Job) (*RoutePlan, error) {
	if job == nil {
		return nil, fmt.Errorf("%w: PlanJob of a nil job", ErrInvalidMessage)
	}
	if err := c.checkConfig(); err != nil {
		return nil, err
	}
	to := job.Remaining()
	if len(to) == 0 {
		return nil, fmt.Errorf("%w: job %q has no recipient left to deliver", ErrInvalidMessage, job.ID)
	}
	var want netip.Addr
	if s, ok := job.Metadata[sourceKey]; ok {
		want, _ = netip.ParseAddr(s)
	}
	src, err := c.pickSource(want)
	if err != nil {
		return nil, err
	}
	o := originOf(job)
	data, signed := job.Message, headerText(job.Message, "DKIM-Signature") != ""
	if o.perCopy() {
		s, err := c.sign(data)
		if err != nil {
			return nil, err
		}
		data, signed = s, len(s) > len(job.Message)
	}
	return c.plan(ctx, job.From, to, data, signed, src, o.list, job.Attempts), nil
}

// plan is the route of data, as it would go out, from from to to: the
// suppression list looked up for list (as deliver does), the transport
// told of the attempts made (which a Fallback goes by).
func (c *Client) plan(ctx context.Context, from string, to []string, data []byte, signed bool, src Source, list string, attempts int) *RoutePlan {
	p := &RoutePlan{From: from, Size: len(data), Signed: signed, SMTPUTF8: headerIs8Bit(data)}
	res := &Result{Recipients: make([]RecipientResult, len(to))}
	c.suppressed(ctx, list, to, res)
	domains, byDomain := splitByDomain(res, from, to)
	for i, r := range res.Recipients {
		if r.Recipient != "" {
			p.Rejected = append(p.Rejected, res.Recipients[i])
		}
	}
	t := c.transport()
	for _, d := range domains {
		env := &Envelope{Domain: d, From: from, SMTPUTF8: p.SMTPUTF8, Source: src, Attempts: attempts}
		for _, i := range byDomain[d] {
			env.To = append(env.To, to[i])
		}
		var dp *DomainPlan
		if pl, ok := t.(Planner); ok {
			dp = pl.Plan(ctx, env)
		}
		if dp == nil {
			dp = &DomainPlan{Transport: fmt.Sprintf("%T", t)}
		}
		dp.Domain, dp.Recipients, dp.Source = d, env.To, src
		p.Domains = append(p.Domains, *dp)
	}
	return p
}

// Plan says what Deliver would do with env now: the same MX lookup, MTA-STS
// and DANE checks, destination policy and caps, without connecting.
func (t *Direct) Plan(ctx context.Context, env *Envelope) *DomainPlan {
	dp := &DomainPlan{Domain: env.Domain, Recipients: env.To, Transport: "direct", Source: env.Source}
	dp.HelloName = env.Source.Hostname
	if dp.HelloName == "" {
		dp.HelloName = t.helloName()
	}
	a := &attempt{
		t: t, domain: env.Domain, from: env.From, rcpts: env.To, utf8: env.SMTPUTF8,
		results: make([]RecipientResult, len(env.To)),
		source:  env.Source,
		log:     discardLogger,
		plan:    dp,

		addrsLeft:    capOr(t.MaxMXAddresses, DefaultMaxMXAddresses),
		sessionsLeft: capOr(t.MaxMXSessions, DefaultMaxMXSessions),
	}
	a.run(ctx)
	dp.MXSecure = a.mxSecure
	// Hosts left out by MTA-STS were recorded first: put them back in
	// the order of preference (stable, so equal ones keep the tried order).
	slices.SortStableFunc(dp.Hosts, func(x, y HostPlan) int { return cmp.Compare(x.Preference, y.Preference) })
	return dp
}

// planHost records the route to one MX host in a dry run.
func (a *attempt) planHost(ctx context.Context, h mx.MX) {
	hp := HostPlan{Host: h.Host, Preference: h.Pref, Limits: a.t.limitsFor(h.Host)}
	a.route(ctx, h.Host, &hp)
	if hp.Skipped == "" && !hostDialable(&hp) && len(hp.Addrs) > 0 {
		hp.Skipped = "no address may be dialled"
	}
	if until, ok := a.t.pool.cooling(h.Host, time.Now()); ok {
		hp.CoolingUntil = until
	}
	a.plan.Hosts = append(a.plan.Hosts, hp)
}

// planSkipped records hosts a dry run leaves out, with the reason.
func (a *attempt) planSkipped(hosts []mx.MX, why string) {
	if a.plan == nil {
		return
	}
	for _, h := range hosts {
		a.plan.Hosts = append(a.plan.Hosts, HostPlan{Host: h.Host, Preference: h.Pref, Skipped: why, Limits: a.t.limitsFor(h.Host)})
	}
}

// planTLS describes the policy pol for a dry run; signed reports that the
// MX and address answers were DNSSEC-authenticated.
func (a *attempt) planTLS(pol tlsPolicy, signed bool) TLSPlan {
	tp := TLSPlan{Policy: pol.name(), Required: pol.required()}
	var why []string
	switch {
	case len(pol.dane) > 0:
		why = append(why, fmt.Sprintf("DANE: %d usable TLSA records, DNSSEC-authenticated (RFC 7672)", len(pol.dane)))
	case a.t.DisableDANE:
		why = append(why, "DANE disabled (Direct.DisableDANE)")
	case !signed:
		why = append(why, "no DANE: the MX or address answers are not DNSSEC-authenticated")
	default:
		why = append(why, "no DANE: no usable TLSA record")
	}
	switch {
	case pol.sts != nil:
		why = append(why, fmt.Sprintf("MTA-STS policy in enforce mode (id %q, max_age %s)", pol.sts.ID, pol.sts.MaxAge))
	case a.t.DisableMTASTS:
		why = append(why, "MTA-STS disabled (Direct.DisableMTASTS)")
	case a.plan.MTASTS != nil:
		why = append(why, fmt.Sprintf("MTA-STS policy in %s mode: not enforced", a.plan.MTASTS.Mode))
	case a.plan.MTASTSErr != nil:
		why = append(why, "no MTA-STS policy: "+a.plan.MTASTSErr.Error())
	default:
		why = append(why, "no MTA-STS policy")
	}
	if pol.requireTLS {
		why = append(why, "Direct.RequireTLS")
	}
	tp.Source = strings.Join(why, "; ")
	return tp
}

// Plan is the plan of the transport that would take env: Primary for a
// message's first After attempts, Secondary after.
func (f *Fallback) Plan(ctx context.Context, env *Envelope) *DomainPlan {
	after := f.After
	if after <= 0 {
		after = DefaultFallbackAfter
	}
	t, which := f.Primary, "primary"
	if env.Attempts >= after {
		t, which = f.Secondary, "secondary"
	}
	var dp *DomainPlan
	if pl, ok := t.(Planner); ok {
		dp = pl.Plan(ctx, env)
	}
	if dp == nil {
		dp = &DomainPlan{Domain: env.Domain, Recipients: env.To, Transport: fmt.Sprintf("%T", t), Source: env.Source}
	}
	dp.Transport = fmt.Sprintf("fallback, %s for attempt %d (attempts 1 to %d go to the primary): %s", which, env.Attempts+1, after, dp.Transport)
	return dp
}
