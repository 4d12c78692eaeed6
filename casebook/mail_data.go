package casebook

import (
	"encoding/json"
	"fmt"
	"time"
)

// MailData is what one kind of mail says. Each kind has its own type, so that the
// code that queues a mail and the composer that writes it agree on its fields through
// the compiler rather than through JSON keys spelled in two places.
type MailData interface {
	// MailKind names the kind, which picks the mail's templates.
	MailKind() OutboxKind
}

// OwnerNotification tells a case's owner that files arrived on it.
type OwnerNotification struct {
	// Case is the reference as shown, CASE-000123.
	Case    string         `json:"case"`
	Subject string         `json:"subject"`
	Source  Source         `json:"source"`
	Author  string         `json:"author"`
	Files   []NotifiedFile `json:"files"`
}

// NotifiedFile is one file an owner notification names: its name and size, never its
// content.
type NotifiedFile struct {
	Name        string `json:"filename"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
}

// CaseEvent is what a case email tells the requester about.
type CaseEvent string

// The case events.
const (
	CaseOpened CaseEvent = "opened"
	CaseReply  CaseEvent = "reply"
)

// CaseEmail tells a case's requester that the case was opened or that staff replied;
// the requester answers it through the case's reply address.
type CaseEmail struct {
	Case    string    `json:"case"`
	Subject string    `json:"subject"`
	Event   CaseEvent `json:"event"`
	// Author and Body are the staff member's name and words, for a reply.
	Author string `json:"author"`
	Body   string `json:"body"`
	// InReplyTo is the Message-ID of the case's first mail to this recipient, so that
	// the recipient's client threads the conversation (RFC 5322 3.6.4).
	InReplyTo string `json:"in_reply_to,omitempty"`
}

// Temporary password reasons.
const (
	ReasonReset      = "reset"
	ReasonNewAccount = "new_account"
)

// TemporaryPasswordMail carries a temporary password to its user. While it waits in
// the outbox the store keeps the password sealed (Sealed, one copy per key that may
// have to send it) instead of in Password; neither outlives the mail.
type TemporaryPasswordMail struct {
	Name      string    `json:"name"`
	Password  string    `json:"password,omitempty"`
	Sealed    []string  `json:"password_sealed,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	// Reason is ReasonReset or ReasonNewAccount.
	Reason string `json:"reason"`
}

// MailKind implements MailData.
func (OwnerNotification) MailKind() OutboxKind { return MailOwnerNotification }

// MailKind implements MailData.
func (CaseEmail) MailKind() OutboxKind { return MailCaseEmail }

// MailKind implements MailData.
func (TemporaryPasswordMail) MailKind() OutboxKind { return MailTemporaryPassword }

// DecodeMailData reads a queued mail's data as its kind's type.
func DecodeMailData(kind OutboxKind, raw []byte) (MailData, error) {
	var (
		d   MailData
		err error
	)
	switch kind {
	case MailOwnerNotification:
		var v OwnerNotification
		err = json.Unmarshal(raw, &v)
		d = v
	case MailCaseEmail:
		var v CaseEmail
		err = json.Unmarshal(raw, &v)
		d = v
	case MailTemporaryPassword:
		var v TemporaryPasswordMail
		err = json.Unmarshal(raw, &v)
		d = v
	default:
		return nil, fmt.Errorf("%w: unknown mail kind %q", ErrInvalidInput, kind)
	}
	if err != nil {
		return nil, fmt.Errorf("%s data: %w", kind, err)
	}
	return d, nil
}
