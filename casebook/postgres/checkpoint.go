package postgres

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/casebookhq/casebook/casebook"
)

func saveCheckpoint(ctx context.Context, tx *sqlx.Tx, c casebook.Checkpoint) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (channel, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (channel, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`, c.Channel, c.Key, c.Value)
	if err != nil {
		return fmt.Errorf("save checkpoint %s/%s: %w", c.Channel, c.Key, err)
	}
	return nil
}

// SaveCheckpoint records a channel position on its own (input that produced no update).
func (s *Store) SaveCheckpoint(ctx context.Context, c casebook.Checkpoint) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return saveCheckpoint(ctx, tx, c) })
}

// Checkpoint returns a channel position, or ErrNotFound.
func (s *Store) Checkpoint(ctx context.Context, channel, key string) (string, error) {
	var v string
	err := s.db.GetContext(ctx, &v, `SELECT value FROM checkpoints WHERE channel = $1 AND key = $2`, channel, key)
	if err != nil {
		return "", fmt.Errorf("checkpoint %s/%s: %w", channel, key, notFound(err, casebook.ErrNotFound))
	}
	return v, nil
}
