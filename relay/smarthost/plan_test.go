package smarthost_test

import (
	"strings"
	"testing"

	"github.com/mxrelay/mxrelay/relay"
	"github.com/mxrelay/mxrelay/relay/smarthost"
)

// A plan names the relay host and its TLS, and connects to nothing.
func TestPlan(t *testing.T) {
	srv := newSubmission(t, true, true, "PLAIN")
	for _, tc := range []struct {
		name     string
		implicit bool
		source   string
	}{
		{"implicit", true, "implicit TLS; AUTH as " + user},
		{"starttls", false, "STARTTLS required before AUTH; AUTH as " + user},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &smarthost.Transport{Addr: srv.addr, ImplicitTLS: tc.implicit, Username: user, Password: pass, Hostname: "app.example.org"}
			c := &relay.Client{Transport: tr}
			p, err := c.Plan(ctx(t), message("ann@example.com", "bob@example.net"))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Domains) != 2 {
				t.Fatalf("domains = %+v", p.Domains)
			}
			for _, dp := range p.Domains {
				if dp.Transport != "smarthost "+srv.addr || dp.HelloName != "app.example.org" || dp.Err != nil || len(dp.Hosts) != 1 {
					t.Fatalf("%s: %+v", dp.Domain, dp)
				}
				h := dp.Hosts[0]
				if h.Host != "127.0.0.1" || len(h.Addrs) != 1 || h.Addrs[0].Addr.String() != "127.0.0.1" || h.Addrs[0].Refused != "" {
					t.Errorf("host = %+v", h)
				}
				if h.TLS.Policy != "required" || !h.TLS.Required || !strings.HasSuffix(h.TLS.Source, tc.source) {
					t.Errorf("TLS = %+v, want source %q", h.TLS, tc.source)
				}
				if h.Limits.MaxConnections != smarthost.DefaultMaxConnections {
					t.Errorf("limits = %+v", h.Limits)
				}
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.used) != 0 || len(srv.messages) != 0 {
				t.Errorf("the plan authenticated %v and sent %d messages", srv.used, len(srv.messages))
			}
		})
	}

	// A setting that cannot work is the plan's error, as Deliver would
	// defer on it.
	tr := &smarthost.Transport{Addr: "no-port"}
	dp := tr.Plan(ctx(t), &relay.Envelope{Domain: "example.com", To: []string{"ann@example.com"}})
	if dp.Outcome != relay.Deferred || dp.Err == nil {
		t.Errorf("plan with a bad Addr: %+v", dp)
	}
}
