package web

import (
	"context"
	"sync"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

// maxAuditBatch bounds the rows one audit transaction carries.
const maxAuditBatch = 100

// auditBatcher writes the audit rows of concurrent requests together. The audit log is
// a hash chain, so appends are serialised and each waits for the commit (and fsync)
// before it; one at a time, that caps the whole site at a few hundred case views a
// second. Here the first request to find no write in progress writes everything
// queued in one transaction, and every request still waits until the transaction
// holding its own row has committed: nothing is served before its audit row is
// durable.
type auditBatcher struct {
	write func(ctx context.Context, es []casebook.AuditEntry) error

	mu      sync.Mutex
	pending []*auditReq
	writing bool
}

type auditReq struct {
	e    casebook.AuditEntry
	done chan error
}

// append queues e and returns once it is written, or the write's error.
func (b *auditBatcher) append(e casebook.AuditEntry) error {
	req := &auditReq{e: e, done: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, req)
	if b.writing {
		b.mu.Unlock()
		return <-req.done
	}
	b.writing = true
	b.mu.Unlock()
	b.drainOnce()
	// The batch just written held req. Whoever queued since is written by a new
	// writer, so this request's latency is one batch, not the queue's.
	b.mu.Lock()
	if len(b.pending) > 0 {
		b.mu.Unlock()
		go b.drain()
	} else {
		b.writing = false
		b.mu.Unlock()
	}
	return <-req.done
}

// drain writes batches until the queue is empty.
func (b *auditBatcher) drain() {
	for {
		b.drainOnce()
		b.mu.Lock()
		if len(b.pending) == 0 {
			b.writing = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
	}
}

// drainOnce writes up to maxAuditBatch queued rows in one transaction.
func (b *auditBatcher) drainOnce() {
	b.mu.Lock()
	n := min(len(b.pending), maxAuditBatch)
	batch := b.pending[:n:n]
	b.pending = b.pending[n:]
	b.mu.Unlock()
	if n == 0 {
		return
	}
	es := make([]casebook.AuditEntry, n)
	for i, r := range batch {
		es[i] = r.e
	}
	// The batch belongs to many requests: no one request's cancellation stops it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := b.write(ctx, es)
	cancel()
	for _, r := range batch {
		r.done <- err
	}
}
