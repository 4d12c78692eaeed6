package web

import (
	"strings"
	"sync"
	"time"
)

// maxRememberedLocks bounds the memory; past it, it starts over.
const maxRememberedLocks = 10000

// lockSet remembers locks an instance saw in the database, for Options.LockMemory,
// by the throttle keys they were seen under. The throttle table stays the truth every
// instance shares; this only spares it the query of each request in a flood against
// a locked account or address. A lock that ends, or that `casebook user unlock`
// lifts, is honoured at most that much later.
type lockSet struct {
	memory time.Duration
	mu     sync.Mutex
	until  map[string]time.Time
}

func (l *lockSet) has(keys []string) bool {
	k := strings.Join(keys, "\x00")
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.until[k]
	if ok && time.Now().After(t) {
		delete(l.until, k)
		return false
	}
	return ok
}

func (l *lockSet) add(keys []string) {
	if l.memory <= 0 {
		return
	}
	k := strings.Join(keys, "\x00")
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.until == nil || len(l.until) >= maxRememberedLocks {
		l.until = map[string]time.Time{}
	}
	l.until[k] = time.Now().Add(l.memory)
}
