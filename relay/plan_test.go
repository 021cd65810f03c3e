package relay_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/queue"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// planOne plans m and returns its only domain's plan.
func planOne(t *testing.T, c *relay.Client, to ...string) *relay.DomainPlan {
	t.Helper()
	p, err := c.Plan(ctx(t), testMessage(to...))
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if len(p.Domains) != 1 {
		t.Fatalf("got %d domain plans, want 1: %+v", len(p.Domains), p)
	}
	return &p.Domains[0]
}

// The plan names the route a delivery then takes, and connects to nothing.
func TestPlanPredictsDelivery(t *testing.T) {
	s := newHarness(t)
	h := addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	addHost(t, s, "mx.other.example", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com", "mx.other.example")
	s.SetSTSPolicy("example.com", enforcePolicy)
	c := s.Client()
	c.Sources = []relay.Source{{Addr: netip.MustParseAddr("127.0.0.1"), Hostname: "out1.example.org"}}

	dp := planOne(t, c, "ann@example.com", "bob@example.com")
	if h.Connections() != 0 {
		t.Fatalf("Plan made %d connections", h.Connections())
	}
	if dp.Transport != "direct" || dp.Domain != "example.com" || len(dp.Recipients) != 2 {
		t.Errorf("plan header = %q %q %v", dp.Transport, dp.Domain, dp.Recipients)
	}
	if dp.Source.Addr.String() != "127.0.0.1" || dp.HelloName != "out1.example.org" {
		t.Errorf("source %v, EHLO %q", dp.Source, dp.HelloName)
	}
	if dp.Err != nil || dp.MTASTS == nil || dp.MTASTS.Mode != mx.STSEnforce {
		t.Fatalf("err %v, MTA-STS %+v", dp.Err, dp.MTASTS)
	}
	if len(dp.Hosts) != 2 {
		t.Fatalf("hosts = %+v", dp.Hosts)
	}
	first, second := dp.Hosts[0], dp.Hosts[1]
	if first.Host != "mx.example.com" || first.Preference != 10 || first.Skipped != "" {
		t.Errorf("first host = %+v", first)
	}
	if len(first.Addrs) != 1 || first.Addrs[0].Addr.String() != h.IP || first.Addrs[0].Refused != "" {
		t.Errorf("first host's addresses = %+v", first.Addrs)
	}
	if first.TLS.Policy != "mta-sts" || !first.TLS.Required || !strings.Contains(first.TLS.Source, "enforce") {
		t.Errorf("TLS plan = %+v", first.TLS)
	}
	if first.Limits.MaxConnections != relay.DefaultMaxConnections {
		t.Errorf("limits = %+v", first.Limits)
	}
	if second.Host != "mx.other.example" || !strings.Contains(second.Skipped, "MTA-STS") || len(second.Addrs) != 0 {
		t.Errorf("host outside the policy = %+v", second)
	}

	res, err := c.Send(ctx(t), testMessage("ann@example.com"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if r := res.Recipients[0]; r.MX != first.Host || r.TLS.Policy != first.TLS.Policy {
		t.Errorf("delivered via %s under %q, plan said %s under %q", r.MX, r.TLS.Policy, first.Host, first.TLS.Policy)
	}
}

func TestPlanTLSPolicy(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(c *relay.Client, s *relaytest.Server, h *relaytest.Host)
		policy string
		source string
	}{
		{"unsigned zone", nil, "opportunistic", "not DNSSEC-authenticated"},
		{"signed zone without TLSA", func(_ *relay.Client, s *relaytest.Server, h *relaytest.Host) { signChain(s, h) },
			"opportunistic", "no usable TLSA"},
		{"dane", func(_ *relay.Client, s *relaytest.Server, h *relaytest.Host) {
			publishTLSA(s, h, true, false)
			signChain(s, h)
		}, "dane", "DANE: 1 usable TLSA"},
		{"dane disabled", func(c *relay.Client, s *relaytest.Server, h *relaytest.Host) {
			publishTLSA(s, h, true, false)
			signChain(s, h)
			direct(c).DisableDANE = true
		}, "opportunistic", "Direct.DisableDANE"},
		{"required", func(c *relay.Client, _ *relaytest.Server, _ *relaytest.Host) { direct(c).RequireTLS = true },
			"required", "Direct.RequireTLS"},
		{"mta-sts testing", func(_ *relay.Client, s *relaytest.Server, _ *relaytest.Host) {
			s.SetSTSPolicy("example.com", "version: STSv1\nmode: testing\nmx: *.example.com\nmax_age: 86400\n")
		}, "opportunistic", "testing mode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newHarness(t)
			h := addHost(t, s, "mx.example.com", relaytest.HostConfig{TLS: relaytest.TLSSelfSigned})
			s.AddDomain("example.com", "mx.example.com")
			c := s.Client()
			if tc.setup != nil {
				tc.setup(c, s, h)
			}
			dp := planOne(t, c, "ann@example.com")
			if len(dp.Hosts) != 1 {
				t.Fatalf("hosts = %+v", dp.Hosts)
			}
			got := dp.Hosts[0].TLS
			if got.Policy != tc.policy || !strings.Contains(got.Source, tc.source) || got.Required != (tc.policy != "opportunistic") {
				t.Errorf("TLS plan = %+v, want policy %q from %q", got, tc.policy, tc.source)
			}
			// The delivery is held to the policy the plan named.
			res, _ := c.Send(ctx(t), testMessage("ann@example.com"))
			if r := res.Recipients[0]; r.Status == relay.Delivered && r.TLS.Policy != tc.policy {
				t.Errorf("delivered under %q, plan said %q", r.TLS.Policy, tc.policy)
			}
		})
	}
}

// Refused addresses are listed with the reason, and a domain whose every
// address is refused is planned to bounce, as the delivery would.
func TestPlanDestinationPolicy(t *testing.T) {
	dns := mxtest.NewServer(mxtest.Zone{
		"example.com":    {MX: []mx.MX{{Host: "mx.example.com", Pref: 10}}},
		"mx.example.com": {A: []string{"10.1.2.3", "127.0.0.1"}, AAAA: []string{"fd00::1"}},
	})
	defer dns.Close()
	c := &relay.Client{Hostname: "client.example.org", Resolver: dns.Resolver(), Port: 1}
	dp := planOne(t, c, "ann@example.com")
	if len(dp.Hosts) != 1 || len(dp.Hosts[0].Addrs) != 3 {
		t.Fatalf("hosts = %+v", dp.Hosts)
	}
	for _, a := range dp.Hosts[0].Addrs {
		if a.Refused == "" {
			t.Errorf("%s would be dialled", a.Addr)
		}
	}
	if dp.Hosts[0].Skipped == "" {
		t.Errorf("host not marked skipped: %+v", dp.Hosts[0])
	}
	if dp.Outcome != relay.Bounced || !errors.Is(dp.Err, relay.ErrForbiddenAddress) {
		t.Errorf("outcome %v, err %v; want bounced with ErrForbiddenAddress", dp.Outcome, dp.Err)
	}
	res, _ := c.Send(ctx(t), testMessage("ann@example.com"))
	if res.Recipients[0].Status != relay.Bounced {
		t.Errorf("Send gave %v, plan said bounced", res.Recipients[0].Status)
	}
}

// The plan shows where MaxMXAddresses stops an attempt.
func TestPlanAddressCap(t *testing.T) {
	zone := mxtest.Zone{"example.com": {}}
	var mxs []mx.MX
	for i, h := range []string{"a", "b", "c", "d"} {
		name := "mx-" + h + ".example.com"
		mxs = append(mxs, mx.MX{Host: name, Pref: uint16(10 * (i + 1))})
		zone[name] = mxtest.Domain{A: []string{"127.0.0." + string(rune('1'+2*i)), "127.0.0." + string(rune('2'+2*i))}}
	}
	zone["example.com"] = mxtest.Domain{MX: mxs}
	dns := mxtest.NewServer(zone)
	defer dns.Close()
	c := &relay.Client{Hostname: "client.example.org", Resolver: dns.Resolver(), Port: 1, AllowPrivateAddrs: true}
	dp := planOne(t, c, "ann@example.com")
	if dp.Err != nil || len(dp.Hosts) != 4 {
		t.Fatalf("err %v, hosts %+v", dp.Err, dp.Hosts)
	}
	dialled := 0
	for _, h := range dp.Hosts[:3] {
		for _, a := range h.Addrs {
			if a.Refused == "" {
				dialled++
			} else if !strings.Contains(a.Refused, "MaxMXAddresses") {
				t.Errorf("%s refused for %q", a.Addr, a.Refused)
			}
		}
	}
	if dialled != relay.DefaultMaxMXAddresses {
		t.Errorf("%d addresses would be dialled, want %d", dialled, relay.DefaultMaxMXAddresses)
	}
	if last := dp.Hosts[3]; !strings.Contains(last.Skipped, "MaxMXAddresses") || len(last.Addrs) != 0 {
		t.Errorf("fourth host = %+v", last)
	}
}

// What would end an attempt before any connection is the plan's outcome,
// and recipients SMTP cannot carry are listed apart.
func TestPlanOutcomes(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	s.DNS.Set("null.example", mxtest.Domain{MX: []mx.MX{{Host: ".", Pref: 0}}})
	long := longAddress(s)
	c := s.Client()
	p, err := c.Plan(ctx(t), testMessage("ann@null.example", long, "bob@example.com", "cy@nxdomain.example"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rejected) != 1 || p.Rejected[0].Recipient != long || p.Rejected[0].Enhanced != "5.1.3" {
		t.Errorf("rejected = %+v", p.Rejected)
	}
	if p.From != "sender@example.org" || p.Size == 0 || p.Signed || p.SMTPUTF8 {
		t.Errorf("plan header = %q %d %v %v", p.From, p.Size, p.Signed, p.SMTPUTF8)
	}
	want := map[string]struct {
		outcome relay.Status
		err     error
	}{
		"null.example":     {relay.Bounced, mx.ErrNullMX},
		"nxdomain.example": {relay.Bounced, mx.ErrNoDomain},
		"example.com":      {relay.Deferred, nil},
	}
	if len(p.Domains) != len(want) {
		t.Fatalf("domains = %+v", p.Domains)
	}
	for _, dp := range p.Domains {
		w := want[dp.Domain]
		if w.err == nil {
			if dp.Err != nil || len(dp.Hosts) != 1 {
				t.Errorf("%s: err %v, hosts %+v", dp.Domain, dp.Err, dp.Hosts)
			}
			continue
		}
		if dp.Outcome != w.outcome || !errors.Is(dp.Err, w.err) {
			t.Errorf("%s: outcome %v err %v, want %v %v", dp.Domain, dp.Outcome, dp.Err, w.outcome, w.err)
		}
	}

	if _, err := c.Plan(ctx(t), nil); !errors.Is(err, relay.ErrInvalidMessage) {
		t.Errorf("Plan(nil) = %v", err)
	}
}

// recordingTransport is a Transport that is not a Planner.
type recordingTransport struct{ calls int }

func (r *recordingTransport) Deliver(_ context.Context, env *relay.Envelope) []relay.RecipientResult {
	r.calls++
	return make([]relay.RecipientResult, len(env.To))
}

func TestPlanOtherTransports(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")

	other := &recordingTransport{}
	c := &relay.Client{Transport: other}
	dp := planOne(t, c, "ann@example.com")
	if other.calls != 0 || !strings.Contains(dp.Transport, "recordingTransport") || len(dp.Hosts) != 0 {
		t.Errorf("plan through a non-Planner: %+v (%d deliveries)", dp, other.calls)
	}

	c = &relay.Client{Transport: &relay.Fallback{Primary: s.Direct(), Secondary: other, After: 2}}
	dp = planOne(t, c, "ann@example.com")
	if !strings.HasPrefix(dp.Transport, "fallback, primary") || !strings.HasSuffix(dp.Transport, ": direct") || len(dp.Hosts) != 1 {
		t.Errorf("fallback plan: %q %+v", dp.Transport, dp.Hosts)
	}
	env := &relay.Envelope{Domain: "example.com", To: []string{"ann@example.com"}, Attempts: 2}
	dp = c.Transport.(relay.Planner).Plan(ctx(t), env)
	if !strings.HasPrefix(dp.Transport, "fallback, secondary") || other.calls != 0 {
		t.Errorf("fallback plan after 2 attempts: %q", dp.Transport)
	}
}

// heldJob enqueues m held (so that nothing sends it) and returns the
// stored job.
func heldJob(t *testing.T, c *relay.Client, m *mime.Message, opts relay.EnqueueOptions) *queue.Job {
	t.Helper()
	opts.Hold = true
	id, err := c.EnqueueWith(ctx(t), m, &opts)
	if err != nil {
		t.Fatal(err)
	}
	job, err := c.Queue().Get(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// PlanJob plans a queued message's remaining recipients.
func TestPlanJob(t *testing.T) {
	s := newHarness(t)
	h := addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	hn := addHost(t, s, "mx.example.net", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	s.AddDomain("example.net", "mx.example.net")
	c := s.Client()
	c.Store = &queue.MemoryStore{}
	job := heldJob(t, c, testMessage("ann@example.com", "bob@example.com", "cy@example.net", "dee@example.net"), relay.EnqueueOptions{})
	// bob was delivered and dee bounced at an earlier attempt.
	for i := range job.Recipients {
		switch job.Recipients[i].Addr {
		case "bob@example.com":
			job.Recipients[i].State = queue.Delivered
		case "dee@example.net":
			job.Recipients[i].State = queue.Bounced
		case "cy@example.net":
			job.Recipients[i].State = queue.Deferred
		}
	}
	p, err := c.PlanJob(ctx(t), job)
	if err != nil {
		t.Fatal(err)
	}
	if h.Connections() != 0 || hn.Connections() != 0 {
		t.Fatalf("PlanJob made %d+%d connections", h.Connections(), hn.Connections())
	}
	if p.From != job.From || p.From != "sender@example.org" || p.Size != len(job.Message) || p.Signed || len(p.Rejected) != 0 {
		t.Errorf("plan header = %q %d (stored %d) %v %+v", p.From, p.Size, len(job.Message), p.Signed, p.Rejected)
	}
	want := map[string]struct{ rcpt, host string }{
		"example.com": {"ann@example.com", "mx.example.com"},
		"example.net": {"cy@example.net", "mx.example.net"},
	}
	if len(p.Domains) != len(want) {
		t.Fatalf("domains = %+v", p.Domains)
	}
	for _, dp := range p.Domains {
		w, ok := want[dp.Domain]
		if !ok || len(dp.Recipients) != 1 || dp.Recipients[0] != w.rcpt || dp.Transport != "direct" || dp.Err != nil {
			t.Errorf("%s: recipients %v, transport %q, err %v", dp.Domain, dp.Recipients, dp.Transport, dp.Err)
			continue
		}
		if len(dp.Hosts) != 1 || dp.Hosts[0].Host != w.host || len(dp.Hosts[0].Addrs) == 0 || dp.Hosts[0].Skipped != "" {
			t.Errorf("%s: hosts %+v", dp.Domain, dp.Hosts)
		}
	}
	if p.Domains[0].Domain != "example.com" {
		t.Errorf("domains out of order: %s first", p.Domains[0].Domain)
	}

	// Nothing left to deliver, or no job at all.
	for i := range job.Recipients {
		job.Recipients[i].State = queue.Delivered
	}
	job.Recipients[0].State = queue.Bounced
	if _, err := c.PlanJob(ctx(t), job); !errors.Is(err, relay.ErrInvalidMessage) {
		t.Errorf("PlanJob of a finished job: %v", err)
	}
	if _, err := c.PlanJob(ctx(t), nil); !errors.Is(err, relay.ErrInvalidMessage) {
		t.Errorf("PlanJob(nil): %v", err)
	}
}

// A job bound to a source is planned from it; one whose source is gone
// is an error, as its delivery would be deferred.
func TestPlanJobSource(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	c := s.Client()
	c.Store = &queue.MemoryStore{}
	bound := netip.MustParseAddr("127.0.0.1")
	c.Sources = []relay.Source{
		{Addr: bound, Hostname: "out1.example.org", Weight: 1},
		{Addr: netip.MustParseAddr("::1"), Hostname: "out2.example.org", Weight: 100000},
	}
	job := heldJob(t, c, testMessage("ann@example.com"), relay.EnqueueOptions{Source: bound})
	for range 3 {
		p, err := c.PlanJob(ctx(t), job)
		if err != nil {
			t.Fatal(err)
		}
		if dp := p.Domains[0]; dp.Source.Addr != bound || dp.HelloName != "out1.example.org" {
			t.Fatalf("planned from %v as %q, want the bound source", dp.Source.Addr, dp.HelloName)
		}
	}
	c.Sources = c.Sources[1:]
	if _, err := c.PlanJob(ctx(t), job); !errors.Is(err, relay.ErrUnknownSource) {
		t.Errorf("PlanJob from a source no longer configured: %v", err)
	}
}

// A list job, stored unsigned, is planned as signed and larger; a plain
// one was signed when enqueued and is planned as stored.
func TestPlanJobSigned(t *testing.T) {
	_, c, _, store, _ := listHarness(t)
	c.Store = store
	list := heldJob(t, c, testMessage("ann@example.com"), relay.EnqueueOptions{List: "news"})
	if bytes.Contains(list.Message, []byte("DKIM-Signature")) {
		t.Fatal("the list job is stored signed")
	}
	p, err := c.PlanJob(ctx(t), list)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Signed || p.Size <= len(list.Message) {
		t.Errorf("list job: signed %v, size %d (stored %d)", p.Signed, p.Size, len(list.Message))
	}
	if len(p.Domains) != 1 || len(p.Domains[0].Recipients) != 1 || len(p.Domains[0].Hosts) != 1 || p.Domains[0].Hosts[0].Host != "mx.example.com" {
		t.Errorf("list job's route: %+v", p.Domains)
	}

	plain := heldJob(t, c, testMessage("ann@example.com"), relay.EnqueueOptions{})
	if !bytes.Contains(plain.Message, []byte("DKIM-Signature")) {
		t.Fatal("the plain job is stored unsigned")
	}
	p, err = c.PlanJob(ctx(t), plain)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Signed || p.Size != len(plain.Message) {
		t.Errorf("plain job: signed %v, size %d (stored %d)", p.Signed, p.Size, len(plain.Message))
	}

	// Without a Signer, the list job is planned unsigned.
	c.Signer = nil
	if p, err = c.PlanJob(ctx(t), list); err != nil || p.Signed || p.Size != len(list.Message) {
		t.Errorf("list job without a Signer: %v, signed %v, size %d (stored %d)", err, p.Signed, p.Size, len(list.Message))
	}
}

// A list job's plan rejects the recipients who left that list, as its
// delivery suppresses them; a plain message's plan does not.
func TestPlanJobListSuppressions(t *testing.T) {
	_, c, _, store, _ := listHarness(t)
	c.Store = store
	if err := c.Suppress(ctx(t), "gone@example.com", "news", queue.Unsubscribed, ""); err != nil {
		t.Fatal(err)
	}
	job := heldJob(t, c, testMessage("ann@example.com", "gone@example.com"), relay.EnqueueOptions{List: "news"})
	p, err := c.PlanJob(ctx(t), job)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rejected) != 1 || p.Rejected[0].Recipient != "gone@example.com" || p.Rejected[0].Status != relay.Suppressed {
		t.Errorf("rejected = %+v", p.Rejected)
	}
	if len(p.Domains) != 1 || len(p.Domains[0].Recipients) != 1 || p.Domains[0].Recipients[0] != "ann@example.com" {
		t.Errorf("domains = %+v", p.Domains)
	}
	// The list-scoped opt-out does not stop other mail.
	other := heldJob(t, c, testMessage("gone@example.com"), relay.EnqueueOptions{})
	if p, err := c.PlanJob(ctx(t), other); err != nil || len(p.Rejected) != 0 || len(p.Domains) != 1 {
		t.Errorf("plain job to gone@: %v %+v", err, p)
	}
}

// Through a Fallback, a job's plan names the transport its next attempt
// goes to, after the attempts it has had.
func TestPlanJobFallback(t *testing.T) {
	s := newHarness(t)
	addHost(t, s, "mx.example.com", relaytest.HostConfig{})
	s.AddDomain("example.com", "mx.example.com")
	other := &recordingTransport{}
	c := &relay.Client{Transport: &relay.Fallback{Primary: s.Direct(), Secondary: other, After: 2}, Store: &queue.MemoryStore{}}
	job := heldJob(t, c, testMessage("ann@example.com"), relay.EnqueueOptions{})
	p, err := c.PlanJob(ctx(t), job)
	if err != nil {
		t.Fatal(err)
	}
	if tr := p.Domains[0].Transport; !strings.HasPrefix(tr, "fallback, primary for attempt 1") {
		t.Errorf("new job's plan: %q", tr)
	}
	job.Attempts = 2
	if p, err = c.PlanJob(ctx(t), job); err != nil {
		t.Fatal(err)
	}
	if tr := p.Domains[0].Transport; !strings.HasPrefix(tr, "fallback, secondary for attempt 3") || other.calls != 0 {
		t.Errorf("plan after 2 attempts: %q", tr)
	}
}
