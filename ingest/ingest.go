// Package ingest is the email channel: it turns mail into case updates. Sub-package
// mail parses RFC 5322 messages; imap fetches them from mailboxes and files them after
// the commit. This package holds what the two share.
package ingest

import (
	"context"
	"io"
)

// Disposition says where a message is filed once it has been handled.
type Disposition string

// The dispositions, each with its own mailbox folder.
const (
	// Processed: added to a case, or a duplicate of something already added.
	Processed Disposition = "processed"
	// Quarantined: kept for a person to look at (no case, unknown case, sender not
	// allowed, over a limit, malformed).
	Quarantined Disposition = "quarantined"
	// Ignored: auto-replies and bounces; never an update, never answered.
	Ignored Disposition = "ignored"
)

// Location names a message in a mailbox.
type Location struct {
	Mailbox     string
	UIDValidity uint32
	UID         uint32
}

// Result reports how a message was handled.
type Result struct {
	Disposition Disposition
	// Code is why a message was quarantined or ignored, from a fixed set; the metric
	// label and the quarantine row's reason code are this word.
	Code Code `json:"reason_code,omitempty"`
	// Reason explains a quarantine or an ignore to a person.
	Reason string
	// Case is the reference the message went to, when it went to one.
	Case string
}

// Processor handles one message completely: parse, match, add or quarantine, and
// commit its position. An error means nothing was committed and the message should be
// tried again later; a Result means it may be filed away.
type Processor interface {
	Process(ctx context.Context, loc Location, raw io.ReadSeeker) (Result, error)
}
