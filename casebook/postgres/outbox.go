package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jmoiron/sqlx"

	"casebook/casebook"
)

// enqueue queues a mail inside the caller's transaction, so the mail exists exactly
// when the change that caused it does. A temporary password is sealed first when the
// store has a SecretBox.
func (s *Store) enqueue(ctx context.Context, tx *sqlx.Tx, m casebook.OutboxMail) error {
	if m.Data == nil || m.Data.MailKind() != m.Kind {
		return fmt.Errorf("enqueue %s: %w: the mail's data is not of its kind", m.Kind, casebook.ErrInvalidInput)
	}
	if d, ok := m.Data.(casebook.TemporaryPasswordMail); ok {
		m.Data = s.sealPassword(m.MessageID, d)
	}
	data, err := json.Marshal(m.Data)
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", m.Kind, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO outbox (kind, case_id, update_id, user_id, recipient, message_id, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, m.Kind, m.CaseID, m.UpdateID, m.UserID, m.Recipient, m.MessageID, string(data))
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", m.Kind, err)
	}
	return nil
}

// Enqueue queues a mail on its own.
func (s *Store) Enqueue(ctx context.Context, m casebook.OutboxMail) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return s.enqueue(ctx, tx, m) })
}
