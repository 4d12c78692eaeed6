package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// AuditBatch appends rows in order in one transaction, each chained to the one before
// it exactly as Audit chains them. Appends are serialised by a lock held through the
// commit, so under load the commit's fsync, not the work, bounds the rate: a batch
// carries many rows through one commit.
func (s *Store) AuditBatch(ctx context.Context, es []AuditEntry) error {
	if len(es) == 0 {
		return nil
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, auditLockID); err != nil {
			return err
		}
		var prev string
		if err := tx.GetContext(ctx, &prev, `SELECT COALESCE((SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1), '')`); err != nil {
			return err
		}
		at := time.Now().UTC().Truncate(time.Microsecond)
		var q strings.Builder
		q.WriteString(`INSERT INTO audit_log (at, user_id, org_id, action, object, outcome, ip, user_agent, prev_hash, hash) VALUES `)
		args := make([]any, 0, 10*len(es))
		for i := range es {
			e := &es[i]
			e.At, e.PrevHash = at, prev
			e.Hash = auditHash(*e)
			prev = e.Hash
			if i > 0 {
				q.WriteString(", ")
			}
			n := len(args)
			fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9, n+10)
			args = append(args, e.At, e.UserID, e.OrgID, e.Action, e.Object, e.Outcome, e.IP, e.UserAgent, e.PrevHash, e.Hash)
		}
		// Rows get ids in VALUES order, which is the chain's order.
		_, err := tx.ExecContext(ctx, q.String(), args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("audit %d rows: %w", len(es), err)
	}
	return nil
}
