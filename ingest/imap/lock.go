package imap

import (
	"context"
	"time"
)

// Locker runs work under a lock that lets one instance of several work a mailbox,
// and that passes to another instance when its holder dies.
type Locker interface {
	// WithLock runs fn while holding the lock called name, or reports false when
	// another instance holds it. fn's context ends when the lock may have been lost
	// (checked every interval, each check given twice that); context.Cause says why.
	WithLock(ctx context.Context, name string, interval time.Duration, fn func(context.Context) error) (bool, error)
	// HoldsLock checks at once, with a round trip to the lock's keeper, that the lock
	// fn's context (ctx) runs under is still held.
	HoldsLock(ctx context.Context) error
}

// The mailbox lock's fencing. A holder checks its lock every lockCheck and gives each
// check 2·lockCheck to answer, so it notices a lost lock within 3·lockCheck (750 ms)
// and stops, closing its IMAP connection. A new holder waits lockFence after taking
// the lock before it touches the mailbox, so the two never work it at the same time.
const (
	lockCheck = 250 * time.Millisecond
	lockFence = time.Second
)

// lockName names a mailbox's lock; the prefix keeps it apart from other locks, and
// keeps the key that instances of earlier versions take for the same mailbox.
func lockName(mailbox string) string { return "casebook/imap\x00" + mailbox }
