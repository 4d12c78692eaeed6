package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"time"
)

// errNoLock is HoldsLock's answer for a context WithLock did not give.
var errNoLock = errors.New("no lock is held in this context")

// lockSessionSettings make the server end a lock session whose client vanished (a
// machine that lost power or the network sends no FIN) within about eight seconds
// instead of the kernel's two hours, so the lock passes to a standby that soon. They
// apply to TCP sessions only; over a Unix socket the server sees the close at once.
const lockSessionSettings = `SELECT set_config('tcp_keepalives_idle', '5', false),
	set_config('tcp_keepalives_interval', '1', false),
	set_config('tcp_keepalives_count', '3', false),
	set_config('tcp_user_timeout', '8000', false)`

// lockCtxKey finds, in the context WithLock gives fn, the lock fn runs under.
type lockCtxKey struct{}

// WithLock runs fn while it holds the PostgreSQL session-level advisory lock called
// name, on a connection of its own, and reports false without running fn when another
// session holds it. PostgreSQL releases such a lock when its session ends, so a holder
// that dies or loses the network hands the work to the next instance without any
// cleanup. fn's context ends when ctx does or when the lock's session fails a check
// (one every interval, each given twice interval to answer): the lock may then have
// passed to another instance, and context.Cause says why. HoldsLock checks the lock
// at once from within fn.
//
// The lock's session is dialled afresh, never taken from the pool: after a PostgreSQL
// restart every pooled connection is dead, and a standby whose first attempt fails on
// one ("driver: bad connection") would wait a whole retry interval for nothing.
func (s *Store) WithLock(ctx context.Context, name string, interval time.Duration, fn func(context.Context) error) (bool, error) {
	l, ok, err := s.tryLock(ctx, name)
	if err != nil || !ok {
		return false, err
	}
	fctx, cancel := context.WithCancelCause(context.WithValue(ctx, lockCtxKey{}, l))
	defer cancel(nil)
	go func() { cancel(l.watch(fctx, interval)) }()
	err = fn(fctx)
	cancel(nil)
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	return true, errors.Join(err, l.release(rctx))
}

// HoldsLock asks the session of the lock ctx runs under (ctx being, or deriving from,
// the context WithLock gave fn) whether it is alive, and so whether it still holds
// the lock. Work whose effects another holder must not repeat checks it just before.
func (s *Store) HoldsLock(ctx context.Context) error {
	l, _ := ctx.Value(lockCtxKey{}).(*sessionLock)
	if l == nil {
		return errNoLock
	}
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := l.check(cctx); err != nil {
		return fmt.Errorf("lock connection lost: %w", err)
	}
	return nil
}

// sessionLock is an advisory lock and the connection whose session holds it.
type sessionLock struct {
	conn *sql.Conn
	key  int64
}

// sessionLockKey maps a lock's name to the 64-bit key space of pg_advisory_lock.
func sessionLockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

func (s *Store) tryLock(ctx context.Context, name string) (*sessionLock, bool, error) {
	conn, err := s.locks.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("lock %q: connection: %w", name, err)
	}
	l := &sessionLock{conn: conn, key: sessionLockKey(name)}
	var got bool
	if _, err := conn.ExecContext(ctx, lockSessionSettings); err != nil {
		conn.Close()
		return nil, false, fmt.Errorf("lock %q: session settings: %w", name, err)
	}
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, l.key).Scan(&got); err != nil {
		conn.Close()
		return nil, false, fmt.Errorf("lock %q: %w", name, err)
	}
	if !got {
		conn.Close()
		return nil, false, nil
	}
	return l, true, nil
}

// check makes a round trip on the lock's session. A session that answers holds the
// lock: only an unlock or the session's end releases a session-level advisory lock.
// It returns when ctx ends even if the round trip has not: through a network gone
// silent lib/pq waits for the answer until the connection's user timeout
// (lockDialer), and the holder must stop long before that.
func (l *sessionLock) check(ctx context.Context) error {
	done := make(chan error, 1)
	go func() {
		// An empty query is the cheapest round trip the server answers.
		_, err := l.conn.ExecContext(ctx, `;`)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watch returns when the lock's session fails a check, or when ctx ends.
func (l *sessionLock) watch(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			cctx, cancel := context.WithTimeout(ctx, 2*interval)
			err := l.check(cctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("lock connection lost: %w", err)
			}
		}
	}
}

// release unlocks and closes the session. When the unlock cannot be sent, the
// connection is discarded instead, which ends the session and with it the lock.
func (l *sessionLock) release(ctx context.Context) error {
	_, err := l.conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, l.key)
	if err != nil {
		// Raw returning driver.ErrBadConn makes database/sql close the session.
		l.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return errors.Join(err, l.conn.Close())
}
