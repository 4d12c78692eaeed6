package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/casebookhq/casebook/casebook"
)

// replyTokenKey names the reply-token key in app_keys. The keys it replaced are kept
// as replyTokenKey + "/" + the time of their retirement, so that a customer answering
// mail signed before a rotation still reaches the case.
const replyTokenKey = "reply-token"

// ReplyTokenKeys returns the key that signs reply tokens and the keys it replaced,
// newest first. With create, a missing key is generated (the first start of a site
// that names no --token-key); without, a missing key is casebook.ErrNotFound.
func (s *Store) ReplyTokenKeys(ctx context.Context, create bool) (current []byte, older [][]byte, err error) {
	if create {
		current, err = s.AppKey(ctx, replyTokenKey, 32)
	} else if err = s.db.GetContext(ctx, &current, `SELECT key FROM app_keys WHERE name = $1`, replyTokenKey); errors.Is(err, sql.ErrNoRows) {
		err = casebook.ErrNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reply token keys: %w", err)
	}
	if err := s.db.SelectContext(ctx, &older, `SELECT key FROM app_keys WHERE name LIKE $1 ORDER BY created_at DESC`, replyTokenKey+"/%"); err != nil {
		return nil, nil, fmt.Errorf("reply token keys: %w", err)
	}
	return current, older, nil
}

// RotateReplyTokenKey puts a new key in place of the reply-token key and keeps the
// old one for verifying replies. It returns how many keys now verify only.
func (s *Store) RotateReplyTokenKey(ctx context.Context) (retired int, err error) {
	key := make([]byte, 32)
	rand.Read(key)
	err = s.inTx(ctx, func(tx *sqlx.Tx) error {
		// The row lock serialises rotations: each retires the key the one before
		// it put in place.
		if _, err := tx.ExecContext(ctx, `INSERT INTO app_keys (name, key, created_at)
			SELECT $2, key, now() FROM app_keys WHERE name = $1 FOR UPDATE`,
			replyTokenKey, fmt.Sprintf("%s/%d", replyTokenKey, time.Now().UnixNano())); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO app_keys (name, key) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET key = EXCLUDED.key, created_at = now()`, replyTokenKey, key); err != nil {
			return err
		}
		return tx.GetContext(ctx, &retired, `SELECT count(*) FROM app_keys WHERE name LIKE $1`, replyTokenKey+"/%")
	})
	if err != nil {
		return 0, fmt.Errorf("rotate reply token key: %w", err)
	}
	return retired, nil
}
