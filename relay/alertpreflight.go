package relay

import (
	"context"
	"time"
)

// preflightFindings: placeholder until the preflight package lands.
func (c *Client) preflightFindings(ctx context.Context, w *alertWatch, now time.Time) ([]finding, bool) {
	return nil, false
}
