package postgres

import (
	"context"
	"fmt"
	"net/mail"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/casebookhq/casebook/casebook"
)

const userColumns = `u.id, u.org_id, u.email, u.name, u.staff, u.disabled_at IS NOT NULL AS disabled, u.created_at, u.session_epoch`

// NewUser is a user to create. PasswordHash may be empty (no web login yet).
type NewUser struct {
	OrgID              *int64
	Email              string
	Name               string
	Staff              bool
	PasswordHash       string
	MustChangePassword bool
}

// NormalizeEmail checks an address and returns it lowercased, without a display name.
func NormalizeEmail(addr string) (string, error) {
	a, err := mail.ParseAddress(strings.TrimSpace(addr))
	if err != nil || strings.ContainsAny(a.Address, " \r\n") {
		return "", fmt.Errorf("%w: %q is not an email address", casebook.ErrInvalidInput, addr)
	}
	return strings.ToLower(a.Address), nil
}

// AddUser creates a user and its email identity.
func (s *Store) AddUser(ctx context.Context, nu NewUser) (casebook.User, error) {
	var u casebook.User
	err := s.inTx(ctx, func(tx *sqlx.Tx) (err error) {
		u, err = insertUser(ctx, tx, nu)
		return err
	})
	if err != nil {
		return casebook.User{}, fmt.Errorf("add user: %w", err)
	}
	return u, nil
}

// AddUserWithCode creates a user with a temporary password in one transaction: the
// user, its email identity, the password's hash, the mail that carries it and the
// audit row.
func (s *Store) AddUserWithCode(ctx context.Context, a casebook.NewAccount, code casebook.NewAccountCode) (casebook.User, error) {
	var u casebook.User
	err := s.inTx(ctx, func(tx *sqlx.Tx) (err error) {
		if u, err = insertUser(ctx, tx, NewUser{OrgID: a.OrgID, Email: a.Email, Name: a.Name, Staff: a.Staff}); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO reset_codes (user_id, code_hash, reason, expires_at) VALUES ($1, $2, $3, $4)`,
			u.ID, code.Hash, casebook.ReasonNewAccount, code.Expires); err != nil {
			return err
		}
		if err := s.enqueue(ctx, tx, code.Mail(u)); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, []casebook.AuditEntry{code.Audit(u)})
	})
	if err != nil {
		return casebook.User{}, fmt.Errorf("add user: %w", err)
	}
	return u, nil
}

func insertUser(ctx context.Context, tx *sqlx.Tx, nu NewUser) (casebook.User, error) {
	email, err := NormalizeEmail(nu.Email)
	if err != nil {
		return casebook.User{}, err
	}
	if !nu.Staff && nu.OrgID == nil {
		return casebook.User{}, fmt.Errorf("%s: %w: a customer needs an org", email, casebook.ErrInvalidInput)
	}
	var u casebook.User
	err = tx.GetContext(ctx, &u, `INSERT INTO users AS u (org_id, email, name, staff, password_hash, must_change_password)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+userColumns,
		nu.OrgID, email, strings.TrimSpace(nu.Name), nu.Staff, nu.PasswordHash, nu.MustChangePassword)
	if isUniqueViolation(err) {
		return casebook.User{}, fmt.Errorf("%s: %w", email, casebook.ErrEmailTaken)
	}
	if err != nil {
		return casebook.User{}, fmt.Errorf("%s: %w", email, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO identities (kind, value, user_id) VALUES ('email', $1, $2)`, email, u.ID)
	if isUniqueViolation(err) {
		return casebook.User{}, fmt.Errorf("%s: %w", email, casebook.ErrEmailTaken)
	}
	if err != nil {
		return casebook.User{}, fmt.Errorf("%s: %w", email, err)
	}
	return u, nil
}

// UserByID finds a user.
func (s *Store) UserByID(ctx context.Context, id int64) (casebook.User, error) {
	var u casebook.User
	err := s.hot.GetContext(ctx, &u, `SELECT `+userColumns+` FROM users u WHERE u.id = $1`, id)
	if err != nil {
		return u, fmt.Errorf("user %d: %w", id, notFound(err, casebook.ErrUserNotFound))
	}
	return u, nil
}

// UserByEmail finds a user by email address, ignoring letter case.
func (s *Store) UserByEmail(ctx context.Context, email string) (casebook.User, error) {
	var u casebook.User
	err := s.db.GetContext(ctx, &u, `SELECT `+userColumns+` FROM users u WHERE lower(u.email) = lower($1)`, strings.TrimSpace(email))
	if err != nil {
		return u, fmt.Errorf("user %s: %w", email, notFound(err, casebook.ErrUserNotFound))
	}
	return u, nil
}

// UserByIdentity finds the user a channel identity belongs to.
func (s *Store) UserByIdentity(ctx context.Context, kind casebook.IdentityKind, value string) (casebook.User, error) {
	if kind == casebook.IdentityEmail {
		value = strings.ToLower(strings.TrimSpace(value))
	}
	var u casebook.User
	err := s.hot.GetContext(ctx, &u, `SELECT `+userColumns+` FROM identities i JOIN users u ON u.id = i.user_id
		WHERE i.kind = $1 AND i.value = $2`, kind, value)
	if err != nil {
		return u, fmt.Errorf("user for %s %s: %w", kind, value, notFound(err, casebook.ErrUserNotFound))
	}
	return u, nil
}

// AddIdentity ties a channel identity to a user.
func (s *Store) AddIdentity(ctx context.Context, id casebook.Identity) error {
	if id.Kind == casebook.IdentityEmail {
		id.Value = strings.ToLower(strings.TrimSpace(id.Value))
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO identities (kind, value, user_id) VALUES ($1, $2, $3)`, id.Kind, id.Value, id.UserID)
	if isUniqueViolation(err) {
		return fmt.Errorf("add identity %s %s: %w", id.Kind, id.Value, casebook.ErrEmailTaken)
	}
	if err != nil {
		return fmt.Errorf("add identity %s %s: %w", id.Kind, id.Value, err)
	}
	return nil
}

// SetPassword stores a new password hash; mustChange forces a change at next login.
func (s *Store) SetPassword(ctx context.Context, userID int64, hash string, mustChange bool) error {
	res, err := s.db.ExecContext(ctx, `UPDATE users SET password_hash = $2, must_change_password = $3 WHERE id = $1`, userID, hash, mustChange)
	if err != nil {
		return fmt.Errorf("set password for user %d: %w", userID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("set password for user %d: %w", userID, casebook.ErrUserNotFound)
	}
	return nil
}
