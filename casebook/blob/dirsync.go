package blob

import "sync"

// dirSyncs makes renames durable in rounds shared by concurrent writers (group
// commit). A writer queues the directory it renamed into and waits for a round that
// starts after that; a round fsyncs each directory queued once, however many renames
// into it are waiting, and hands every waiter its directory's result. While a round
// runs the next one gathers, so under load the updates in flight share their fsyncs
// (and, on a journalling file system, their journal commits) instead of each paying
// its own. Nothing returns before its rename is durable: the promise is unchanged.
type dirSyncs struct {
	mu      sync.Mutex
	queued  map[string][]chan error
	running bool
	// fsync is syncDir; the tests hold rounds up with their own.
	fsync func(dir string) error
}

// sync returns once dir has been fsynced by a round that started after the call.
func (s *dirSyncs) sync(dir string) error {
	done := make(chan error, 1)
	s.mu.Lock()
	if s.queued == nil {
		s.queued = map[string][]chan error{}
	}
	s.queued[dir] = append(s.queued[dir], done)
	lead := !s.running
	s.running = true
	s.mu.Unlock()
	if lead {
		s.round()
	}
	return <-done
}

// round fsyncs what is queued, then hands the next round, if any, to a new goroutine,
// so that the writer that led this one is not held up by later writers. The
// directories of a round are fsynced at once, each waiter answered when its own is
// done: objects fan out over 256 directories, so a round under load holds several,
// and one after the other each would wait out every write before it.
func (s *dirSyncs) round() {
	s.mu.Lock()
	batch := s.queued
	s.queued = nil
	s.mu.Unlock()
	var wg sync.WaitGroup
	for dir, waiters := range batch {
		wg.Go(func() {
			err := s.fsync(dir)
			for _, w := range waiters {
				w <- err
			}
		})
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queued) == 0 {
		s.running = false
		return
	}
	go s.round()
}
