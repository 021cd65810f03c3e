package webhook

import (
	"context"
	"sync/atomic"

	"github.com/mxrelay/mxrelay/queue"
)

// countingStore is a MemoryStore that counts claims.
type countingStore struct {
	*queue.MemoryStore
	claims atomic.Int64
}

func (s *countingStore) ClaimOutbox(ctx context.Context, r queue.OutboxClaim) (*queue.OutboxBatch, error) {
	s.claims.Add(1)
	return s.MemoryStore.ClaimOutbox(ctx, r)
}
