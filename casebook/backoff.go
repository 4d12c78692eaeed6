package casebook

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff spaces out the retries of a connection that keeps failing (a mailbox, a chat
// gateway): each wait doubles from Min up to Max. The zero Backoff is not usable: set
// Min and Max.
type Backoff struct {
	Min, Max time.Duration
	next     time.Duration
}

// Next returns how long to wait before the next try. The wait is drawn from the
// upper half of the current step ("equal jitter"), so that instances which lost a
// server together do not all return to it in the same instant, yet none retries
// much sooner than the step.
func (b *Backoff) Next() time.Duration {
	d := max(b.next, b.Min)
	b.next = min(2*d, b.Max)
	return d/2 + rand.N(d/2+1)
}

// Reset starts again from Min, after a connection that worked.
func (b *Backoff) Reset() { b.next = 0 }

// Sleep waits for d, or returns ctx's error as soon as ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
