package web

import (
	"context"
	"sync/atomic"
	"time"
)

// hashPace follows how long a password check takes here (an exponentially weighted
// mean of recent checks), so that refusals that skip the check can keep its pace.
type hashPace struct{ mean atomic.Int64 }

func (p *hashPace) observe(d time.Duration) {
	old := p.mean.Load()
	if old == 0 {
		p.mean.Store(int64(d))
		return
	}
	// A weight of 1/8: quick to follow a change of load, steady against one outlier.
	p.mean.Store(old + (int64(d)-old)/8)
}

// wait returns once a typical check would have ended after start, or when ctx ends.
func (p *hashPace) wait(ctx context.Context, start time.Time) {
	d := time.Duration(p.mean.Load()) - time.Since(start)
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
