package postgres

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/casebookhq/casebook/casebook"
)

// ChangeCaseStatus moves a case to status to when it stands in one of from, and
// writes audit in the same transaction. A case in another status is
// casebook.ErrInvalidInput and is left as it is.
func (s *Store) ChangeCaseStatus(ctx context.Context, number int64, from []casebook.Status, to casebook.Status, audit casebook.AuditEntry) (casebook.Case, error) {
	froms := make([]string, len(from))
	for i, st := range from {
		froms[i] = string(st)
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var cur casebook.Status
		if err := tx.GetContext(ctx, &cur, `SELECT status FROM cases WHERE number = $1 FOR UPDATE`, number); err != nil {
			return notFound(err, casebook.ErrCaseNotFound)
		}
		ok := false
		for _, st := range from {
			ok = ok || st == cur
		}
		if !ok {
			return fmt.Errorf("%w: the case is %s", casebook.ErrInvalidInput, cur)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE cases SET status = $2, updated_at = now() WHERE number = $1`, number, to); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, []casebook.AuditEntry{audit})
	})
	if err != nil {
		return casebook.Case{}, fmt.Errorf("set status of case %d: %w", number, err)
	}
	return s.CaseByNumber(ctx, number)
}

// SetCaseOwner hands a case to ownerID, who must be enabled staff, and writes audit
// in the same transaction.
func (s *Store) SetCaseOwner(ctx context.Context, number, ownerID int64, audit casebook.AuditEntry) (casebook.Case, error) {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE cases SET owner_id = $2, updated_at = now() WHERE number = $1
			AND EXISTS (SELECT 1 FROM users WHERE id = $2 AND staff AND disabled_at IS NULL)`, number, ownerID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var exists bool
			if err := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM cases WHERE number = $1)`, number); err != nil {
				return err
			}
			if !exists {
				return casebook.ErrCaseNotFound
			}
			return fmt.Errorf("%w: the new owner must be enabled staff", casebook.ErrInvalidInput)
		}
		return s.appendAudit(ctx, tx, []casebook.AuditEntry{audit})
	})
	if err != nil {
		return casebook.Case{}, fmt.Errorf("set owner of case %d: %w", number, err)
	}
	return s.CaseByNumber(ctx, number)
}

// StaffMembers lists the enabled staff accounts by name, the owners a case may be
// handed to.
func (s *Store) StaffMembers(ctx context.Context) ([]casebook.User, error) {
	var us []casebook.User
	if err := s.hot.SelectContext(ctx, &us, `SELECT `+userColumns+` FROM users u WHERE u.staff AND u.disabled_at IS NULL
		ORDER BY lower(COALESCE(NULLIF(u.name, ''), u.email)), u.id LIMIT 1000`); err != nil {
		return nil, fmt.Errorf("list staff: %w", err)
	}
	return us, nil
}

// AttachmentWithCase finds an attachment on any case with its case's number: staff
// see every case of the support team.
func (s *Store) AttachmentWithCase(ctx context.Context, id int64) (casebook.Attachment, int64, error) {
	var row struct {
		casebook.Attachment
		Number int64 `db:"number"`
	}
	err := s.hot.GetContext(ctx, &row, `SELECT `+attachmentColumns+`, c.number FROM attachments a
		JOIN updates u ON u.id = a.update_id JOIN cases c ON c.id = a.case_id WHERE a.id = $1`, id)
	if err != nil {
		return casebook.Attachment{}, 0, fmt.Errorf("attachment %d: %w", id, notFound(err, casebook.ErrNotFound))
	}
	return row.Attachment, row.Number, nil
}
