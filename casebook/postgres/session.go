package postgres

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/casebookhq/casebook/casebook"
)

// TagSession records whose session a committed session token is, and where it was
// opened from, so that the user's sessions can be listed and ended. The sessions table
// itself is written by scs's postgresstore, which leaves these columns alone.
func (s *Store) TagSession(ctx context.Context, token string, userID int64, ip, userAgent string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE sessions SET user_id = $2, ip = $3, user_agent = $4 WHERE token = $1`, token, userID, ip, userAgent)
	if err != nil {
		return fmt.Errorf("tag session: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("tag session: the session was not committed")
	}
	return nil
}

// SessionsOfUser counts a user's unexpired sessions.
func (s *Store) SessionsOfUser(ctx context.Context, userID int64) (int, error) {
	var n int
	if err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM sessions WHERE user_id = $1 AND expiry > now()`, userID); err != nil {
		return 0, fmt.Errorf("sessions of user %d: %w", userID, err)
	}
	return n, nil
}

// UserSessions lists a user's unexpired sessions, newest first; currentToken marks the
// asking session (empty marks none).
func (s *Store) UserSessions(ctx context.Context, userID int64, currentToken string) ([]casebook.Session, error) {
	ss := []casebook.Session{}
	err := s.db.SelectContext(ctx, &ss, `SELECT id, created_at, expiry, ip, user_agent, token = $2 AS current
		FROM sessions WHERE user_id = $1 AND expiry > now() ORDER BY created_at DESC, id DESC`, userID, currentToken)
	if err != nil {
		return nil, fmt.Errorf("sessions of user %d: %w", userID, err)
	}
	return ss, nil
}

// RevokeSessions ends every session of a user but keepToken's (empty ends them all):
// it deletes their rows and raises the user's session epoch, which ends at its next
// request a session that a request in flight writes back. It returns the new epoch,
// for the kept session to carry, and how many sessions were ended.
func (s *Store) RevokeSessions(ctx context.Context, userID int64, keepToken string) (epoch int64, ended int, err error) {
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		epoch, ended, err = revokeSessions(ctx, tx, userID, keepToken)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("revoke sessions of user %d: %w", userID, err)
	}
	return epoch, ended, nil
}

func revokeSessions(ctx context.Context, tx *sqlx.Tx, userID int64, keepToken string) (int64, int, error) {
	var epoch int64
	if err := tx.GetContext(ctx, &epoch, `UPDATE users SET session_epoch = session_epoch + 1 WHERE id = $1 RETURNING session_epoch`, userID); err != nil {
		return 0, 0, notFound(err, casebook.ErrUserNotFound)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1 AND token <> $2`, userID, keepToken)
	if err != nil {
		return 0, 0, err
	}
	n, _ := res.RowsAffected()
	return epoch, int(n), nil
}
