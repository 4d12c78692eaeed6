package outbox

import "casebook/casebook"

// The events a case email tells the requester about.
const (
	EventOpened = "opened"
	EventReply  = "reply"
)

// CaseMail is a case email to queue for a case's requester.
type CaseMail struct {
	Case casebook.Case
	// Ref is the case's formatted reference, CASE-000123.
	Ref string
	// Event is EventOpened or EventReply.
	Event string
	// Author and Body are the staff member's name and words, for a reply.
	Author, Body string
	// InReplyTo is the Message-ID of the case's first mail to the requester, when
	// there is one, so the requester's client threads the conversation.
	InReplyTo string
	// MessageID is the mail's own, minted with casebook.NewMessageID.
	MessageID string
}

// OutboxMail returns the row to enqueue: the worker renders it from these keys.
func (m CaseMail) OutboxMail() casebook.OutboxMail {
	data := map[string]any{
		"case":    m.Ref,
		"subject": m.Case.Subject,
		"event":   m.Event,
		"author":  m.Author,
		"body":    m.Body,
	}
	if m.InReplyTo != "" {
		data["in_reply_to"] = m.InReplyTo
	}
	return casebook.OutboxMail{
		Kind:      casebook.MailCaseEmail,
		CaseID:    &m.Case.ID,
		UserID:    &m.Case.RequesterID,
		Recipient: m.Case.Requester,
		MessageID: m.MessageID,
		Data:      data,
	}
}
