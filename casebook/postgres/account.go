package postgres

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/casebookhq/casebook/casebook"
)

// SetUserDisabled disables or enables an account. Disabling ends every session of the
// user and voids any temporary password in the same transaction, so nothing the user
// held before keeps working. It returns the sessions ended.
func (s *Store) SetUserDisabled(ctx context.Context, userID int64, disabled bool) (int, error) {
	ended := 0
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET disabled_at = CASE WHEN $2 THEN COALESCE(disabled_at, now()) END WHERE id = $1`, userID, disabled)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return casebook.ErrUserNotFound
		}
		if !disabled {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM reset_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		_, ended, err = revokeSessions(ctx, tx, userID, "")
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("set user %d disabled=%t: %w", userID, disabled, err)
	}
	return ended, nil
}

// VoidPassword makes a user's password stop working and ends every session, for a
// reset by staff: whoever knew the old password is out, and the temporary password
// that follows is the only way back in. It returns the sessions ended.
func (s *Store) VoidPassword(ctx context.Context, userID int64) (int, error) {
	ended := 0
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = '' WHERE id = $1`, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return casebook.ErrUserNotFound
		}
		_, ended, err = revokeSessions(ctx, tx, userID, "")
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("void password of user %d: %w", userID, err)
	}
	return ended, nil
}

// AppKey returns the shared secret called name, creating it with size random bytes the
// first time any instance asks.
func (s *Store) AppKey(ctx context.Context, name string, size int) ([]byte, error) {
	key := make([]byte, size)
	rand.Read(key)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO app_keys (name, key) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, key); err != nil {
		return nil, fmt.Errorf("app key %s: %w", name, err)
	}
	// Another instance may have won the race: everyone uses the stored key.
	if err := s.db.GetContext(ctx, &key, `SELECT key FROM app_keys WHERE name = $1`, name); err != nil {
		return nil, fmt.Errorf("app key %s: %w", name, err)
	}
	return key, nil
}
