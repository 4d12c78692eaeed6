package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/casebookhq/casebook/casebook"
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
	mails, err := json.Marshal([]casebook.OutboxMail{m})
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", m.Kind, err)
	}
	if _, err = tx.ExecContext(ctx, insertOutboxSQL("", "m.update_id", "$1"), string(mails)); err != nil {
		return fmt.Errorf("enqueue %s: %w", m.Kind, err)
	}
	return nil
}

// Enqueue queues a mail on its own.
func (s *Store) Enqueue(ctx context.Context, m casebook.OutboxMail) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return s.enqueue(ctx, tx, m) })
}

// insertOutboxSQL is the one INSERT of queued mails, for enqueue and for the commit of
// an update: the rows of mails (an SQL parameter holding a JSON array of
// casebook.OutboxMail), each with update id updateID (an SQL expression), joined to
// from ("" or "TABLE, ").
func insertOutboxSQL(from, updateID, mails string) string {
	return `INSERT INTO outbox (kind, case_id, update_id, user_id, recipient, message_id, data)
	SELECT m.kind, m.case_id, ` + updateID + `, m.user_id, m.recipient, m.message_id, COALESCE(m.data, '{}')
	FROM ` + from + `jsonb_to_recordset(` + mails + `::jsonb)
		AS m(kind text, case_id bigint, update_id bigint, user_id bigint, recipient text, message_id text, data jsonb)`
}
