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
	// (checked every interval); context.Cause says why.
	WithLock(ctx context.Context, name string, interval time.Duration, fn func(context.Context) error) (bool, error)
}

// lockName names a mailbox's lock; the prefix keeps it apart from other locks, and
// keeps the key that instances of earlier versions take for the same mailbox.
func lockName(mailbox string) string { return "casebook/imap\x00" + mailbox }
