package relay_test

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/mxrelay/mxrelay/mx"
	"github.com/mxrelay/mxrelay/mx/mxtest"
	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/relaytest"
)

// dialCounter counts the connection attempts a Client makes.
type dialCounter struct {
	mu    sync.Mutex
	dials int
	hosts map[string]bool
}

func (d *dialCounter) trace() *relay.Trace {
	return &relay.Trace{Connected: func(host string, _ netip.Addr, _ error) {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.dials++
		if d.hosts == nil {
			d.hosts = make(map[string]bool)
		}
		d.hosts[host] = true
	}}
}

func (d *dialCounter) count() (dials, hosts int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials, len(d.hosts)
}

// addWideDomain publishes a domain with nHosts MX hosts of nAddrs loopback
// addresses each, on which nothing listens: every dial is refused at once.
func addWideDomain(s *relaytest.Server, domain string, nHosts, nAddrs int) {
	var mxs []mx.MX
	for h := range nHosts {
		name := fmt.Sprintf("mx%d.%s", h, domain)
		mxs = append(mxs, mx.MX{Host: name, Pref: uint16(h)})
		var a []string
		for i := range nAddrs {
			a = append(a, fmt.Sprintf("127.201.%d.%d", h%250, 1+i%250))
		}
		s.DNS.Set(name, mxtest.Domain{A: a})
	}
	s.DNS.Set(domain, mxtest.Domain{MX: mxs})
}

// A domain with 300 MX hosts of 50 addresses each costs one attempt at
// most MaxMXAddresses dials and address lookups (Postfix's
// smtp_mx_address_limit), not 15,000.
func TestMXAddressLimit(t *testing.T) {
	s := newHarness(t)
	addWideDomain(s, "wide.example", 300, 50)
	var dc dialCounter
	c := s.Client()
	c.Trace = dc.trace()
	res, _ := c.Send(ctx(t), testMessage("victim@wide.example"))
	if got := res.Recipients[0].Status; got != relay.Deferred {
		t.Errorf("status %v, want Deferred: %+v", got, res.Recipients[0])
	}
	dials, hosts := dc.count()
	if dials != relay.DefaultMaxMXAddresses || hosts != 1 {
		t.Errorf("%d dials to %d hosts, want %d dials to the first host", dials, hosts, relay.DefaultMaxMXAddresses)
	}
	var lookups int
	for h := range 300 {
		lookups += s.DNS.Count(fmt.Sprintf("mx%d.wide.example", h), "A")
	}
	if lookups > relay.DefaultMaxMXAddresses {
		t.Errorf("%d address lookups for one recipient, want at most %d", lookups, relay.DefaultMaxMXAddresses)
	}
}

// The cap spans hosts, can be tuned, and can be lifted.
func TestMXAddressLimitTuned(t *testing.T) {
	for _, tt := range []struct {
		limit, dials, hosts int
	}{
		{limit: 0, dials: 5, hosts: 2},
		{limit: 4, dials: 4, hosts: 2},
		{limit: 1, dials: 1, hosts: 1},
		{limit: -1, dials: 12, hosts: 4},
	} {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			s := newHarness(t)
			addWideDomain(s, "four.example", 4, 3)
			var dc dialCounter
			c := s.Client()
			c.Trace = dc.trace()
			direct(c).MaxMXAddresses = tt.limit
			c.Send(ctx(t), testMessage("a@four.example"))
			if dials, hosts := dc.count(); dials != tt.dials || hosts != tt.hosts {
				t.Errorf("MaxMXAddresses %d: %d dials to %d hosts, want %d to %d", tt.limit, dials, hosts, tt.dials, tt.hosts)
			}
		})
	}
}

// Hosts that accept connections and never greet hold one attempt for at
// most MaxMXAddresses connect budgets.
func TestSilentHostsBounded(t *testing.T) {
	s := newHarness(t)
	var names []string
	var hosts []*relaytest.Host
	for i := range 12 {
		name := fmt.Sprintf("mx%d.silent.example", i)
		hosts = append(hosts, addHost(t, s, name, relaytest.HostConfig{NoGreeting: true}))
		names = append(names, name)
	}
	s.AddDomain("silent.example", names...)
	c := s.Client()
	direct(c).ConnectTimeout = 100 * time.Millisecond
	res, _ := c.Send(ctx(t), testMessage("a@silent.example"))
	if res.Recipients[0].Status != relay.Deferred {
		t.Errorf("%+v", res.Recipients[0])
	}
	contacted := 0
	for _, h := range hosts {
		if h.Connections() > 0 {
			contacted++
		}
	}
	if contacted != relay.DefaultMaxMXAddresses {
		t.Errorf("%d silent hosts contacted, want %d", contacted, relay.DefaultMaxMXAddresses)
	}
}

// Sessions the server greets count against MaxMXSessions, whatever fails
// after: with TLS required, hosts without STARTTLS are tried two at a time.
func TestMXSessionLimit(t *testing.T) {
	s := newHarness(t)
	var names []string
	var hosts []*relaytest.Host
	for i := range 4 {
		name := fmt.Sprintf("mx%d.plain.example", i)
		hosts = append(hosts, addHost(t, s, name, relaytest.HostConfig{TLS: relaytest.TLSNone}))
		names = append(names, name)
	}
	s.AddDomain("plain.example", names...)
	c := s.Client()
	direct(c).RequireTLS = true
	res, _ := c.Send(ctx(t), testMessage("a@plain.example"))
	if res.Recipients[0].Status != relay.Deferred {
		t.Errorf("%+v", res.Recipients[0])
	}
	contacted := 0
	for _, h := range hosts {
		contacted += h.Connections()
	}
	if contacted != relay.DefaultMaxMXSessions {
		t.Errorf("%d sessions, want %d", contacted, relay.DefaultMaxMXSessions)
	}
}
