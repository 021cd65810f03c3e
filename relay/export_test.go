package relay

import "time"

// SetClock sets the clock the Client's suppression records go by, for
// tests of what happens over days.
func SetClock(c *Client, now func() time.Time) { c.now = now }
