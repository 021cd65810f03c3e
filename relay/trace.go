package relay

import (
	"net/netip"

	"github.com/mxrelay/mxrelay/mx"
)

// Trace holds optional hooks called at each step of a delivery, for
// metrics and tests (in the manner of net/http/httptrace). Any field may be
// nil. Hooks are called from the delivering goroutines, concurrently when
// domains are delivered in parallel, and must not block.
type Trace struct {
	// MXResolved is called after the MX lookup for a recipient domain.
	MXResolved func(domain string, hosts []mx.MX, err error)
	// Connected is called after each connection attempt to an MX address
	// (err nil: the server greeted with 220).
	Connected func(host string, addr netip.Addr, err error)
	// TLSDone is called after a STARTTLS handshake, or when TLS was not
	// used (info.Version empty).
	TLSDone func(host string, info TLSInfo, err error)
	// RecipientDone is called once for every recipient with its result.
	RecipientDone func(r RecipientResult)
	// AttemptDone is called when the attempt for one domain is over.
	AttemptDone func(domain string, results []RecipientResult)
}

func (t *Trace) mxResolved(domain string, hosts []mx.MX, err error) {
	if t != nil && t.MXResolved != nil {
		t.MXResolved(domain, hosts, err)
	}
}

func (t *Trace) connected(host string, addr netip.Addr, err error) {
	if t != nil && t.Connected != nil {
		t.Connected(host, addr, err)
	}
}

func (t *Trace) tlsDone(host string, info TLSInfo, err error) {
	if t != nil && t.TLSDone != nil {
		t.TLSDone(host, info, err)
	}
}

func (t *Trace) recipientDone(r RecipientResult) {
	if t != nil && t.RecipientDone != nil {
		t.RecipientDone(r)
	}
}

func (t *Trace) attemptDone(domain string, rs []RecipientResult) {
	if t != nil && t.AttemptDone != nil {
		t.AttemptDone(domain, rs)
	}
}
