package postgres

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/casebookhq/casebook/casebook"
)

// SecondFactor returns a user's TOTP factor, confirmed or still being enrolled;
// casebook.ErrNoSecondFactor when there is none.
func (s *Store) SecondFactor(ctx context.Context, userID int64) (casebook.SecondFactor, error) {
	var row struct {
		Secret    string `db:"secret"`
		LastStep  int64  `db:"last_step"`
		Confirmed bool   `db:"confirmed"`
	}
	err := s.db.GetContext(ctx, &row, `SELECT secret, last_step, confirmed_at IS NOT NULL AS confirmed FROM mfa_factors WHERE user_id = $1`, userID)
	if err != nil {
		return casebook.SecondFactor{}, fmt.Errorf("second factor of user %d: %w", userID, notFound(err, casebook.ErrNoSecondFactor))
	}
	return casebook.SecondFactor{UserID: userID, Secret: row.Secret, Confirmed: row.Confirmed, LastStep: row.LastStep}, nil
}

// BeginSecondFactor stores a new, unconfirmed secret for a user, replacing one whose
// enrolment was not finished. A confirmed factor is left alone:
// casebook.ErrSecondFactorExists.
func (s *Store) BeginSecondFactor(ctx context.Context, userID int64, secret string) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO mfa_factors (user_id, secret) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET secret = EXCLUDED.secret, last_step = 0, created_at = now()
		WHERE mfa_factors.confirmed_at IS NULL`, userID, secret)
	if err != nil {
		return fmt.Errorf("begin second factor of user %d: %w", userID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("begin second factor of user %d: %w", userID, casebook.ErrSecondFactorExists)
	}
	return nil
}

// ConfirmSecondFactor finishes the enrolment of secret, the stored text the user was
// shown, with the time step of the code they typed, and replaces the user's recovery
// codes with recoveryHashes, in one transaction. It returns false, changing nothing,
// when that enrolment is no longer in progress (finished, or replaced by another
// login's) or the step was already used.
func (s *Store) ConfirmSecondFactor(ctx context.Context, userID int64, secret string, step int64, recoveryHashes []string) (bool, error) {
	done := false
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE mfa_factors SET confirmed_at = now(), last_step = $3
			WHERE user_id = $1 AND secret = $2 AND confirmed_at IS NULL AND last_step < $3`, userID, secret, step)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM mfa_recovery_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO mfa_recovery_codes (user_id, code_hash) SELECT $1, unnest($2::text[])`,
			userID, pq.Array(recoveryHashes)); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("confirm second factor of user %d: %w", userID, err)
	}
	return done, nil
}

// UseTOTPStep records that a code of time step step was accepted for a user's
// confirmed factor. It returns false when that step or a later one was used before:
// the compare-and-set in one statement keeps two concurrent logins with the same
// code from both succeeding.
func (s *Store) UseTOTPStep(ctx context.Context, userID, step int64) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE mfa_factors SET last_step = $2
		WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_step < $2`, userID, step)
	if err != nil {
		return false, fmt.Errorf("use totp step of user %d: %w", userID, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// UseRecoveryCode consumes a user's recovery code when codeHash matches an unused
// one, and says how many are left.
func (s *Store) UseRecoveryCode(ctx context.Context, userID int64, codeHash string) (ok bool, left int, err error) {
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND code_hash = $2`, userID, codeHash)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		ok = n == 1
		return tx.GetContext(ctx, &left, `SELECT count(*) FROM mfa_recovery_codes WHERE user_id = $1`, userID)
	})
	if err != nil {
		return false, 0, fmt.Errorf("use recovery code of user %d: %w", userID, err)
	}
	return ok, left, nil
}

// ResetSecondFactor removes a user's factor and recovery codes, for a lost phone:
// the next login enrols again where the policy asks for a factor. It returns false
// when the user had no factor.
func (s *Store) ResetSecondFactor(ctx context.Context, userID int64) (bool, error) {
	had := false
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM mfa_factors WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		had = n == 1
		_, err = tx.ExecContext(ctx, `DELETE FROM mfa_recovery_codes WHERE user_id = $1`, userID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("reset second factor of user %d: %w", userID, err)
	}
	return had, nil
}
