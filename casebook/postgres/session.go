package postgres

import (
	"context"
	"fmt"
)

// TagSession records whose session a committed session token is, so that
// ChangePassword can end the user's other sessions. The sessions table itself is
// written by scs's postgresstore, which leaves this column alone.
func (s *Store) TagSession(ctx context.Context, token string, userID int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE sessions SET user_id = $2 WHERE token = $1`, token, userID)
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
