package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mxrelay/mxrelay/mime"
	"github.com/mxrelay/mxrelay/queue"
)

// AddressData is everything a Client stores about one address: what
// Export returns and, but for the suppression entries, what Forget
// erases.
type AddressData struct {
	Address string `json:"address"`
	// Records are the history's records of messages to the address,
	// each holding only its entry (outcome, later events, opens, clicks).
	Records []queue.Record `json:"records"`
	// Suppressions are its entries on the suppression list, in any
	// scope. Forget keeps them: an opt-out must outlive an erasure
	// (keyed hashes, with SuppressionOptions.HashKey, keep them without
	// the address).
	Suppressions []queue.Suppression `json:"suppressions"`
	// Jobs are the queued and held messages with the address among
	// their recipients, without their content.
	Jobs []JobData `json:"jobs"`
	// Unmatched are the messages kept by Unmatched that came from the
	// address.
	Unmatched []KeptMessage `json:"unmatched"`
}

// JobData is a queued message, as Export shows it.
type JobData struct {
	ID       string            `json:"id"`
	State    string            `json:"state"` // queued, active, held
	Created  time.Time         `json:"created"`
	Status   string            `json:"status"` // the address's state in the job: pending, deferred, ...
	Reply    string            `json:"reply,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Export returns, as JSON (an AddressData), everything the Client's
// stores hold about addr: history records, suppression entries, queued
// and held messages, kept inbound mail. It is what a data subject asks
// for under the GDPR's right of access.
func (c *Client) Export(ctx context.Context, addr string) ([]byte, error) {
	d, err := c.addressData(ctx, addr)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(d, "", "  ")
}

// addressData gathers what Export returns.
func (c *Client) addressData(ctx context.Context, addr string) (*AddressData, error) {
	n, err := mime.NormalizeAddress(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrInvalidEnvelope, addr, err)
	}
	d := &AddressData{Address: n, Records: []queue.Record{}, Suppressions: []queue.Suppression{}, Jobs: []JobData{}, Unmatched: []KeptMessage{}}
	if c.History != nil {
		f := queue.RecordFilter{Recipient: n, Limit: 1000}
		for range 1000 { // at most a million records
			recs, next, err := c.History.Records(ctx, f)
			if err != nil {
				return nil, fmt.Errorf("relay: reading the history: %w", err)
			}
			d.Records = append(d.Records, recs...)
			if next == "" {
				break
			}
			f.Before = next
		}
	}
	if c.Suppressions != nil {
		key, err := c.suppressionKey(n)
		if err != nil {
			return nil, err
		}
		entries, err := c.Suppressions.Suppressions(ctx, queue.SuppressionFilter{Address: key, Limit: 1000})
		if err != nil {
			return nil, fmt.Errorf("relay: reading the suppression list: %w", err)
		}
		d.Suppressions = append(d.Suppressions, entries...)
	}
	if err := c.eachJob(ctx, n, func(j *queue.Job, i int) error {
		d.Jobs = append(d.Jobs, JobData{ID: j.ID, State: queue.StateOf(j).String(), Created: j.Created,
			Status: j.Recipients[i].State.String(), Reply: j.Recipients[i].Reply, Metadata: j.Metadata})
		return nil
	}); err != nil {
		return nil, err
	}
	for _, m := range c.Unmatched() {
		if rcptTagKey(m.From) == rcptTagKey(n) {
			d.Unmatched = append(d.Unmatched, m)
		}
	}
	return d, nil
}

// eachJob calls fn for every queued or held job with addr among its
// recipients, with the recipient's index.
func (c *Client) eachJob(ctx context.Context, addr string, fn func(*queue.Job, int) error) error {
	q := c.Queue()
	if q == nil {
		return nil
	}
	var after string
	for range 100000 { // at most ten million jobs
		jobs, next, err := q.List(ctx, queue.ListRequest{After: after, Limit: 1000})
		if err != nil {
			return fmt.Errorf("relay: listing the queue: %w", err)
		}
		for _, j := range jobs {
			for i, r := range j.Recipients {
				if rcptTagKey(r.Addr) == rcptTagKey(addr) {
					if err := fn(j, i); err != nil {
						return err
					}
					break
				}
			}
		}
		if next == "" {
			return nil
		}
		after = next
	}
	return nil
}

// Forget erases addr from what the Client keeps (the GDPR's right to
// erasure): its entries in the history (with its opens and clicks), the
// held messages to it, and the inbound mail kept from it. A held message
// with other recipients is held again without addr, under a new id. The
// suppression list is kept: an opt-out must outlive an erasure (with
// SuppressionOptions.HashKey its entries hold only a keyed hash). It
// returns what it erased, as Export shows it, and the suppression entries
// it kept. Queued messages that are not held are being delivered and are
// left alone; they are in Jobs, with their state.
func (c *Client) Forget(ctx context.Context, addr string) (*AddressData, error) {
	d, err := c.addressData(ctx, addr)
	if err != nil {
		return nil, err
	}
	if c.History != nil {
		recs, err := c.History.Forget(ctx, d.Address)
		if err != nil {
			return d, fmt.Errorf("relay: erasing the history: %w", err)
		}
		d.Records = recs
	}
	q := c.Queue()
	for _, jd := range d.Jobs {
		if jd.State != queue.StateHeld.String() {
			continue
		}
		j, err := q.Get(ctx, jd.ID)
		if errors.Is(err, queue.ErrNotFound) {
			continue
		}
		if err != nil {
			return d, fmt.Errorf("relay: reading held message %s: %w", jd.ID, err)
		}
		rest := slices.DeleteFunc(slices.Clone(j.Recipients), func(r queue.Recipient) bool { return rcptTagKey(r.Addr) == rcptTagKey(d.Address) })
		if len(rest) > 0 {
			nj := *j
			nj.ID, nj.Recipients, nj.Lease = "", rest, queue.Lease{}
			nj.Held = true
			if _, err := q.Enqueue(ctx, &nj); err != nil {
				return d, fmt.Errorf("relay: holding message %s again without the address: %w", jd.ID, err)
			}
		}
		if err := q.Cancel(ctx, jd.ID); err != nil && !errors.Is(err, queue.ErrNotFound) {
			return d, fmt.Errorf("relay: removing held message %s: %w", jd.ID, err)
		}
	}
	c.kept.mu.Lock()
	c.kept.msgs = slices.DeleteFunc(c.kept.msgs, func(m KeptMessage) bool { return rcptTagKey(m.From) == rcptTagKey(d.Address) })
	c.kept.mu.Unlock()
	return d, nil
}
