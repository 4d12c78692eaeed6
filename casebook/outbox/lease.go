package outbox

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

// DefaultLease is how long a claimed row waits for its worker before another may take
// it. A worker renews its rows every third of it, so the lease bounds how long a dead
// worker's mail waits (plus one Poll), not how long a send may take.
const DefaultLease = 30 * time.Second

// minLease keeps the renewals (a third of the lease) well apart from one another.
const minLease = 3 * time.Second

// lease is the set of rows a batch claimed and still has to send, and when their
// claim runs out as last renewed.
type lease struct {
	mu    sync.Mutex
	held  map[int64]casebook.OutboxEntry
	until time.Time
}

func newLease(rows []casebook.OutboxEntry, until time.Time) *lease {
	l := &lease{held: make(map[int64]casebook.OutboxEntry, len(rows)), until: until}
	for _, e := range rows {
		if e.Status == casebook.OutboxPending {
			l.held[e.ID] = e
		}
	}
	return l
}

// mayStart reports whether row id is still held with at least margin of its lease to
// run, so that the renewal due meanwhile has time to land before the lease ends.
func (l *lease) mayStart(id int64, now time.Time, margin time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.held[id]
	return ok && now.Before(l.until.Add(-margin))
}

// done stops renewing row id: it was sent, deferred, given up or left.
func (l *lease) done(id int64) {
	l.mu.Lock()
	delete(l.held, id)
	l.mu.Unlock()
}

func (l *lease) claims() []casebook.OutboxEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]casebook.OutboxEntry, 0, len(l.held))
	for _, e := range l.held {
		out = append(out, e)
	}
	return out
}

// renewed records a renewal to until that kept the rows ids; the others were taken
// by another worker after the lease ran out, and are theirs to send.
func (l *lease) renewed(claims []casebook.OutboxEntry, ids []int64, until time.Time) {
	kept := make(map[int64]bool, len(ids))
	for _, id := range ids {
		kept[id] = true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range claims {
		if !kept[e.ID] {
			delete(l.held, e.ID)
		}
	}
	l.until = until
}

// heartbeat renews the lease of the rows the batch still holds every third of the
// lease until ctx ends. A renewal that fails leaves the lease to run out: the rows not
// yet started are then left (mayStart), and another worker sends them.
func (w *Worker) heartbeat(ctx context.Context, l *lease) {
	t := time.NewTicker(w.opt.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		claims := l.claims()
		if len(claims) == 0 {
			continue
		}
		until := w.opt.Now().Add(w.opt.Lease)
		ids, err := w.store.ExtendOutboxLease(ctx, claims, until)
		if err != nil {
			if ctx.Err() == nil {
				w.log.WarnContext(ctx, "cannot renew the outbox lease", "rows", len(claims), slog.Any("error", err))
			}
			continue
		}
		l.renewed(claims, ids, until)
	}
}
