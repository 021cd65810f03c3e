package smtpclient

import (
	"context"
	"fmt"
	"net"
	"time"
)

// Dial connects to addr ("host:port") and reads the greeting, as NewClient.
// opts.LocalAddr and opts.DialTimeout shape the connect; ctx bounds it too.
func Dial(ctx context.Context, network, addr string, opts *Options) (*Client, error) {
	var d net.Dialer
	if opts != nil {
		d.LocalAddr = opts.LocalAddr
		d.Timeout = opts.DialTimeout
	}
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("smtpclient: dial %s: %w", addr, err)
	}
	return NewClient(ctx, conn, opts)
}

// ConnectBudget is the connect timeout for the next of left addresses
// still to try (a host's A and AAAA records, several MX hosts): the time
// until ctx's deadline shared equally among them, so one black-holed
// address cannot eat the whole budget. It is capped at max (0 → no cap),
// and is max when ctx has no deadline. Use it as Options.DialTimeout.
func ConnectBudget(ctx context.Context, left int, max time.Duration) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return max
	}
	d := time.Until(dl)
	if left > 1 {
		d /= time.Duration(left)
	}
	if d <= 0 {
		d = time.Nanosecond // already late: fail at once, not "no timeout"
	}
	if max > 0 && d > max {
		d = max
	}
	return d
}
