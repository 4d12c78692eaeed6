package postgres

import (
	"context"
	"fmt"

	"github.com/lib/pq"
)

// CaseNumbersByMessageIDs returns the distinct cases whose outgoing mail carried one
// of ids (Message-IDs with their angle brackets, as the outbox keeps them), in the
// order the ids are given. Blank ids never match.
func (s *Store) CaseNumbersByMessageIDs(ctx context.Context, ids []string) ([]int64, error) {
	var rows []struct {
		Number int64 `db:"number"`
		Pos    int64 `db:"pos"`
	}
	err := s.db.SelectContext(ctx, &rows, `SELECT c.number, min(i.pos) AS pos
		FROM unnest($1::text[]) WITH ORDINALITY AS i(id, pos)
		JOIN outbox o ON o.message_id = i.id
		JOIN cases c ON c.id = o.case_id
		WHERE i.id NOT IN ('', '<>')
		GROUP BY c.number ORDER BY pos`, pq.Array(ids))
	if err != nil {
		return nil, fmt.Errorf("cases by message id: %w", err)
	}
	out := make([]int64, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.Number)
	}
	return out, nil
}
