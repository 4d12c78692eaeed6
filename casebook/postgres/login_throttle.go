package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// LoginLocked reports whether any of keys is in a lock-out period. Times are the
// database's, so instances with skewed clocks agree.
func (s *Store) LoginLocked(ctx context.Context, keys ...string) (bool, error) {
	var locked bool
	err := s.db.GetContext(ctx, &locked, `SELECT EXISTS (SELECT 1 FROM login_throttle WHERE key = ANY($1) AND locked_until > now())`, pq.Array(keys))
	if err != nil {
		return false, fmt.Errorf("login throttle: %w", err)
	}
	return locked, nil
}

// RecordLoginFailure counts a failure against key and locks it for delay(failures),
// the count restarting after window without failures.
func (s *Store) RecordLoginFailure(ctx context.Context, key string, window time.Duration, delay func(failures int) time.Duration) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var failures int
		if err := tx.GetContext(ctx, &failures, `INSERT INTO login_throttle (key, failures, last_failure, locked_until)
			VALUES ($1, 1, now(), now())
			ON CONFLICT (key) DO UPDATE SET
				failures = CASE WHEN login_throttle.last_failure < now() - $2::bigint * interval '1 microsecond'
					THEN 1 ELSE login_throttle.failures + 1 END,
				last_failure = now()
			RETURNING failures`, key, window.Microseconds()); err != nil {
			return err
		}
		d := delay(failures)
		if d <= 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE login_throttle SET locked_until = now() + $2::bigint * interval '1 microsecond' WHERE key = $1`,
			key, d.Microseconds())
		return err
	})
	if err != nil {
		return fmt.Errorf("record login failure: %w", err)
	}
	return nil
}

// ClaimLoginAttempt counts an attempt against key before its password is checked,
// unless key is locked, and reports whether it was. Counting first, under the row's
// lock, makes the budget exact under concurrency: when a lock ends, a crowd of
// requests cannot all pass the check before the first failure is recorded, each
// costing a password hash. A success then clears the count (ClearLoginFailures).
func (s *Store) ClaimLoginAttempt(ctx context.Context, key string, window time.Duration, delay func(attempts int) time.Duration) (locked bool, err error) {
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var attempts []int
		if err := tx.SelectContext(ctx, &attempts, `INSERT INTO login_throttle (key, failures, last_failure, locked_until)
			VALUES ($1, 1, now(), now())
			ON CONFLICT (key) DO UPDATE SET
				failures = CASE WHEN login_throttle.last_failure < now() - $2::bigint * interval '1 microsecond'
					THEN 1 ELSE login_throttle.failures + 1 END,
				last_failure = now()
			WHERE login_throttle.locked_until <= now()
			RETURNING failures`, key, window.Microseconds()); err != nil {
			return err
		}
		if len(attempts) == 0 {
			locked = true
			return nil
		}
		d := delay(attempts[0])
		if d <= 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE login_throttle SET locked_until = now() + $2::bigint * interval '1 microsecond' WHERE key = $1`,
			key, d.Microseconds())
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claim login attempt: %w", err)
	}
	return locked, nil
}

// ClearLoginFailures forgets key's failures after a successful login.
func (s *Store) ClearLoginFailures(ctx context.Context, key string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM login_throttle WHERE key = $1`, key); err != nil {
		return fmt.Errorf("clear login failures: %w", err)
	}
	return nil
}

// ClearLoginLocks forgets the failures of key and of every key starting with prefix
// (an account's devices), for staff unlocking an account. It returns the rows removed.
func (s *Store) ClearLoginLocks(ctx context.Context, key, prefix string) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM login_throttle WHERE key = $1 OR ($2 <> '' AND starts_with(key, $2))`, key, prefix)
	if err != nil {
		return 0, fmt.Errorf("clear login locks: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// PruneLoginThrottle deletes rows whose last failure is older than age and whose lock
// has ended: names typed at random must not grow the table for ever.
func (s *Store) PruneLoginThrottle(ctx context.Context, age time.Duration) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM login_throttle
		WHERE last_failure < now() - $1::bigint * interval '1 microsecond' AND locked_until < now()`, age.Microseconds())
	if err != nil {
		return 0, fmt.Errorf("prune login throttle: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
