package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/casebookhq/casebook/casebook"
)

// AuditBatch appends rows in order in one transaction, each chained to the one before
// it. Appends are serialised by a lock held through the commit, so under load the
// commit's fsync, not the work, bounds the rate: a batch carries many rows through
// one commit.
func (s *Store) AuditBatch(ctx context.Context, es []casebook.AuditEntry) error {
	if len(es) == 0 {
		return nil
	}
	if err := s.inTx(ctx, func(tx *sqlx.Tx) error { return s.appendAudit(ctx, tx, es) }); err != nil {
		return fmt.Errorf("audit %d rows: %w", len(es), err)
	}
	return nil
}

// appendAudit appends rows inside tx, so that a change and the row that records it
// commit together. The chain's lock is then held until tx ends.
func (s *Store) appendAudit(ctx context.Context, tx *sqlx.Tx, es []casebook.AuditEntry) error {
	prev, version, err := s.chainHead(ctx, tx)
	if err != nil {
		return err
	}
	at := time.Now().UTC().Truncate(time.Microsecond)
	var q strings.Builder
	q.WriteString(`INSERT INTO audit_log (at, user_id, org_id, action, object, outcome, ip, user_agent, os_user, chain_version, prev_hash, hash) VALUES `)
	const cols = 12
	args := make([]any, 0, cols*len(es))
	for i := range es {
		e := &es[i]
		e.At, e.PrevHash, e.ChainVersion = at, prev, version
		if e.Hash, err = s.entryHash(*e); err != nil {
			return err
		}
		prev = e.Hash
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteByte('(')
		for j := range cols {
			if j > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "$%d", len(args)+j+1)
		}
		q.WriteByte(')')
		args = append(args, e.At, e.UserID, e.OrgID, e.Action, e.Object, e.Outcome, e.IP, e.UserAgent, e.OSUser, e.ChainVersion, e.PrevHash, e.Hash)
	}
	// Rows get ids in VALUES order, which is the chain's order.
	_, err = tx.ExecContext(ctx, q.String(), args...)
	return err
}
