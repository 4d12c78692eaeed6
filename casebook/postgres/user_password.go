package postgres

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/casebookhq/casebook/casebook"
)

// PasswordHash returns a user's password hash (empty when none was ever set) and
// whether the user must choose a new password before doing anything else.
func (s *Store) PasswordHash(ctx context.Context, userID int64) (hash string, mustChange bool, err error) {
	var row struct {
		Hash       string `db:"password_hash"`
		MustChange bool   `db:"must_change_password"`
	}
	err = s.db.GetContext(ctx, &row, `SELECT password_hash, must_change_password FROM users WHERE id = $1`, userID)
	if err != nil {
		return "", false, fmt.Errorf("password of user %d: %w", userID, notFound(err, casebook.ErrUserNotFound))
	}
	return row.Hash, row.MustChange, nil
}

// ReplacePasswordHash swaps old for new only while the stored hash is still old: a
// rehash with new parameters after a login must not undo a password change that
// raced with it.
func (s *Store) ReplacePasswordHash(ctx context.Context, userID int64, old, new string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2`, userID, old, new); err != nil {
		return fmt.Errorf("rehash password of user %d: %w", userID, err)
	}
	return nil
}

// ChangePassword stores a user's new password hash in one transaction with what must
// go with it: the forced change is done, any temporary password is void, and every
// other session of the user ends (keepToken is the session making the change; empty
// ends them all). It returns the user's new session epoch, for the kept session.
func (s *Store) ChangePassword(ctx context.Context, userID int64, hash, keepToken string) (int64, error) {
	var epoch int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = $2, must_change_password = false WHERE id = $1`, userID, hash)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return casebook.ErrUserNotFound
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM reset_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		epoch, _, err = revokeSessions(ctx, tx, userID, keepToken)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("change password of user %d: %w", userID, err)
	}
	return epoch, nil
}
