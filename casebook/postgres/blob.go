package postgres

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/casebookhq/casebook/casebook"
)

var (
	_ casebook.BlobRefStore  = (*Store)(nil)
	_ casebook.BlobRefLister = (*Store)(nil)
)

// BlobsNamed returns the subset of keys that a row names: an attachment, a
// quarantined message's raw copy, an update's raw message, or a chat file waiting for
// its case.
func (s *Store) BlobsNamed(ctx context.Context, keys []string) (map[string]bool, error) {
	var named []string
	err := s.db.SelectContext(ctx, &named, `
		SELECT blob_key FROM attachments WHERE blob_key = ANY($1)
		UNION SELECT raw_blob FROM quarantine WHERE raw_blob = ANY($1) AND raw_blob <> ''
		UNION SELECT meta->>'raw_blob' FROM updates WHERE meta ? 'raw_blob' AND meta->>'raw_blob' = ANY($1)
		UNION SELECT data->>'held' FROM chat_pending_files WHERE data ? 'held' AND data->>'held' = ANY($1)`,
		pq.Array(keys))
	if err != nil {
		return nil, fmt.Errorf("blobs named: %w", err)
	}
	out := make(map[string]bool, len(named))
	for _, k := range named {
		out[k] = true
	}
	return out, nil
}

// BlobRefs calls fn for every blob a row names, once each, in key order. An
// attachment's digest and size come with it; a blob named only as a raw message has
// none.
func (s *Store) BlobRefs(ctx context.Context, fn func(casebook.BlobRef) error) error {
	rows, err := s.db.QueryxContext(ctx, `
		SELECT DISTINCT ON (key) key, sha256, size FROM (
			SELECT blob_key AS key, sha256, size FROM attachments
			UNION ALL SELECT raw_blob, '', -1 FROM quarantine WHERE raw_blob <> ''
			UNION ALL SELECT meta->>'raw_blob', '', -1 FROM updates WHERE meta ? 'raw_blob'
			UNION ALL SELECT data->>'held', '', -1 FROM chat_pending_files WHERE data ? 'held'
		) r ORDER BY key, sha256 DESC`)
	if err != nil {
		return fmt.Errorf("blob refs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r casebook.BlobRef
		if err := rows.Scan(&r.Key, &r.SHA256, &r.Size); err != nil {
			return fmt.Errorf("blob refs: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("blob refs: %w", err)
	}
	return nil
}

// RenameBlobRefs makes every row that names the blob from name to instead, in one
// transaction, and returns how many rows changed (`casebook blobs encrypt`).
func (s *Store) RenameBlobRefs(ctx context.Context, from, to string) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		for _, q := range []string{
			`UPDATE attachments SET blob_key = $2 WHERE blob_key = $1`,
			`UPDATE quarantine SET raw_blob = $2, meta = jsonb_set(meta, '{raw_blob}', to_jsonb($2::text))
				WHERE raw_blob = $1 AND raw_blob <> ''`,
			`UPDATE updates SET meta = jsonb_set(meta, '{raw_blob}', to_jsonb($2::text))
				WHERE meta ? 'raw_blob' AND meta->>'raw_blob' = $1`,
			`UPDATE chat_pending_files SET data = jsonb_set(data, '{held}', to_jsonb($2::text))
				WHERE data ? 'held' AND data->>'held' = $1`,
		} {
			res, err := tx.ExecContext(ctx, q, from, to)
			if err != nil {
				return err
			}
			c, _ := res.RowsAffected()
			n += c
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("rename blob %s: %w", from, err)
	}
	return n, nil
}
