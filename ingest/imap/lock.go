package imap

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"time"
)

// mailboxLock is a PostgreSQL session-level advisory lock held on a connection of its
// own. PostgreSQL releases it when that session ends, so a holder that dies or loses
// the network hands the mailbox to the next instance without any cleanup.
type mailboxLock struct {
	conn *sql.Conn
	key  int64
}

// lockKey maps a mailbox to the 64-bit key space of pg_advisory_lock.
func lockKey(mailbox string) int64 {
	h := fnv.New64a()
	h.Write([]byte("casebook/imap\x00" + mailbox))
	return int64(h.Sum64())
}

// tryLock takes the mailbox's lock if no other session holds it. It reports false
// with a nil error when another instance works the mailbox.
func tryLock(ctx context.Context, db *sql.DB, mailbox string) (*mailboxLock, bool, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("lock connection: %w", err)
	}
	l := &mailboxLock{conn: conn, key: lockKey(mailbox)}
	var got bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, l.key).Scan(&got); err != nil {
		conn.Close()
		return nil, false, fmt.Errorf("try lock: %w", err)
	}
	if !got {
		conn.Close()
		return nil, false, nil
	}
	return l, true, nil
}

// watch returns when the lock's session fails a check, or when ctx ends; it checks
// every interval, so a holder cut off from PostgreSQL stops working the mailbox soon
// after its lock may have passed to someone else.
func (l *mailboxLock) watch(ctx context.Context, interval time.Duration) error {
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
func (l *mailboxLock) release(ctx context.Context) error {
	_, err := l.conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, l.key)
	if err != nil {
		// Raw returning driver.ErrBadConn makes database/sql close the session.
		l.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return errors.Join(err, l.conn.Close())
}
