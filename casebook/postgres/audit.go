package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
)

// AuditEntry is one row of the append-only audit log.
type AuditEntry struct {
	ID        int64     `db:"id" json:"id"`
	At        time.Time `db:"at" json:"at"`
	UserID    *int64    `db:"user_id" json:"user_id"`
	OrgID     *int64    `db:"org_id" json:"org_id"`
	Action    string    `db:"action" json:"action"`
	Object    string    `db:"object" json:"object"`
	Outcome   string    `db:"outcome" json:"outcome"`
	IP        string    `db:"ip" json:"ip"`
	UserAgent string    `db:"user_agent" json:"user_agent"`
	PrevHash  string    `db:"prev_hash" json:"prev_hash"`
	Hash      string    `db:"hash" json:"hash"`
}

// auditLockID serialises appends so that each row chains to the one before it.
const auditLockID = 0x6175646974 // "audit"

// Audit appends a row. Callers that serve PHI must not serve it when this fails.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, auditLockID); err != nil {
			return err
		}
		var prev string
		if err := tx.GetContext(ctx, &prev, `SELECT COALESCE((SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1), '')`); err != nil {
			return err
		}
		e.At = time.Now().UTC().Truncate(time.Microsecond)
		e.PrevHash = prev
		e.Hash = auditHash(e)
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (at, user_id, org_id, action, object, outcome, ip, user_agent, prev_hash, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, e.At, e.UserID, e.OrgID, e.Action, e.Object, e.Outcome, e.IP, e.UserAgent, e.PrevHash, e.Hash)
		return err
	})
	if err != nil {
		return fmt.Errorf("audit %s %s: %w", e.Action, e.Object, err)
	}
	return nil
}

func auditHash(e AuditEntry) string {
	h := sha256.New()
	field := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	opt := func(p *int64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatInt(*p, 10)
	}
	field(e.PrevHash)
	field(e.At.UTC().Format(time.RFC3339Nano))
	field(opt(e.UserID))
	field(opt(e.OrgID))
	field(e.Action)
	field(e.Object)
	field(e.Outcome)
	field(e.IP)
	field(e.UserAgent)
	return hex.EncodeToString(h.Sum(nil))
}

// AuditFilter selects audit rows; zero fields do not filter.
type AuditFilter struct {
	UserID int64
	// Object matches the object itself and the objects under it: "CASE-000001" also
	// selects "CASE-000001/attachment/7".
	Object string
	Limit  int
}

// AuditLog lists audit rows oldest first.
func (s *Store) AuditLog(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	var es []AuditEntry
	err := s.db.SelectContext(ctx, &es, `SELECT id, at, user_id, org_id, action, object, outcome, ip, user_agent, prev_hash, hash
		FROM audit_log WHERE ($1 = 0 OR user_id = $1)
		AND ($2 = '' OR object = $2 OR (object >= $2 || '/' AND object < $2 || '0')) ORDER BY id LIMIT $3`, f.UserID, f.Object, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return es, nil
}

// VerifyAuditChain recomputes every row's hash and reports the first row that does
// not match its content or its predecessor.
func (s *Store) VerifyAuditChain(ctx context.Context) error {
	rows, err := s.db.QueryxContext(ctx, `SELECT id, at, user_id, org_id, action, object, outcome, ip, user_agent, prev_hash, hash FROM audit_log ORDER BY id`)
	if err != nil {
		return fmt.Errorf("verify audit chain: %w", err)
	}
	defer rows.Close()
	prev := ""
	for rows.Next() {
		var e AuditEntry
		if err := rows.StructScan(&e); err != nil {
			return fmt.Errorf("verify audit chain: %w", err)
		}
		if e.PrevHash != prev || auditHash(e) != e.Hash {
			return fmt.Errorf("audit row %d was altered or a row before it was removed", e.ID)
		}
		prev = e.Hash
	}
	return rows.Err()
}
