package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/mxrelay/mxrelay/bounce"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/relay/internal/smtpclient"
)

// deliver makes one attempt for every recipient, domains in parallel, and
// returns the results in the order of to. Recipients on the suppression
// list are left out; a list message goes to each recipient in its own
// envelope, personalised and signed for it.
func (c *Client) deliver(ctx context.Context, from string, to []string, data []byte, o origin) *Result {
	res := &Result{Recipients: make([]RecipientResult, len(to))}
	c.suppressed(ctx, o.list, to, res)
	domains, byDomain := splitByDomain(res, from, to)
	o.utf8 = headerIs8Bit(data)
	// With a BounceDomain, and for a list message, every recipient has an
	// envelope of its own: its own return path, its own copy.
	verp := c.BounceDomain != "" && from != ""
	single := verp || o.perCopy()
	var msgID string
	if (verp || o.perCopy()) && o.recordID() == "" {
		msgID = messageID(data)
	}
	var tmpl *trackTemplate
	if o.track {
		if base, err := c.publicURL(); err == nil {
			tmpl = newTrackTemplate(data, base.String()+"/")
		}
	}
	// one delivers one envelope.
	one := func(d string, idx []int) {
		rcpts := make([]string, len(idx))
		for j, i := range idx {
			rcpts[j] = to[i]
		}
		env := &Envelope{Domain: d, From: from, To: rcpts, Data: data,
			SMTPUTF8: o.utf8, Source: o.src, MessageID: o.id, Attempts: o.attempts}
		if err := c.ownCopy(env, msgID, verp, o, tmpl); err != nil {
			// The configuration broke under a queued message: retry.
			i := idx[0]
			res.Recipients[i] = RecipientResult{Recipient: to[i]}
			res.Recipients[i].fail(Deferred, &Error{Recipient: to[i], Enhanced: "4.3.5", Message: err.Error(), Err: err})
			return
		}
		out := c.deliverDomain(ctx, env, o)
		for j, i := range idx {
			res.Recipients[i] = out[j]
		}
	}
	// A message of one envelope (one domain, or one recipient) is
	// delivered by the caller's goroutine: a new goroutine per message
	// would cost its start and the growth of its stack.
	if len(domains) == 1 && (!single || len(byDomain[domains[0]]) == 1) {
		one(domains[0], byDomain[domains[0]])
		return finish(res)
	}
	limit := c.MaxParallelDomains
	if limit <= 0 {
		limit = DefaultMaxParallelDomains
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	// send delivers one envelope in a goroutine of its own, under the
	// limit. A list message's envelope has one recipient, and its copy is
	// personalised and signed there too, so that signing runs in parallel.
	send := func(d string, idx []int) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			one(d, idx)
		}()
	}
	for _, d := range domains {
		if !single {
			send(d, byDomain[d])
			continue
		}
		for _, i := range byDomain[d] {
			send(d, []int{i})
		}
	}
	wg.Wait()
	return finish(res)
}

// finish classifies the failures deliver left unclassified.
func finish(res *Result) *Result {
	for i := range res.Recipients {
		r := &res.Recipients[i]
		if (r.Status == Deferred || r.Status == Bounced) && r.Category == bounce.Other {
			r.Category = bounce.Classify(r.Code, r.Enhanced, r.Message).Category
		}
	}
	return res
}

// ownCopy makes env, which has one recipient, that recipient's own: the
// return path under BounceDomain (verp), and for a list message the
// personalised copy, signed.
func (c *Client) ownCopy(env *Envelope, msgID string, verp bool, o origin, tmpl *trackTemplate) error {
	rcpt, from := env.To[0], env.From
	id := o.recordID()
	if verp {
		var err error
		if env.From, env.EnvelopeID, err = c.returnPath(id, msgID, rcpt); err != nil {
			return err
		}
	}
	if !o.perCopy() {
		return nil
	}
	if id == "" {
		id = msgID
	}
	own := env.Data
	var err error
	if o.track {
		if own, err = c.personaliseTracking(own, rcpt, id, tmpl); err != nil {
			return err
		}
	}
	if o.list != "" {
		if own, err = c.personalise(own, from, rcpt, o.list, id); err != nil {
			return err
		}
	}
	env.Data, err = c.sign(own)
	return err
}

// splitByDomain groups the recipients by domain, in first-seen order, as
// indexes into to, leaving out those res holds a result for already. An
// address SMTP cannot carry fails alone in res, before any connection,
// rather than taking its domain's other recipients with it; a bad sender
// fails every recipient (RFC 3463 5.1.7 and 5.1.3).
func splitByDomain(res *Result, from string, to []string) (domains []string, byDomain map[string][]int) {
	if err := smtpclient.CheckReversePath(from); err != nil {
		bad := &Error{Enhanced: "5.1.7", Message: err.Error(), Permanent: true, Err: fmt.Errorf("%w: %w", ErrInvalidEnvelope, err)}
		for i, r := range to {
			res.Recipients[i] = RecipientResult{Recipient: r}
			res.Recipients[i].fail(Bounced, bad)
		}
		return nil, nil
	}
	byDomain = make(map[string][]int)
	for i, r := range to {
		if res.Recipients[i].Recipient != "" {
			continue // decided already (suppressed)
		}
		if err := smtpclient.CheckForwardPath(r); err != nil {
			res.Recipients[i] = RecipientResult{Recipient: r}
			res.Recipients[i].fail(Bounced, &Error{Recipient: r, Enhanced: "5.1.3", Message: err.Error(), Permanent: true,
				Err: fmt.Errorf("%w: %w", ErrInvalidEnvelope, err)})
			continue
		}
		d := strings.ToLower(r[strings.LastIndexByte(r, '@')+1:])
		if _, ok := byDomain[d]; !ok {
			domains = append(domains, d)
		}
		byDomain[d] = append(byDomain[d], i)
	}
	return domains, byDomain
}

// deliverDomain hands one domain's envelope to the transport, with the
// attempt event before and the trace after. A transport that returns the
// wrong number of results gets every recipient deferred: nothing is lost.
func (c *Client) deliverDomain(ctx context.Context, env *Envelope, o origin) []RecipientResult {
	c.emit(Event{Type: EventAttempt, Time: time.Now(), MessageID: o.recordID(), Domain: env.Domain, Metadata: o.meta, List: o.list, Campaign: o.campaign})
	out := c.transport().Deliver(c.withCaller(ctx), env)
	if len(out) != len(env.To) {
		err := fmt.Errorf("relay: transport %T returned %d results for %d recipients", c.transport(), len(out), len(env.To))
		out = make([]RecipientResult, len(env.To))
		for i, r := range env.To {
			out[i] = RecipientResult{Recipient: r}
			out[i].fail(Deferred, err)
		}
	}
	for _, r := range out {
		c.Trace.recipientDone(r)
	}
	c.Trace.attemptDone(env.Domain, out)
	return out
}

// attempt carries one domain's delivery state from host to host.
type attempt struct {
	t       *Direct
	trace   *Trace
	domain  string
	from    string
	rcpts   []string
	data    []byte
	utf8    bool   // the header has UTF-8 (RFC 6532): SMTPUTF8 needed
	envID   string // Envelope.EnvelopeID: ENVID and ORCPT where offered
	results []RecipientResult
	policy  tlsPolicy // from MTA-STS and RequireTLS; DANE is per host
	// plan, in a dry run (Direct.Plan), records the route instead of
	// connecting.
	plan *DomainPlan
	// mxSecure: the MX lookup (or the implicit MX's address lookup) was
	// DNSSEC-authenticated, so DANE may apply (RFC 7672 §2.2.1).
	mxSecure bool
	source   Source // where connections come from
	log      *slog.Logger

	lastErr   error // why the last host failed, for the deferral message
	forbidden int   // addresses refused by the destination policy
	tried     int   // addresses dialled or refused

	addrsLeft    int // of Direct.MaxMXAddresses
	sessionsLeft int // of Direct.MaxMXSessions

	bounceRules []string // the bounce rules reported as events in this attempt
}

// Deliver makes one attempt for the recipients of one domain: MX hosts in
// order of preference, each host's addresses, the TLS policy, then the
// transaction on the first session that reaches it.
func (t *Direct) Deliver(ctx context.Context, env *Envelope) []RecipientResult {
	a := &attempt{
		t: t, trace: traceOf(ctx), domain: env.Domain, from: env.From, rcpts: env.To, data: env.Data, utf8: env.SMTPUTF8,
		envID:   env.EnvelopeID,
		results: make([]RecipientResult, len(env.To)),
		source:  env.Source,
		log:     t.logger(ctx),

		addrsLeft:    capOr(t.MaxMXAddresses, DefaultMaxMXAddresses),
		sessionsLeft: capOr(t.MaxMXSessions, DefaultMaxMXSessions),
	}
	if !quiet(a.log) {
		a.log = a.log.With("domain", env.Domain)
	}
	for i, r := range env.To {
		a.results[i] = RecipientResult{Recipient: r, Status: Deferred}
	}
	a.run(ctx)
	for _, r := range a.results {
		if !a.log.Enabled(ctx, slog.LevelInfo) {
			break // the arguments would be made for nothing
		}
		a.log.Info("recipient", "rcpt", r.Recipient, "status", r.Status.String(),
			"code", r.Code, "enhanced", r.Enhanced, "mx", r.MX, "msg", r.Message)
	}
	return a.results
}

func (a *attempt) run(ctx context.Context) {
	r := a.t.resolver()
	hosts, secure, err := r.LookupMXSecure(ctx, a.domain)
	a.mxSecure = secure
	a.trace.mxResolved(a.domain, hosts, err)
	switch {
	case errors.Is(err, mx.ErrNullMX):
		a.finish(Bounced, &Error{Enhanced: "5.1.10", Message: "domain accepts no mail (null MX, RFC 7505)", Permanent: true, Err: err})
		return
	case errors.Is(err, mx.ErrNoDomain):
		a.finish(Bounced, &Error{Enhanced: "5.1.2", Message: "domain does not exist (NXDOMAIN)", Permanent: true, Err: err})
		return
	case errors.Is(err, mx.ErrInvalidName):
		a.finish(Bounced, &Error{Enhanced: "5.1.2", Message: "invalid domain: " + err.Error(), Permanent: true, Err: err})
		return
	case err != nil:
		a.finish(Deferred, &Error{Enhanced: "4.4.3", Message: "MX lookup failed: " + err.Error(), Err: err})
		return
	case len(hosts) == 0:
		a.finish(Deferred, &Error{Enhanced: "4.4.3", Message: "no usable MX host"})
		return
	}

	a.policy = a.t.basePolicy()
	if !a.t.DisableMTASTS {
		p, err := r.LookupSTS(ctx, a.domain)
		if err != nil {
			// RFC 8461 §5: without a (cached) policy, deliver as usual.
			a.log.Debug("MTA-STS lookup failed", "err", err)
		}
		if a.plan != nil {
			a.plan.MTASTS, a.plan.MTASTSErr = p, err
		}
		if p != nil && p.Mode == mx.STSEnforce {
			a.policy.sts = p
			var allowed []mx.MX
			for _, h := range hosts {
				if p.Match(h.Host) {
					allowed = append(allowed, h)
				} else {
					a.log.Info("MX host not allowed by MTA-STS policy", "mx", h.Host)
					a.planSkipped([]mx.MX{h}, "not allowed by the domain's MTA-STS policy")
				}
			}
			if len(allowed) == 0 {
				a.finish(Deferred, &Error{Enhanced: "4.7.5", Message: "no MX host matches the domain's MTA-STS policy", Err: ErrTLSRequired})
				return
			}
			hosts = allowed
		}
	}

	for i, h := range hosts {
		if err := ctx.Err(); err != nil {
			a.lastErr = err
			break
		}
		if a.addrsLeft <= 0 || a.sessionsLeft <= 0 {
			a.log.Info("MX address or session limit reached", "hosts", len(hosts))
			a.planSkipped(hosts[i:], "over MaxMXAddresses: left for the next attempt")
			break
		}
		if a.plan != nil {
			a.planHost(ctx, h)
			continue
		}
		if a.tryHost(ctx, h.Host) {
			return
		}
	}
	if a.plan != nil && a.plan.dialable() {
		return
	}
	switch {
	case a.tried > 0 && a.forbidden == a.tried:
		a.finish(Bounced, &Error{Host: hostOf(a.lastErr), Enhanced: "5.4.4", Permanent: true, Err: a.lastErr,
			Message: fmt.Sprintf("every MX address is loopback, private or reserved (%v)", a.lastErr)})
	case a.lastErr != nil:
		a.deferAll(a.lastErr)
	default:
		a.finish(Deferred, &Error{Enhanced: "4.4.1", Message: "no MX host could be reached"})
	}
}

// finish gives every recipient the same outcome.
func (a *attempt) finish(s Status, err error) {
	if a.plan != nil {
		a.plan.Outcome, a.plan.Err = s, err
	}
	for i := range a.results {
		a.results[i].fail(s, err)
	}
}

// deferAll defers every recipient with the reason err gives.
func (a *attempt) deferAll(err error) {
	if a.plan != nil {
		a.plan.Outcome, a.plan.Err = Deferred, err
	}
	for i := range a.results {
		r := &a.results[i]
		r.fail(Deferred, err)
		if r.Enhanced == "" {
			r.Enhanced = "4.4.1"
		}
		if r.Code >= 500 {
			// A 5xx greeting or EHLO from every host is still no reply
			// about the recipients: keep it temporary, as Postfix does.
			r.Code = 0
		}
	}
}

// headerIs8Bit reports whether the message header (up to the first empty
// line) has a byte over 127. Package mime writes raw UTF-8 there only for
// an address with a UTF-8 local part (RFC 6532), and SendRaw takes what it
// is given; either way such a message goes only with SMTPUTF8 (RFC 6531
// §3.2), to a server that offers it, and bounces with 5.6.7 elsewhere.
func headerIs8Bit(data []byte) bool {
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if lf := bytes.Index(data, []byte("\n\n")); lf >= 0 && (end < 0 || lf < end) {
		end = lf
	}
	if end < 0 {
		end = len(data)
	}
	for _, b := range data[:end] {
		if b >= 0x80 {
			return true
		}
	}
	return false
}

// hostOf is the MX host named by the first *Error in err's chain that
// names one, or "".
func hostOf(err error) string {
	for err != nil {
		if e, ok := err.(*Error); ok && e.Host != "" {
			return e.Host
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return ""
		}
		err = u.Unwrap()
	}
	return ""
}
