package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// errNoRow ends a transaction that found nothing to do.
var errNoRow = errors.New("no row")

// QueueResetRequest records a "Forgot your password?" request for a worker, whether or
// not the address is an account's: the request path does this same work either way.
func (s *Store) QueueResetRequest(ctx context.Context, email, ip, userAgent string) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO reset_queue (email, ip, user_agent) VALUES ($1, $2, $3)`, email, ip, userAgent); err != nil {
		return fmt.Errorf("queue reset request: %w", err)
	}
	return nil
}

// NextResetRequest hands the oldest queued request no other worker holds to handle,
// and removes it once handle succeeds, in one transaction: a crash in between leaves
// it queued, to be handled again (at worst a second code, which voids the first).
// It reports whether there was one.
func (s *Store) NextResetRequest(ctx context.Context, handle func(email, ip, userAgent string) error) (bool, error) {
	found := false
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var r struct {
			ID        int64  `db:"id"`
			Email     string `db:"email"`
			IP        string `db:"ip"`
			UserAgent string `db:"user_agent"`
		}
		err := tx.GetContext(ctx, &r, `SELECT id, email, ip, user_agent FROM reset_queue ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`)
		if err != nil {
			return notFound(err, errNoRow)
		}
		found = true
		if err := handle(r.Email, r.IP, r.UserAgent); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM reset_queue WHERE id = $1`, r.ID)
		return err
	})
	if errors.Is(err, errNoRow) {
		return false, nil
	}
	if err != nil {
		return found, fmt.Errorf("reset request: %w", err)
	}
	return true, nil
}
