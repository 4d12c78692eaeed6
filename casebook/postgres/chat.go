package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

// ThreadCase returns the number of the case a chat thread is tied to, or ErrNotFound.
func (s *Store) ThreadCase(ctx context.Context, platform casebook.Source, workspace, channel, thread string) (int64, error) {
	var n int64
	err := s.db.GetContext(ctx, &n, `SELECT case_number FROM chat_threads
		WHERE platform = $1 AND workspace = $2 AND channel = $3 AND thread = $4`, platform, workspace, channel, thread)
	if err != nil {
		return 0, fmt.Errorf("%s thread %s/%s: %w", platform, channel, thread, notFound(err, casebook.ErrNotFound))
	}
	return n, nil
}

// TieThread ties a chat thread to a case. The first tie wins: a thread keeps the case
// the bot first confirmed in it, whatever later messages name explicitly.
func (s *Store) TieThread(ctx context.Context, platform casebook.Source, workspace, channel, thread string, caseNumber int64) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO chat_threads (platform, workspace, channel, thread, case_number)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, platform, workspace, channel, thread, caseNumber)
	if err != nil {
		return fmt.Errorf("tie %s thread %s/%s: %w", platform, channel, thread, err)
	}
	return nil
}

// ClaimChatEvent records a delivered event id. It reports false when the event was
// claimed before, by this or another instance.
func (s *Store) ClaimChatEvent(ctx context.Context, platform casebook.Source, eventID string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO chat_events (platform, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, platform, eventID)
	if err != nil {
		return false, fmt.Errorf("claim %s event %s: %w", platform, eventID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim %s event %s: %w", platform, eventID, err)
	}
	return n == 1, nil
}

// HoldChatFile keeps a file whose case is not yet named until held_until. data is the
// bot's own description of the file; holding the same file again replaces it.
func (s *Store) HoldChatFile(ctx context.Context, platform casebook.Source, workspace, channel, thread, authorID, fileID string, data json.RawMessage, until time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO chat_pending_files (platform, workspace, channel, thread, author_id, file_id, data, held_until)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (platform, file_id) DO UPDATE SET workspace = EXCLUDED.workspace, channel = EXCLUDED.channel,
			thread = EXCLUDED.thread, author_id = EXCLUDED.author_id, data = EXCLUDED.data, held_until = EXCLUDED.held_until`,
		platform, workspace, channel, thread, authorID, fileID, string(data), until)
	if err != nil {
		return fmt.Errorf("hold %s file %s: %w", platform, fileID, err)
	}
	return nil
}

// TakeChatFiles removes and returns the files still held in a channel: those of thread
// when thread is set, else those of authorID. Taking deletes, so two answers racing
// for the same files do not both get them.
func (s *Store) TakeChatFiles(ctx context.Context, platform casebook.Source, workspace, channel, thread, authorID string, now time.Time) ([]json.RawMessage, error) {
	q := `WITH taken AS (DELETE FROM chat_pending_files WHERE platform = $1 AND workspace = $2 AND channel = $3 AND held_until > $4 AND `
	key := thread
	if thread != "" {
		q += `thread = $5`
	} else {
		q += `author_id = $5`
		key = authorID
	}
	var rows [][]byte
	// In the order they were held, so the reply lists them as they were uploaded.
	q += ` RETURNING data, created_at, file_id) SELECT data FROM taken ORDER BY created_at, file_id`
	if err := s.db.SelectContext(ctx, &rows, q, platform, workspace, channel, now, key); err != nil {
		return nil, fmt.Errorf("take %s files held in %s: %w", platform, channel, err)
	}
	out := make([]json.RawMessage, len(rows))
	for i, r := range rows {
		out[i] = r
	}
	return out, nil
}

// PurgeChat deletes files held past their time and event ids recorded before
// eventsBefore.
func (s *Store) PurgeChat(ctx context.Context, now, eventsBefore time.Time) (files, events int64, err error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM chat_pending_files WHERE held_until <= $1`, now)
	if err != nil {
		return 0, 0, fmt.Errorf("purge held chat files: %w", err)
	}
	files, _ = res.RowsAffected()
	res, err = s.db.ExecContext(ctx, `DELETE FROM chat_events WHERE created_at < $1`, eventsBefore)
	if err != nil {
		return files, 0, fmt.Errorf("purge chat events: %w", err)
	}
	events, _ = res.RowsAffected()
	return files, events, nil
}

// KeepHeldChatFile records, in a held file's description, the blob that keeps its
// bytes, so that whichever instance is answered can read them, and the blob sweep
// keeps them while the hold lasts.
func (s *Store) KeepHeldChatFile(ctx context.Context, platform casebook.Source, fileID, blobKey string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE chat_pending_files SET data = jsonb_set(data, '{held}', to_jsonb($3::text))
		WHERE platform = $1 AND file_id = $2`, platform, fileID, blobKey)
	if err != nil {
		return fmt.Errorf("keep %s file %s: %w", platform, fileID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("keep %s file %s: %w", platform, fileID, casebook.ErrNotFound)
	}
	return nil
}
