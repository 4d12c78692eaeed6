// Package bots is the chat logic shared by the Slack and Discord adapters: given a
// message seen in a channel, it checks the channel is bound to an org, finds the case
// (named in the text, tied to the thread, or asked for), adds each file to the case
// through the one write path (casebook.Service.AddUpdate) and composes the reply.
//
// It imports no platform SDK. An adapter turns a platform event into a Message, calls
// Bot.HandleMessage, and speaks the Reply back in its own way (a thread reply and a
// reaction). Files are streamed: the adapter gives an Opener per file, called once,
// while the file is written to the blob store.
package bots

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/casebookhq/casebook/casebook"
)

// Message is an incoming chat message, as the adapter saw it.
type Message struct {
	// Platform is casebook.SourceSlack or casebook.SourceDiscord.
	Platform casebook.Source
	// Workspace is the Slack team id or Discord guild id of the channel.
	Workspace string
	// Channel is the channel id.
	Channel string
	// Thread is the key of the thread or reply chain the message is in (Slack
	// thread_ts), empty for a message at the top of the channel. The bot answers a
	// top-level message in a new thread keyed by its MessageID.
	Thread string
	// MessageID is the platform's message id (Slack ts, Discord snowflake).
	MessageID string
	// EventID identifies the delivery (Slack event_id). When set, a second delivery of
	// the same event is ignored. Platforms without one may pass the message id.
	EventID string
	// AuthorID is the platform user id; it becomes the update's author identity.
	AuthorID string
	// AuthorName is the display name the platform gave, kept for the timeline.
	AuthorName string
	Text       string
	Files      []File
}

// ReplyThread is the thread the bot answers m in: its thread, or a new one rooted at
// the message.
func (m Message) ReplyThread() string {
	if m.Thread != "" {
		return m.Thread
	}
	return m.MessageID
}

// Opener streams a file's bytes. The reader must not yield more than limit+1 bytes
// (the blob store refuses the file at limit+1); an adapter that learns the file is
// larger may return an error wrapping casebook.ErrTooLarge instead.
type Opener func(ctx context.Context, limit int64) (io.ReadCloser, error)

// File is a file attached to a message.
type File struct {
	// ID is the platform's file or attachment id. It is the update's external id, so a
	// file delivered twice is stored once.
	ID          string `json:"id"`
	Name        string `json:"name"`
	ContentType string `json:"content_type,omitempty"`
	// Size is the size the platform declared; a file declared larger than the cap is
	// refused without downloading it.
	Size int64 `json:"size"`
	// URL is where the adapter fetches the file (Slack url_private_download, Discord
	// CDN URL). It is kept with a file that waits for its case, for Options.Reopen.
	URL string `json:"url,omitempty"`
	// Held names the blob that keeps the bytes of a file waiting for its case, for an
	// adapter whose URLs expire before the hold does (Discord).
	Held string `json:"held,omitempty"`
	// Open streams the bytes. It is not kept: a held file gets a new one from
	// Options.Reopen.
	Open Opener `json:"-"`
}

// PublicError is an error whose Public sentence may be shown in the channel, such as
// an adapter's "the app lacks the files:read scope". Other errors are logged and the
// channel is told only that something failed on our side.
type PublicError struct {
	// Public is one sentence saying why and what to do.
	Public string
	Err    error
}

func (e *PublicError) Error() string { return e.Err.Error() }
func (e *PublicError) Unwrap() error { return e.Err }

// ReplyKind says how an adapter should mark the message it answers.
type ReplyKind string

// The kinds of reply.
const (
	// ReplyNone: say nothing (an unbound channel, a message with nothing for the bot,
	// an event already handled).
	ReplyNone ReplyKind = ""
	// ReplyAttached: at least one file was added; react ✅. Text may also list files
	// that were refused.
	ReplyAttached ReplyKind = "attached"
	// ReplyRefused: nothing was added; react ❌ and say why.
	ReplyRefused ReplyKind = "refused"
	// ReplyAsk: the bot asks which case the files are for and holds them.
	ReplyAsk ReplyKind = "ask"
)

// Reply is what the adapter says back.
type Reply struct {
	Kind ReplyKind
	// Text is the message to post, already escaped by Options.Escape.
	Text string
	// Thread is where to post it: Message.ReplyThread of the message answered.
	Thread string
	// Case is the number of the case the files went to, when there is one.
	Case int64
	// Attached and Refused count the files added and refused.
	Attached, Refused int
}

// Store is what the bot needs from storage. *postgres.Store implements it.
type Store interface {
	BindingFor(ctx context.Context, platform casebook.Source, workspace, channel string) (casebook.Binding, error)
	CaseByNumber(ctx context.Context, number int64) (casebook.Case, error)
	// ThreadCase returns the case tied to a thread, or an error wrapping
	// casebook.ErrNotFound.
	ThreadCase(ctx context.Context, platform casebook.Source, workspace, channel, thread string) (int64, error)
	TieThread(ctx context.Context, platform casebook.Source, workspace, channel, thread string, caseNumber int64) error
	// ClaimChatEvent reports false for an event claimed before.
	ClaimChatEvent(ctx context.Context, platform casebook.Source, eventID string) (bool, error)
	HoldChatFile(ctx context.Context, platform casebook.Source, workspace, channel, thread, authorID, fileID string, data json.RawMessage, until time.Time) error
	// TakeChatFiles removes and returns the files held in thread (or, when thread is
	// empty, those of authorID in the channel) whose hold has not expired.
	TakeChatFiles(ctx context.Context, platform casebook.Source, workspace, channel, thread, authorID string, now time.Time) ([]json.RawMessage, error)
	PurgeChat(ctx context.Context, now, eventsBefore time.Time) (files, events int64, err error)
}

// Cases is the write path. *casebook.Service implements it.
type Cases interface {
	AddUpdate(ctx context.Context, u casebook.Update) (casebook.Outcome, error)
	Refs() casebook.RefFormat
	MaxFileSize() int64
}
