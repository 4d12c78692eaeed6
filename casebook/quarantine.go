package casebook

import (
	"errors"
	"time"
)

// ErrAlreadyResolved reports a quarantined message that someone has released or
// dropped already: the second click of two colleagues changes nothing.
var ErrAlreadyResolved = errors.New("already resolved")

// QuarantineKind says why a message sits in the quarantine table.
type QuarantineKind string

// The kinds of quarantine row.
const (
	// QuarantineKindQuarantined waits for a person to release or drop it.
	QuarantineKindQuarantined QuarantineKind = "quarantined"
	// QuarantineKindIgnored is an auto-reply or a bounce, kept for the record.
	QuarantineKindIgnored QuarantineKind = "ignored"
)

// QuarantineStatus is where a quarantined message stands.
type QuarantineStatus string

// The quarantine statuses.
const (
	QuarantinePending  QuarantineStatus = "pending"
	QuarantineReleased QuarantineStatus = "released"
	QuarantineDropped  QuarantineStatus = "dropped"
)

// QuarantineItem is a message that was not added to a case.
type QuarantineItem struct {
	ID         int64             `db:"id" json:"id"`
	Kind       QuarantineKind    `db:"kind" json:"kind"`
	Source     Source            `db:"source" json:"source"`
	ExternalID string            `db:"external_id" json:"external_id"`
	ReasonCode string            `db:"reason_code" json:"reason_code"`
	Reason     string            `db:"reason" json:"reason"`
	MessageID  string            `db:"message_id" json:"message_id"`
	Sender     string            `db:"sender" json:"from"`
	Subject    string            `db:"subject" json:"subject"`
	CaseNumber *int64            `db:"case_number" json:"case_number"`
	RawBlob    string            `db:"raw_blob" json:"raw_blob"`
	Body       string            `db:"body" json:"body"`
	MetaJSON   []byte            `db:"meta" json:"-"`
	Meta       map[string]string `db:"-" json:"meta"`
	Status     QuarantineStatus  `db:"status" json:"status"`
	UpdateID   *int64            `db:"update_id" json:"update_id"`
	CreatedAt  time.Time         `db:"created_at" json:"created_at"`
	ResolvedAt *time.Time        `db:"resolved_at" json:"resolved_at"`
	// ResolvedBy is the staff member who released or dropped the message; empty when
	// it was an operator at the shell without --as, or nobody yet.
	ResolvedBy string `db:"resolved_by" json:"resolved_by,omitempty"`
}

// QuarantineResolution closes a pending quarantine row, with the audit row that
// records who did it, in one transaction.
type QuarantineResolution struct {
	ID     int64
	Status QuarantineStatus
	// UpdateID is the update a released message became.
	UpdateID *int64
	// By is the staff member who decided, nil for an operator at the shell.
	By    *int64
	Audit AuditEntry
}

// QuarantinedFile is one attachment of a quarantined message, as read back from its
// raw copy. Index is its position among the message's attachments.
type QuarantinedFile struct {
	Index       int    `json:"index"`
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Inline      bool   `json:"inline"`
}

// QuarantineFilter selects one keyset page of quarantine rows, oldest first. The zero
// value lists pending quarantined mail, the queue people work.
type QuarantineFilter struct {
	// All includes released, dropped and ignored rows.
	All bool
	// After is the id of the last row of the previous page.
	After int64
	Limit int
}
