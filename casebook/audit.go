package casebook

import "time"

// AuditEntry is one row of the append-only audit log: who did what to which object,
// with what outcome. The store chains each row to the one before it.
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
	// OSUser is the operating-system account that ran a CLI command.
	OSUser string `db:"os_user" json:"os_user,omitempty"`
	// ChainVersion says how Hash was made: 1 unkeyed SHA-256 (rows from before the
	// audit key), 2 HMAC-SHA256 under the audit key.
	ChainVersion int    `db:"chain_version" json:"chain_version"`
	PrevHash     string `db:"prev_hash" json:"prev_hash"`
	Hash         string `db:"hash" json:"hash"`
}
