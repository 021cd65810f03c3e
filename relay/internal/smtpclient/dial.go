package smtpclient

import (
	"context"
	"fmt"
	"net"
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
