package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"casebook/casebook"
)

// The kinds of quarantine row.
const (
	// QuarantineKindQuarantined waits for a person to release or drop it.
	QuarantineKindQuarantined = "quarantined"
	// QuarantineKindIgnored is an auto-reply or a bounce, kept for the record.
	QuarantineKindIgnored = "ignored"
)

// QuarantineItem is a message that was not added to a case.
type QuarantineItem struct {
	ID         int64             `db:"id" json:"id"`
	Kind       string            `db:"kind" json:"kind"`
	Source     casebook.Source   `db:"source" json:"source"`
	ExternalID string            `db:"external_id" json:"external_id"`
	ReasonCode string            `db:"reason_code" json:"reason_code"`
	Reason     string            `db:"reason" json:"reason"`
	MessageID  string            `db:"message_id" json:"message_id"`
	Sender     string            `db:"sender" json:"from"`
	Subject    string            `db:"subject" json:"subject"`
	CaseNumber *int64            `db:"case_number" json:"case_number"`
	RawBlob    string            `db:"raw_blob" json:"raw_blob"`
	Body       string            `db:"body" json:"body"`
	MetaJSON   []byte            `db:"meta" json:"-"`
	Meta       map[string]string `db:"-" json:"meta"`
	Status     string            `db:"status" json:"status"`
	UpdateID   *int64            `db:"update_id" json:"update_id"`
	CreatedAt  time.Time         `db:"created_at" json:"created_at"`
	ResolvedAt *time.Time        `db:"resolved_at" json:"resolved_at"`
}

const quarantineColumns = `id, kind, source, external_id, reason_code, reason, message_id, sender, subject, case_number,
	raw_blob, body, meta, status, update_id, created_at, resolved_at`

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

// QuarantineFilter selects quarantine rows. The zero value lists pending quarantined
// mail, the queue people work.
type QuarantineFilter struct {
	// All includes released, dropped and ignored rows.
	All   bool
	Limit int
}

// Quarantine lists quarantine rows, oldest first.
func (s *Store) Quarantine(ctx context.Context, f QuarantineFilter) ([]QuarantineItem, error) {
	if f.Limit <= 0 || f.Limit > 10000 {
		f.Limit = 1000
	}
	q := `SELECT ` + quarantineColumns + ` FROM quarantine`
	if !f.All {
		q += ` WHERE kind = 'quarantined' AND status = 'pending'`
	}
	q += ` ORDER BY id LIMIT $1`
	var items []QuarantineItem
	if err := s.db.SelectContext(ctx, &items, q, f.Limit); err != nil {
		return nil, fmt.Errorf("list quarantine: %w", err)
	}
	for i := range items {
		items[i].decodeMeta()
	}
	return items, nil
}

// QuarantineByID finds one quarantine row.
func (s *Store) QuarantineByID(ctx context.Context, id int64) (QuarantineItem, error) {
	var it QuarantineItem
	err := s.db.GetContext(ctx, &it, `SELECT `+quarantineColumns+` FROM quarantine WHERE id = $1`, id)
	if err != nil {
		return it, fmt.Errorf("quarantine %d: %w", id, notFound(err, casebook.ErrNotFound))
	}
	it.decodeMeta()
	return it, nil
}

// ResolveQuarantine marks a pending row released (with the update it became) or
// dropped. Resolving a row again the same way is a no-op; resolving it the other way
// is ErrInvalidInput.
func (s *Store) ResolveQuarantine(ctx context.Context, id int64, status string, updateID *int64) error {
	if status != "released" && status != "dropped" {
		return fmt.Errorf("resolve quarantine %d: %w: status %q", id, casebook.ErrInvalidInput, status)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE quarantine SET status = $2, update_id = COALESCE($3, update_id),
		resolved_at = COALESCE(resolved_at, now()) WHERE id = $1 AND status IN ('pending', $2)`, id, status, updateID)
	if err != nil {
		return fmt.Errorf("resolve quarantine %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.QuarantineByID(ctx, id); err != nil {
			return fmt.Errorf("resolve quarantine: %w", err)
		}
		return fmt.Errorf("resolve quarantine %d: %w: it was already resolved otherwise", id, casebook.ErrInvalidInput)
	}
	return nil
}

func (it *QuarantineItem) decodeMeta() {
	it.Meta = map[string]string{}
	json.Unmarshal(it.MetaJSON, &it.Meta)
}
