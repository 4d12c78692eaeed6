package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"casebook/casebook"
)

// UpdateIDByExternalID finds an update by its channel key.
func (s *Store) UpdateIDByExternalID(ctx context.Context, source casebook.Source, externalID string) (int64, error) {
	var id int64
	err := s.db.GetContext(ctx, &id, `SELECT id FROM updates WHERE source = $1 AND external_id = $2`, source, externalID)
	if err != nil {
		return 0, fmt.Errorf("update %s/%s: %w", source, externalID, notFound(err, casebook.ErrNotFound))
	}
	return id, nil
}

// CommitUpdate stores an update, its attachments, the owner's notification and the
// channel checkpoint in one transaction. A second update with the same (source,
// external id) returns ErrDuplicate and changes nothing.
func (s *Store) CommitUpdate(ctx context.Context, u casebook.NewUpdate) (int64, error) {
	meta, err := json.Marshal(u.Meta)
	if err != nil {
		return 0, fmt.Errorf("commit update: meta: %w", err)
	}
	if u.Meta == nil {
		meta = []byte("{}")
	}
	var id int64
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		// Lock the case row: a concurrent close must not slip in between the check and the insert.
		var status casebook.Status
		if err := tx.GetContext(ctx, &status, `SELECT status FROM cases WHERE id = $1 FOR UPDATE`, u.CaseID); err != nil {
			return notFound(err, casebook.ErrCaseNotFound)
		}
		if status == casebook.StatusClosed {
			return casebook.ErrCaseClosed
		}
		rows, err := tx.QueryContext(ctx, `INSERT INTO updates (case_id, source, external_id, author_user_id, author, body, meta)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (source, external_id) DO NOTHING RETURNING id`,
			u.CaseID, u.Source, u.ExternalID, u.AuthorUserID, u.Author, u.Body, meta)
		if err != nil {
			return err
		}
		if !rows.Next() {
			rows.Close()
			return casebook.ErrDuplicate
		}
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		rows.Close()
		if len(u.Attachments) > 0 {
			if err := insertAttachments(ctx, tx, u.CaseID, id, u.Attachments); err != nil {
				return err
			}
		}
		newStatus := status
		if u.Reopen && status == casebook.StatusResolved {
			newStatus = casebook.StatusOpen
		}
		if _, err := tx.ExecContext(ctx, `UPDATE cases SET updated_at = now(), status = $2, attachment_count = attachment_count + $3 WHERE id = $1`,
			u.CaseID, newStatus, len(u.Attachments)); err != nil {
			return err
		}
		if u.Notify != nil {
			n := *u.Notify
			n.UpdateID = &id
			if err := enqueue(ctx, tx, n); err != nil {
				return err
			}
		}
		for _, m := range u.Mails {
			m.UpdateID = &id
			if err := enqueue(ctx, tx, m); err != nil {
				return err
			}
		}
		if u.Checkpoint != nil {
			if err := saveCheckpoint(ctx, tx, *u.Checkpoint); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("commit update %s/%s: %w", u.Source, u.ExternalID, err)
	}
	return id, nil
}

// insertAttachments writes all rows in one statement: one round trip per update,
// whatever the number of files.
func insertAttachments(ctx context.Context, tx *sqlx.Tx, caseID, updateID int64, as []casebook.Attachment) error {
	names := make([]string, len(as))
	types := make([]string, len(as))
	sizes := make([]int64, len(as))
	sums := make([]string, len(as))
	keys := make([]string, len(as))
	inline := make([]bool, len(as))
	for i, a := range as {
		names[i], types[i], sizes[i], sums[i], keys[i], inline[i] = a.Filename, a.ContentType, a.Size, a.SHA256, a.BlobKey, a.Inline
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO attachments (case_id, update_id, filename, content_type, size, sha256, blob_key, inline)
		SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::boolean[])`,
		caseID, updateID, pq.Array(names), pq.Array(types), pq.Array(sizes), pq.Array(sums), pq.Array(keys), pq.Array(inline))
	return err
}
