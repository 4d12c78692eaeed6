package blob

import (
	"context"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

var _ casebook.BlobSweeper = (*Store)(nil)

// Walk calls fn for every blob in the store, in no particular order.
func (s *Store) Walk(ctx context.Context, fn func(casebook.BlobInfo) error) error {
	return s.b.Walk(ctx, fn)
}

// RemoveUnused removes the blob named key if it was last stored before cutoff (see
// the backend's RemoveUnused for how a concurrent Put is kept safe).
func (s *Store) RemoveUnused(ctx context.Context, key string, cutoff time.Time) (bool, error) {
	return s.b.RemoveUnused(ctx, key, cutoff)
}

// Recover settles removals a crash interrupted.
func (s *Store) Recover(ctx context.Context, cutoff time.Time) error {
	return s.b.Recover(ctx, cutoff)
}
