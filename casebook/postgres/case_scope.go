package postgres

import (
	"context"
	"fmt"

	"github.com/casebookhq/casebook/casebook"
)

// scopeCondition limits cases c to a viewer's: an org's cases (orgID) or the cases a
// staff member owns (ownerID). With both zero it matches nothing: access fails closed.
const scopeCondition = `((%[1]s <> 0 AND c.org_id = %[1]s) OR (%[2]s <> 0 AND c.owner_id = %[2]s))`

// CaseInScope finds a case by number among those of the org orgID or owned by ownerID.
// A case outside the scope is casebook.ErrCaseNotFound, like one that does not exist.
func (s *Store) CaseInScope(ctx context.Context, number, orgID, ownerID int64) (casebook.Case, error) {
	var c casebook.Case
	err := s.hot.GetContext(ctx, &c, `SELECT `+caseColumns+caseJoins+` WHERE c.number = $1 AND `+
		fmt.Sprintf(scopeCondition, "$2::bigint", "$3::bigint"), number, orgID, ownerID)
	if err != nil {
		return c, fmt.Errorf("case %d: %w", number, notFound(err, casebook.ErrCaseNotFound))
	}
	return c, nil
}

// AttachmentInScope finds an attachment on a case of the org orgID or owned by ownerID,
// with its case's number. Outside the scope it is casebook.ErrNotFound.
func (s *Store) AttachmentInScope(ctx context.Context, id, orgID, ownerID int64) (casebook.Attachment, int64, error) {
	var row struct {
		casebook.Attachment
		Number int64 `db:"number"`
	}
	err := s.hot.GetContext(ctx, &row, `SELECT `+attachmentColumns+`, c.number FROM attachments a
		JOIN updates u ON u.id = a.update_id JOIN cases c ON c.id = a.case_id
		WHERE a.id = $1 AND `+fmt.Sprintf(scopeCondition, "$2::bigint", "$3::bigint"), id, orgID, ownerID)
	if err != nil {
		return casebook.Attachment{}, 0, fmt.Errorf("attachment %d: %w", id, notFound(err, casebook.ErrNotFound))
	}
	return row.Attachment, row.Number, nil
}
