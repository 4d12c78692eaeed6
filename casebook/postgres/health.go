package postgres

import (
	"context"
	"fmt"
	"time"
)

// OutboxCounts returns how many outbox mails stand in each status, for the metrics
// that every instance reports from the one shared queue.
func (s *Store) OutboxCounts(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		Status string `db:"status"`
		N      int64  `db:"n"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT status, count(*) AS n FROM outbox GROUP BY status`); err != nil {
		return nil, fmt.Errorf("outbox counts: %w", err)
	}
	counts := make(map[string]int64, len(rows))
	for _, r := range rows {
		counts[r.Status] = r.N
	}
	return counts, nil
}

// Now returns the database server's clock, so that an instance can tell how far its
// own clock is off: timestamps are written by both.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var now time.Time
	if err := s.db.GetContext(ctx, &now, `SELECT now()`); err != nil {
		return time.Time{}, fmt.Errorf("database clock: %w", err)
	}
	return now, nil
}
