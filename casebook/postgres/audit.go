package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/casebookhq/casebook/casebook"
)

// Audit chain outcomes.
var (
	// ErrAuditKeyRequired refuses to write or check keyed rows without the key.
	ErrAuditKeyRequired = errors.New("the audit log is keyed: give --audit-key-file")
	// ErrAuditTampered reports a chain that does not verify.
	ErrAuditTampered = errors.New("audit log was altered")
)

// MinAuditKeySize is the shortest audit key accepted: HMAC-SHA256 wants 32 bytes.
const MinAuditKeySize = 32

// SetAuditKey makes the store chain new audit rows with HMAC-SHA256 under key, and
// lets VerifyAuditChain check keyed rows. The key must not live in the database: a
// person who can rewrite the table cannot then recompute the chain.
func (s *Store) SetAuditKey(key []byte) error {
	if len(key) < MinAuditKeySize {
		return fmt.Errorf("audit key has %d bytes, need at least %d", len(key), MinAuditKeySize)
	}
	s.auditKey = append([]byte(nil), key...)
	return nil
}

const (
	chainUnkeyed = 1
	chainKeyed   = 2
)

// auditLockID serialises appends so that each row chains to the one before it.
const auditLockID = 0x6175646974 // "audit"

// Audit appends a row. Callers that serve PHI must not serve it when this fails.
func (s *Store) Audit(ctx context.Context, e casebook.AuditEntry) error {
	if err := s.AuditBatch(ctx, []casebook.AuditEntry{e}); err != nil {
		return fmt.Errorf("audit %s %s: %w", e.Action, e.Object, err)
	}
	return nil
}

// chainHead returns the newest row's hash and chain version under the append lock,
// and the version new rows get: keyed with a key; without one unkeyed, which is
// refused once a keyed row exists (the chain never goes back to the weaker rule).
func (s *Store) chainHead(ctx context.Context, tx *sqlx.Tx) (prev string, version int, err error) {
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, auditLockID); err != nil {
		return "", 0, err
	}
	var head struct {
		Hash    string `db:"hash"`
		Version int    `db:"chain_version"`
	}
	err = tx.GetContext(ctx, &head, `SELECT hash, chain_version FROM audit_log ORDER BY id DESC LIMIT 1`)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", 0, err
	}
	if s.auditKey != nil {
		return head.Hash, chainKeyed, nil
	}
	if head.Version == chainKeyed {
		return "", 0, ErrAuditKeyRequired
	}
	return head.Hash, chainUnkeyed, nil
}

// entryHash is the row's hash by its chain version's rule.
func (s *Store) entryHash(e casebook.AuditEntry) (string, error) {
	switch e.ChainVersion {
	case chainUnkeyed:
		return auditDigest(sha256.New(), e, false), nil
	case chainKeyed:
		if s.auditKey == nil {
			return "", ErrAuditKeyRequired
		}
		return auditDigest(hmac.New(sha256.New, s.auditKey), e, true), nil
	}
	return "", fmt.Errorf("unknown audit chain version %d", e.ChainVersion)
}

// auditDigest feeds the row's fields, each length-prefixed so that no two rows encode
// alike, to h. Keyed rows also cover the version and the OS user.
func auditDigest(h hash.Hash, e casebook.AuditEntry, keyed bool) string {
	field := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	opt := func(p *int64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatInt(*p, 10)
	}
	if keyed {
		field("casebook audit v2")
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
	if keyed {
		field(e.OSUser)
	}
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

const auditColumns = `id, at, user_id, org_id, action, object, outcome, ip, user_agent, os_user, chain_version, prev_hash, hash`

// AuditLog lists audit rows oldest first.
func (s *Store) AuditLog(ctx context.Context, f AuditFilter) ([]casebook.AuditEntry, error) {
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	var es []casebook.AuditEntry
	err := s.db.SelectContext(ctx, &es, `SELECT `+auditColumns+`
		FROM audit_log WHERE ($1 = 0 OR user_id = $1)
		AND ($2 = '' OR object = $2 OR (object >= $2 || '/' AND object < $2 || '0')) ORDER BY id LIMIT $3`, f.UserID, f.Object, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return es, nil
}

// AuditAnchor is the newest audit row's id and hash. Kept outside the database (a
// log, a ticket, another system), it lets a later check see rows deleted from the end
// and a chain rewritten from the start.
type AuditAnchor struct {
	ID   int64  `json:"id"`
	Hash string `json:"hash"`
}

// String is the anchor as `casebook audit --verify --anchor` takes it.
func (a AuditAnchor) String() string { return strconv.FormatInt(a.ID, 10) + ":" + a.Hash }

// ParseAuditAnchor reads ID:HASH.
func ParseAuditAnchor(s string) (AuditAnchor, error) {
	id, h, ok := strings.Cut(strings.TrimSpace(s), ":")
	n, err := strconv.ParseInt(id, 10, 64)
	if !ok || err != nil || n <= 0 || len(h) != 64 {
		return AuditAnchor{}, fmt.Errorf("anchor %q is not ID:HASH (a row id and 64 hex digits)", s)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return AuditAnchor{}, fmt.Errorf("anchor %q is not ID:HASH (a row id and 64 hex digits)", s)
	}
	return AuditAnchor{ID: n, Hash: strings.ToLower(h)}, nil
}

// LatestAuditAnchor returns the newest row's anchor; an empty log gives id 0.
func (s *Store) LatestAuditAnchor(ctx context.Context) (AuditAnchor, error) {
	var a AuditAnchor
	err := s.db.QueryRowContext(ctx, `SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&a.ID, &a.Hash)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("audit anchor: %w", err)
	}
	return a, nil
}

// VerifyAuditChain recomputes every row's hash and reports the first row that does
// not match its content or its predecessor. Unkeyed rows verify by the old rule only
// before the first keyed row; with the key, the log must hold a keyed row. With anchors, each anchored row must still be there with
// the same hash: that catches rows deleted from the end, and a chain recomputed from
// the start, neither of which a chain alone can show.
func (s *Store) VerifyAuditChain(ctx context.Context, anchors ...AuditAnchor) error {
	rows, err := s.db.QueryxContext(ctx, `SELECT `+auditColumns+` FROM audit_log ORDER BY id`)
	if err != nil {
		return fmt.Errorf("verify audit chain: %w", err)
	}
	defer rows.Close()
	want := map[int64]string{}
	for _, a := range anchors {
		want[a.ID] = a.Hash
	}
	prev, keyed, last := "", false, int64(0)
	for rows.Next() {
		var e casebook.AuditEntry
		if err := rows.StructScan(&e); err != nil {
			return fmt.Errorf("verify audit chain: %w", err)
		}
		if e.ChainVersion == chainUnkeyed && keyed {
			return fmt.Errorf("%w: row %d is unkeyed after keyed rows", ErrAuditTampered, e.ID)
		}
		keyed = keyed || e.ChainVersion == chainKeyed
		h, err := s.entryHash(e)
		if errors.Is(err, ErrAuditKeyRequired) {
			return fmt.Errorf("verify audit chain from row %d: %w", e.ID, err)
		}
		if err != nil || e.PrevHash != prev || !hmac.Equal([]byte(h), []byte(e.Hash)) {
			return fmt.Errorf("%w: row %d was altered or a row before it was removed", ErrAuditTampered, e.ID)
		}
		if a, ok := want[e.ID]; ok {
			if a != e.Hash {
				return fmt.Errorf("%w: row %d differs from its anchor: the chain was rewritten", ErrAuditTampered, e.ID)
			}
			delete(want, e.ID)
		}
		prev, last = e.Hash, e.ID
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("verify audit chain: %w", err)
	}
	// Whoever holds the key writes keyed rows, so a keyed log ends in one. A log that
	// ends unkeyed was rewritten by the old rule, the one rule computable without the
	// key (the CLI audits its own check first, so a freshly keyed log passes).
	if s.auditKey != nil && last != 0 && !keyed {
		return fmt.Errorf("%w: the newest row %d is unkeyed although the log is keyed: it was rewritten by the unkeyed rule", ErrAuditTampered, last)
	}
	for id := range want {
		return fmt.Errorf("%w: anchored row %d is gone: rows were deleted", ErrAuditTampered, id)
	}
	return nil
}
