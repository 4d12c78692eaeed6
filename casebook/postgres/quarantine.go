package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/casebookhq/casebook/casebook"
)

const quarantineColumns = `q.id, q.kind, q.source, q.external_id, q.reason_code, q.reason, q.message_id, q.sender, q.subject,
	q.case_number, q.raw_blob, q.body, q.meta, q.status, q.update_id, q.created_at, q.resolved_at,
	COALESCE(NULLIF(b.name, '') || ' <' || b.email || '>', b.email, '') AS resolved_by`

const quarantineFrom = ` FROM quarantine q LEFT JOIN users b ON b.id = q.resolved_by`

// AddQuarantine records u, an update that was refused or ignored, with its reason
// code and sentence, and advances u.Checkpoint in the same transaction, so that the channel moves past
// the message exactly when the record of it exists. u.Meta's "message_id", "subject"
// and "raw_blob" fill their columns. Recording the same (source, external id) twice
// keeps the first row and returns its id.
func (s *Store) AddQuarantine(ctx context.Context, kind, code, reason string, u casebook.Update) (int64, error) {
	meta, err := json.Marshal(u.Meta)
	if err != nil || u.Meta == nil {
		meta = []byte("{}")
	}
	var caseNumber *int64
	if u.CaseNumber > 0 {
		caseNumber = &u.CaseNumber
	}
	var id int64
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &id, `INSERT INTO quarantine (kind, source, external_id, reason_code, reason, message_id, sender, subject,
			case_number, raw_blob, body, meta)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (source, external_id) DO UPDATE SET source = EXCLUDED.source
			RETURNING id`,
			kind, u.Source, u.ExternalID, code, reason, u.Meta["message_id"], u.Author.Value, u.Meta["subject"],
			caseNumber, u.Meta["raw_blob"], u.Body, string(meta))
		if err != nil {
			return err
		}
		if u.Checkpoint != nil {
			return saveCheckpoint(ctx, tx, *u.Checkpoint)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("add quarantine %s/%s: %w", u.Source, u.ExternalID, err)
	}
	return id, nil
}

// Quarantine lists quarantine rows, oldest first.
func (s *Store) Quarantine(ctx context.Context, f casebook.QuarantineFilter) ([]casebook.QuarantineItem, error) {
	if f.Limit <= 0 || f.Limit > 10000 {
		f.Limit = 1000
	}
	q := `SELECT ` + quarantineColumns + quarantineFrom + ` WHERE q.id > $2`
	if !f.All {
		q += ` AND q.kind = 'quarantined' AND q.status = 'pending'`
	}
	q += ` ORDER BY q.id LIMIT $1`
	var items []casebook.QuarantineItem
	if err := s.hot.SelectContext(ctx, &items, q, f.Limit, f.After); err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	for i := range items {
		decodeMeta(&items[i])
	}
	return items, nil
}

// PendingQuarantine counts the quarantined mail waiting for a person: the staff
// header and the casebook_quarantine_pending gauge.
func (s *Store) PendingQuarantine(ctx context.Context) (int64, error) {
	var n int64
	if err := s.hot.GetContext(ctx, &n, `SELECT count(*) FROM quarantine WHERE kind = 'quarantined' AND status = 'pending'`); err != nil {
		return 0, fmt.Errorf("count quarantine: %w", err)
	}
	return n, nil
}

// QuarantineByID finds one quarantine row.
func (s *Store) QuarantineByID(ctx context.Context, id int64) (casebook.QuarantineItem, error) {
	var it casebook.QuarantineItem
	err := s.db.GetContext(ctx, &it, `SELECT `+quarantineColumns+quarantineFrom+` WHERE q.id = $1`, id)
	if err != nil {
		return it, fmt.Errorf("quarantine %d: %w", id, notFound(err, casebook.ErrNotFound))
	}
	decodeMeta(&it)
	return it, nil
}

// ResolveQuarantine marks a pending row released (with the update it became) or
// dropped, with who decided, and writes r.Audit in the same transaction. A row that
// is no longer pending is casebook.ErrAlreadyResolved and changes nothing: of two
// colleagues' clicks one wins.
func (s *Store) ResolveQuarantine(ctx context.Context, r casebook.QuarantineResolution) error {
	if r.Status != casebook.QuarantineReleased && r.Status != casebook.QuarantineDropped {
		return fmt.Errorf("resolve quarantine %d: %w: status %q", r.ID, casebook.ErrInvalidInput, r.Status)
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE quarantine SET status = $2, update_id = COALESCE($3, update_id),
			resolved_by = $4, resolved_at = now() WHERE id = $1 AND status = 'pending'`, r.ID, r.Status, r.UpdateID, r.By)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var exists bool
			if err := tx.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM quarantine WHERE id = $1)`, r.ID); err != nil {
				return err
			}
			if !exists {
				return casebook.ErrNotFound
			}
			return casebook.ErrAlreadyResolved
		}
		return s.appendAudit(ctx, tx, []casebook.AuditEntry{r.Audit})
	})
	if err != nil {
		return fmt.Errorf("resolve quarantine %d: %w", r.ID, err)
	}
	return nil
}

func decodeMeta(it *casebook.QuarantineItem) {
	it.Meta = map[string]string{}
	json.Unmarshal(it.MetaJSON, &it.Meta)
}
