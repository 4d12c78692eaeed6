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

// WithLock runs fn while it holds the PostgreSQL session-level advisory lock called
// name, on a connection of its own, and reports false without running fn when another
// session holds it. PostgreSQL releases such a lock when its session ends, so a holder
// that dies or loses the network hands the work to the next instance without any
// cleanup. fn's context ends when ctx does or when the lock's session fails a check
// (one every interval): the lock may then have passed to another instance, and
// context.Cause says why.
func (s *Store) WithLock(ctx context.Context, name string, interval time.Duration, fn func(context.Context) error) (bool, error) {
	l, ok, err := s.tryLock(ctx, name)
	if err != nil || !ok {
		return false, err
	}
	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() { cancel(l.watch(fctx, interval)) }()
	err = fn(fctx)
	cancel(nil)
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	return true, errors.Join(err, l.release(rctx))
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
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("lock %q: connection: %w", name, err)
	}
	l := &sessionLock{conn: conn, key: sessionLockKey(name)}
	var got bool
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

// watch returns when the lock's session fails a check, or when ctx ends.
func (l *sessionLock) watch(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			cctx, cancel := context.WithTimeout(ctx, interval)
			err := l.conn.PingContext(cctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("lock connection lost: %w", err)
			}
		}
	}
}

// release unlocks and returns the connection. When the unlock cannot be sent, the
// connection is discarded instead, which ends the session and with it the lock.
func (l *sessionLock) release(ctx context.Context) error {
	_, err := l.conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, l.key)
	if err != nil {
		// Raw returning driver.ErrBadConn makes database/sql close the session.
		l.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return errors.Join(err, l.conn.Close())
}
