package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lib/pq"

	"github.com/casebookhq/casebook/casebook"
)

// UpdateIDByExternalID finds an update by its channel key.
func (s *Store) UpdateIDByExternalID(ctx context.Context, source casebook.Source, externalID string) (int64, error) {
	var id int64
	err := s.hot.GetContext(ctx, &id, `SELECT id FROM updates WHERE source = $1 AND external_id = $2`, source, externalID)
	if err != nil {
		return 0, fmt.Errorf("update %s/%s: %w", source, externalID, notFound(err, casebook.ErrNotFound))
	}
	return id, nil
}

// caseForUpdateSQL reads a case and its update's author in one round trip; the
// author's columns are NULL when the author is nobody known.
var caseForUpdateSQL = `SELECT ` + caseColumns + `,
	a.id AS author_id, a.org_id AS author_org_id, a.email AS author_email, a.name AS author_name,
	a.staff AS author_staff, a.disabled_at IS NOT NULL AS author_disabled,
	a.created_at AS author_created_at, a.session_epoch AS author_session_epoch` + caseJoins + `
	LEFT JOIN users a ON a.id = CASE WHEN $2::bigint <> 0 THEN $2::bigint
		ELSE (SELECT user_id FROM identities WHERE kind = $3 AND value = $4) END
	WHERE c.number = $1`

// CaseForUpdate implements casebook.UpdateStore.
func (s *Store) CaseForUpdate(ctx context.Context, number int64, author casebook.Author) (casebook.Case, *casebook.User, error) {
	var row struct {
		casebook.Case
		ID           sql.NullInt64  `db:"author_id"`
		OrgID        *int64         `db:"author_org_id"`
		Email        sql.NullString `db:"author_email"`
		Name         sql.NullString `db:"author_name"`
		Staff        sql.NullBool   `db:"author_staff"`
		Disabled     bool           `db:"author_disabled"`
		CreatedAt    sql.NullTime   `db:"author_created_at"`
		SessionEpoch sql.NullInt64  `db:"author_session_epoch"`
	}
	value := author.Value
	if author.Kind == casebook.IdentityEmail {
		value = strings.ToLower(strings.TrimSpace(value))
	}
	if err := s.hot.GetContext(ctx, &row, caseForUpdateSQL, number, author.UserID, author.Kind, value); err != nil {
		return casebook.Case{}, nil, fmt.Errorf("case %d: %w", number, notFound(err, casebook.ErrCaseNotFound))
	}
	if !row.ID.Valid {
		if author.UserID != 0 {
			return row.Case, nil, fmt.Errorf("user %d: %w", author.UserID, casebook.ErrUserNotFound)
		}
		return row.Case, nil, nil
	}
	return row.Case, &casebook.User{ID: row.ID.Int64, OrgID: row.OrgID, Email: row.Email.String, Name: row.Name.String,
		Staff: row.Staff.Bool, Disabled: row.Disabled, CreatedAt: row.CreatedAt.Time, SessionEpoch: row.SessionEpoch.Int64}, nil
}

// commitUpdateSQL is the whole commit in one statement, so it costs one round trip
// and PostgreSQL's implicit transaction instead of seven. Each CTE after "c" runs only
// when the update row was inserted, so a duplicate or a closed case changes nothing.
// Locking the case row (FOR UPDATE) keeps a concurrent close from slipping in between
// the status check and the insert.
var commitUpdateSQL = `WITH c AS (
	SELECT id, status FROM cases WHERE id = $1 FOR UPDATE
), u AS (
	INSERT INTO updates (case_id, source, external_id, author_user_id, author, body, meta)
	SELECT c.id, $2, $3, $4, $5, $6, $7 FROM c WHERE c.status <> 'closed'
	ON CONFLICT (source, external_id) DO NOTHING
	RETURNING id
), a AS (
	INSERT INTO attachments (case_id, update_id, filename, content_type, size, sha256, blob_key, inline)
	SELECT $1, u.id, f.* FROM u, unnest($8::text[], $9::text[], $10::bigint[], $11::text[], $12::text[], $13::boolean[]) AS f
), s AS (
	UPDATE cases SET updated_at = now(), attachment_count = attachment_count + $14,
		status = CASE WHEN $15 AND cases.status = 'resolved' THEN 'open' ELSE cases.status END
	FROM u WHERE cases.id = $1
), o AS (
	` + insertOutboxSQL("u, ", "u.id", "$16") + `
), k AS (
	INSERT INTO checkpoints (channel, key, value) SELECT $17, $18, $19 FROM u WHERE $17 <> ''
	ON CONFLICT (channel, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
)
SELECT c.status, u.id FROM c LEFT JOIN u ON true`

// CommitUpdate stores an update, its attachments, its mails (the owner's notification
// among them) and the channel checkpoint atomically. A second update with the same
// (source, external id) returns ErrDuplicate and changes nothing.
func (s *Store) CommitUpdate(ctx context.Context, u casebook.NewUpdate) (int64, error) {
	meta, err := json.Marshal(u.Meta)
	if err != nil {
		return 0, fmt.Errorf("commit update: meta: %w", err)
	}
	if u.Meta == nil {
		meta = []byte("{}")
	}
	mails := u.Mails
	if u.Notify != nil {
		mails = append([]casebook.OutboxMail{*u.Notify}, mails...)
	}
	if mails == nil {
		mails = []casebook.OutboxMail{}
	}
	mailJSON, err := json.Marshal(mails)
	if err != nil {
		return 0, fmt.Errorf("commit update: mails: %w", err)
	}
	as := u.Attachments
	names, types, sums, keys := make([]string, len(as)), make([]string, len(as)), make([]string, len(as)), make([]string, len(as))
	sizes, inline := make([]int64, len(as)), make([]bool, len(as))
	for i, a := range as {
		names[i], types[i], sizes[i], sums[i], keys[i], inline[i] = a.Filename, a.ContentType, a.Size, a.SHA256, a.BlobKey, a.Inline
	}
	var cp casebook.Checkpoint
	if u.Checkpoint != nil {
		cp = *u.Checkpoint
	}
	var status casebook.Status
	var id sql.NullInt64
	// Prepared once: PostgreSQL plans the statement once per connection rather than
	// at every update, and each update costs one round trip instead of two.
	st, err := s.hot.stmt(ctx, commitUpdateSQL)
	if err != nil {
		return 0, fmt.Errorf("commit update %s/%s: %w", u.Source, u.ExternalID, err)
	}
	err = st.QueryRowContext(ctx,
		u.CaseID, u.Source, u.ExternalID, u.AuthorUserID, u.Author, u.Body, string(meta),
		pq.Array(names), pq.Array(types), pq.Array(sizes), pq.Array(sums), pq.Array(keys), pq.Array(inline),
		len(as), u.Reopen, string(mailJSON), cp.Channel, cp.Key, cp.Value,
	).Scan(&status, &id)
	switch {
	case err != nil:
		err = notFound(err, casebook.ErrCaseNotFound)
	case id.Valid:
		return id.Int64, nil
	case status == casebook.StatusClosed:
		err = casebook.ErrCaseClosed
	default:
		err = casebook.ErrDuplicate
	}
	return 0, fmt.Errorf("commit update %s/%s: %w", u.Source, u.ExternalID, err)
}
