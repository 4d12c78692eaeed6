package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/casebookhq/casebook/casebook"
)

// IssueResetCode stores a temporary password's hash for a user, voiding any earlier
// one, and queues the mail that carries it in the same transaction. With perHour > 0
// it issues nothing and returns false when perHour codes were issued in the last hour.
func (s *Store) IssueResetCode(ctx context.Context, userID int64, codeHash, reason string, expires time.Time, perHour int, mail casebook.OutboxMail) (bool, error) {
	issued := false
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		// The row lock serialises concurrent requests for one account, so the count is exact.
		var id int64
		if err := tx.GetContext(ctx, &id, `SELECT id FROM users WHERE id = $1 FOR UPDATE`, userID); err != nil {
			return notFound(err, casebook.ErrUserNotFound)
		}
		if perHour > 0 {
			var n int
			if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM reset_requests WHERE user_id = $1 AND at > now() - interval '1 hour'`, userID); err != nil {
				return err
			}
			if n >= perHour {
				return nil
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM reset_requests WHERE user_id = $1 AND at < now() - interval '1 hour'`, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO reset_requests (user_id) VALUES ($1)`, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO reset_codes (user_id, code_hash, reason, expires_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id) DO UPDATE SET code_hash = EXCLUDED.code_hash, reason = EXCLUDED.reason,
				expires_at = EXCLUDED.expires_at, created_at = now()`, userID, codeHash, reason, expires); err != nil {
			return err
		}
		if err := s.enqueue(ctx, tx, mail); err != nil {
			return err
		}
		issued = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("issue reset code for user %d: %w", userID, err)
	}
	return issued, nil
}

// UseResetCode consumes a user's unexpired temporary password when codeHash matches
// it: a code works once.
func (s *Store) UseResetCode(ctx context.Context, userID int64, codeHash string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM reset_codes WHERE user_id = $1 AND code_hash = $2 AND expires_at > now()`, userID, codeHash)
	if err != nil {
		return false, fmt.Errorf("use reset code of user %d: %w", userID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
