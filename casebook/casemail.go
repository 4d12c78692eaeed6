package casebook

// CaseMail is a case email to queue for a case's requester.
type CaseMail struct {
	Case Case
	// Ref is the case's formatted reference, CASE-000123.
	Ref   string
	Event CaseEvent
	// Author and Body are the staff member's name and words, for a reply.
	Author, Body string
	// InReplyTo is the Message-ID of the case's first mail to the requester, when
	// there is one, so the requester's client threads the conversation.
	InReplyTo string
	// MessageID is the mail's own, minted with NewMessageID.
	MessageID string
}

// OutboxMail returns the row to enqueue.
func (m CaseMail) OutboxMail() OutboxMail {
	return OutboxMail{
		Kind:      MailCaseEmail,
		CaseID:    &m.Case.ID,
		UserID:    &m.Case.RequesterID,
		Recipient: m.Case.Requester,
		MessageID: m.MessageID,
		Data: CaseEmail{
			Case:      m.Ref,
			Subject:   m.Case.Subject,
			Event:     m.Event,
			Author:    m.Author,
			Body:      m.Body,
			InReplyTo: m.InReplyTo,
		},
	}
}
